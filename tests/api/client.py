"""A small v2 client for tests: push blobs and manifests the way docker does, with `requests`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import requests

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass
class PushedImage:
    manifest: bytes
    digest: str
    config: bytes
    layers: list[bytes]

    def descriptor(self, media_type: str = DOCKER_MANIFEST, **extra: Any) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.digest, "size": len(self.manifest), **extra}


class V2Client:
    def __init__(self, url: str, auth: tuple[str, str] | None = None, verify: Any = False) -> None:
        """`verify` goes with each request: a session-wide value loses to REQUESTS_CA_BUNDLE."""
        self.url = url
        self.session = requests.Session()
        self.session.auth = auth
        self.verify = verify

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        target = path if path.startswith("http") else self.url + path
        return self.session.request(method, target, allow_redirects=False, timeout=30,
                                    verify=self.verify, **kwargs)

    def push_blob(self, name: str, data: bytes) -> str:
        """POST then PUT with the whole body, as the spec's monolithic upload."""
        digest = digest_of(data)
        start = self.request("POST", f"/v2/{name}/blobs/uploads/")
        assert start.status_code == 202, start.text
        done = self.request("PUT", start.headers["Location"], params={"digest": digest}, data=data)
        assert done.status_code == 201, done.text
        return digest

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> requests.Response:
        return self.request(
            "PUT", f"/v2/{name}/manifests/{reference}", data=body, headers={"Content-Type": media_type}
        )

    def push_image(self, name: str, tag: str, layers: list[bytes], media_type: str = DOCKER_MANIFEST,
                   extra: dict[str, Any] | None = None) -> PushedImage:
        config = json.dumps({"architecture": "amd64", "os": "linux", "layers": len(layers), "tag": tag}).encode()
        for blob in (config, *layers):
            self.push_blob(name, blob)
        layer_type = DOCKER_LAYER if media_type == DOCKER_MANIFEST else "application/vnd.oci.image.layer.v1.tar+gzip"
        config_type = DOCKER_CONFIG if media_type == DOCKER_MANIFEST else "application/vnd.oci.image.config.v1+json"
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": digest_of(b), "size": len(b)} for b in layers],
            **(extra or {}),
        }).encode()
        response = self.put_manifest(name, tag, manifest, media_type)
        assert response.status_code == 201, response.text
        return PushedImage(manifest, digest_of(manifest), config, layers)

    @staticmethod
    def error_code(response: requests.Response) -> str:
        return response.json()["errors"][0]["code"]
