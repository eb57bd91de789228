"""End-to-end tests with real clients (docker, skopeo, podman, buildah)."""
