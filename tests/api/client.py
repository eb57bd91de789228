"""A small v2 client for tests: push blobs and manifests the way docker does, with `requests`.

Every response it receives is checked for what the spec and our acceptance criteria demand of
*every* response: the API version header (and any configured `http.headers`), no 5xx status,
and no traceback in the body. `raw_request` does the same over a bare socket, for request
targets `requests` would normalise (`..`, NUL bytes).
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

API_VERSION = {"Docker-Distribution-Api-Version": "registry/2.0"}


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check_response(
    status: int, headers: Mapping[str, str], body: bytes, expected: Mapping[str, str]
) -> None:
    """What must hold for any response the registry sends, error or not."""
    assert status < 500, f"server error {status}: {body[:500]!r}"
    assert b"Traceback" not in body, body[:2000]
    for name, value in expected.items():
        assert headers.get(name) == value, f"{name} is {headers.get(name)!r} on a {status}"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(
    config: bytes, layers: list[bytes], media_type: str = DOCKER_MANIFEST, **extra: Any
) -> bytes:
    docker = media_type == DOCKER_MANIFEST
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
            "layers": [
                descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer) for layer in layers
            ],
            **extra,
        }
    ).encode()


def index_manifest(
    children: list[dict[str, Any]], media_type: str = OCI_INDEX, **extra: Any
) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": children, **extra}
    ).encode()


@dataclass
class PushedImage:
    manifest: bytes
    digest: str
    config: bytes
    layers: list[bytes]
    media_type: str = DOCKER_MANIFEST

    def descriptor(self, media_type: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": media_type or self.media_type,
            "digest": self.digest,
            "size": len(self.manifest),
            **extra,
        }


class V2Client:
    def __init__(
        self,
        url: str,
        auth: tuple[str, str] | None = None,
        verify: Any = False,
        expect_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.auth = auth
        self.session.verify = verify
        self.expect_headers = {**API_VERSION, **(expect_headers or {})}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        target = path if path.startswith("http") else self.url + path
        # Passed per request: requests prefers REQUESTS_CA_BUNDLE over `session.verify` otherwise.
        kwargs.setdefault("verify", self.session.verify)
        response = self.session.request(method, target, allow_redirects=False, timeout=30, **kwargs)
        check_response(
            response.status_code, response.headers, response.content, self.expect_headers
        )
        return response

    def start_upload(self, name: str, **params: str) -> requests.Response:
        response = self.request("POST", f"/v2/{name}/blobs/uploads/", params=params)
        assert response.status_code == 202, response.text
        return response

    def push_blob(self, name: str, data: bytes, algorithm: str = "sha256") -> str:
        """POST then PUT with the whole body, as the spec's monolithic upload."""
        digest = digest_of(data, algorithm)
        start = self.start_upload(name)
        done = self.request("PUT", start.headers["Location"], params={"digest": digest}, data=data)
        assert done.status_code == 201, done.text
        return digest

    def put_manifest(
        self, name: str, reference: str, body: bytes, media_type: str
    ) -> requests.Response:
        return self.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
        )

    def push_image(
        self,
        name: str,
        tag: str,
        layers: list[bytes],
        media_type: str = DOCKER_MANIFEST,
        extra: dict[str, Any] | None = None,
        config: bytes | None = None,
    ) -> PushedImage:
        if config is None:
            config = json.dumps(
                {"architecture": "amd64", "os": "linux", "layers": len(layers), "tag": tag}
            ).encode()
        for blob in (config, *layers):
            self.push_blob(name, blob)
        manifest = image_manifest(config, layers, media_type, **(extra or {}))
        response = self.put_manifest(name, tag, manifest, media_type)
        assert response.status_code == 201, response.text
        return PushedImage(manifest, digest_of(manifest), config, layers, media_type)

    @staticmethod
    def error_code(response: requests.Response) -> str:
        return response.json()["errors"][0]["code"]


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    url: str,
    method: str,
    target: bytes,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    expect_headers: Mapping[str, str] = API_VERSION,
) -> RawResponse:
    """Send `target` byte for byte (no normalisation) and read the whole response."""
    parts = urlsplit(url)
    head = [
        method.encode() + b" " + target + b" HTTP/1.1",
        f"Host: {parts.netloc}".encode(),
        b"Connection: close",
        f"Content-Length: {len(body)}".encode(),
    ]
    head += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    header_block, _, content = received.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    parsed: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    # Twisted's HTTP parser answers a request it cannot parse with a bare 400 and no headers,
    # before any resource runs; every other response must carry the registry's headers.
    refused_by_parser = status == 400 and not parsed
    check_response(
        status,
        {k.title(): v for k, v in parsed.items()},
        content,
        {} if refused_by_parser else expect_headers,
    )
    return RawResponse(status, parsed, content)
