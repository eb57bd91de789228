"""Blob HEAD/GET/DELETE: headers, single ranges, repository isolation, deletes switched off."""

from __future__ import annotations

import os

import pytest

from tests.api.client import V2Client, digest_of
from tests.api.conftest import EXTRA_HEADERS
from tests.server import ApplianceServer

DATA = os.urandom(100_000)
SIZE = len(DATA)


@pytest.fixture(scope="module")
def blob(server: ApplianceServer) -> str:
    """DATA pushed once to blobs/one for the read-only tests of this module."""
    return V2Client(server.url, expect_headers=EXTRA_HEADERS).push_blob("blobs/one", DATA)


def test_head_blob_has_digest_length_and_etag(client: V2Client, blob: str) -> None:
    """HEAD on a blob is 200 with Docker-Content-Digest, Content-Length and ETag, and no body."""
    response = client.request("HEAD", f"/v2/blobs/one/blobs/{blob}")
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == blob
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["ETag"] == f'"{blob}"'
    assert response.content == b""


def test_get_blob_returns_bytes_with_headers(client: V2Client, blob: str) -> None:
    """GET on a blob is 200 with its exact bytes, Docker-Content-Digest, Content-Length and ETag."""
    response = client.request("GET", f"/v2/blobs/one/blobs/{blob}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["Docker-Content-Digest"] == blob
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["ETag"] == f'"{blob}"'
    assert response.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=99990-", 99990, SIZE - 1),
        ("bytes=-7", SIZE - 7, SIZE - 1),
        ("bytes=5-999999999", 5, SIZE - 1),
    ],
)
def test_single_range_is_206_with_content_range(
    client: V2Client, blob: str, header: str, start: int, end: int
) -> None:
    """A single satisfiable Range is 206 with Content-Range, the slice, and its length."""
    response = client.request("GET", f"/v2/blobs/one/blobs/{blob}", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.content == DATA[start : end + 1]


def test_head_with_range_is_206_without_body(client: V2Client, blob: str) -> None:
    """HEAD with a Range is 206 with the range's Content-Length and Content-Range, and no body."""
    response = client.request("HEAD", f"/v2/blobs/one/blobs/{blob}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Content-Range"] == f"bytes 0-9/{SIZE}"
    assert response.content == b""


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE + 10}-{SIZE + 20}",
        "bytes=20-10",
        "bytes=-0",
        "bytes=abc",
        "bytes=-",
        "0-10",
    ],
)
def test_bad_or_unsatisfiable_range_is_416(client: V2Client, blob: str, header: str) -> None:
    """A malformed or unsatisfiable bytes Range is 416 with `Content-Range: bytes */SIZE`."""
    response = client.request("GET", f"/v2/blobs/one/blobs/{blob}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert client.error_code(response) == "RANGE_INVALID"


@pytest.mark.parametrize("header", ["items=0-10", "BYTES=0-1,5-6", "bytes=0-1, 5-6"])
def test_other_units_and_several_ranges_are_ignored(client: V2Client, blob: str,
                                                    header: str) -> None:
    """RFC 9110 14.2: a Range in another unit MUST be ignored, and a server MAY ignore one
    (we send no multipart answers): the whole blob, 200, no Content-Range. Distribution
    answered several ranges as multipart and we answered 416, which the RFC does not allow."""
    response = client.request("GET", f"/v2/blobs/one/blobs/{blob}", headers={"Range": header})
    assert response.status_code == 200
    assert "Content-Range" not in response.headers
    assert response.content == DATA


def test_unknown_blob_is_404_blob_unknown(client: V2Client) -> None:
    """GET and HEAD of a digest never pushed are 404; GET carries BLOB_UNKNOWN with the digest."""
    missing = digest_of(b"no such blob")
    response = client.request("GET", f"/v2/blobs/one/blobs/{missing}")
    assert response.status_code == 404
    assert client.error_code(response) == "BLOB_UNKNOWN"
    assert response.json()["errors"][0]["detail"] == {"digest": missing}
    assert client.request("HEAD", f"/v2/blobs/one/blobs/{missing}").status_code == 404


def test_blob_of_one_repository_is_invisible_in_another_until_mounted(client: V2Client) -> None:
    """A blob pushed to repo A is 404 BLOB_UNKNOWN in repo B, then served there once mounted."""
    data = os.urandom(5000)
    digest = client.push_blob("blobs/repo-a", data)
    for method in ("GET", "HEAD"):
        assert client.request(method, f"/v2/blobs/repo-b/blobs/{digest}").status_code == 404
    assert (
        client.error_code(client.request("GET", f"/v2/blobs/repo-b/blobs/{digest}"))
        == "BLOB_UNKNOWN"
    )
    mounted = client.request(
        "POST", "/v2/blobs/repo-b/blobs/uploads/", params={"mount": digest, "from": "blobs/repo-a"}
    )
    assert mounted.status_code == 201
    got = client.request("GET", f"/v2/blobs/repo-b/blobs/{digest}")
    assert got.status_code == 200
    assert got.content == data


def test_delete_blob_is_202_then_404(client: V2Client) -> None:
    """DELETE of a blob is 202 with its digest; then GET and DELETE again are 404 BLOB_UNKNOWN."""
    digest = client.push_blob("blobs/deleted", os.urandom(2000))
    deleted = client.request("DELETE", f"/v2/blobs/deleted/blobs/{digest}")
    assert deleted.status_code == 202
    assert deleted.headers["Docker-Content-Digest"] == digest
    after = client.request("GET", f"/v2/blobs/deleted/blobs/{digest}")
    assert after.status_code == 404
    assert client.error_code(after) == "BLOB_UNKNOWN"
    again = client.request("DELETE", f"/v2/blobs/deleted/blobs/{digest}")
    assert again.status_code == 404
    assert client.error_code(again) == "BLOB_UNKNOWN"


def test_delete_blob_in_one_repository_keeps_it_in_another(client: V2Client) -> None:
    """Deleting a blob from one repository leaves it readable where it is also linked."""
    data = os.urandom(3000)
    digest = client.push_blob("blobs/keep-a", data)
    client.push_blob("blobs/keep-b", data)
    assert client.request("DELETE", f"/v2/blobs/keep-a/blobs/{digest}").status_code == 202
    assert client.request("GET", f"/v2/blobs/keep-b/blobs/{digest}").content == data


def test_delete_blob_refused_when_deletes_disabled(nodelete_client: V2Client) -> None:
    """With storage.delete.enabled false, DELETE of a blob is 405 UNSUPPORTED and the blob stays."""
    digest = nodelete_client.push_blob("blobs/kept", b"keep me")
    response = nodelete_client.request("DELETE", f"/v2/blobs/kept/blobs/{digest}")
    assert response.status_code == 405
    assert nodelete_client.error_code(response) == "UNSUPPORTED"
    assert "delete" in response.json()["errors"][0]["message"]
    assert nodelete_client.request("GET", f"/v2/blobs/kept/blobs/{digest}").content == b"keep me"


def test_sha512_blob_is_stored_and_served(client: V2Client) -> None:
    """A blob pushed with a sha512 digest is served under that digest."""
    data = os.urandom(70_000)
    digest = client.push_blob("blobs/sha512", data, algorithm="sha512")
    assert digest.startswith("sha512:")
    response = client.request("GET", f"/v2/blobs/sha512/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Docker-Content-Digest"] == digest


def test_empty_blob_is_served_with_zero_length(client: V2Client) -> None:
    """A zero-byte blob is 200 with Content-Length 0, with or without a Range."""
    digest = client.push_blob("blobs/empty", b"")
    response = client.request("GET", f"/v2/blobs/empty/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "0"
    assert response.content == b""
    ranged = client.request("GET", f"/v2/blobs/empty/blobs/{digest}", headers={"Range": "bytes=0-"})
    assert ranged.status_code == 200
    assert ranged.content == b""


def test_invalid_digest_in_blob_path_is_400_digest_invalid(client: V2Client) -> None:
    """GET and DELETE of a blob under a malformed digest are 400 DIGEST_INVALID."""
    for digest in ("sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "latest"):
        for method in ("GET", "DELETE"):
            response = client.request(method, f"/v2/blobs/one/blobs/{digest}")
            assert response.status_code == 400, (method, digest)
            assert client.error_code(response) == "DIGEST_INVALID"
