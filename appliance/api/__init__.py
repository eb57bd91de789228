"""HTTP only: routes for /v2/, request bodies, the spec's error envelope, auth challenges."""
