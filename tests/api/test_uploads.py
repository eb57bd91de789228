"""Blob uploads: start, monolithic, mount, chunked and streamed PATCH, PUT, status, cancel."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from tests.api.client import V2Client, digest_of

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _blob(client: V2Client, name: str, digest: str) -> requests.Response:
    return client.request("GET", f"/v2/{name}/blobs/{digest}")


def _patch(
    client: V2Client, location: str, data: bytes, start: int | None = None
) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return client.request("PATCH", location, data=data, headers=headers)


def _with_state(location: str, state: str) -> str:
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"_state": state}
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_start_upload_is_202_with_location_range_and_uuid(client: V2Client) -> None:
    """POST .../blobs/uploads/ is 202 with a Location, `Range: 0-0` and Docker-Upload-UUID."""
    response = client.request("POST", "/v2/uploads/start/blobs/uploads/")
    assert response.status_code == 202
    upload_id = response.headers["Docker-Upload-UUID"]
    assert UUID.match(upload_id)
    location = response.headers["Location"]
    assert location.startswith(f"{client.url}/v2/uploads/start/blobs/uploads/{upload_id}")
    assert response.headers["Range"] == "0-0"
    assert response.headers["Content-Length"] == "0"


def test_start_upload_without_trailing_slash(client: V2Client) -> None:
    """POST .../blobs/uploads (no slash) starts an upload too."""
    response = client.request("POST", "/v2/uploads/noslash/blobs/uploads")
    assert response.status_code == 202
    assert "Docker-Upload-UUID" in response.headers


def test_monolithic_post_with_digest_is_201(client: V2Client) -> None:
    """POST ?digest= with the whole body is 201 with the blob's Location and digest."""
    data = os.urandom(40_000)
    digest = digest_of(data)
    response = client.request(
        "POST",
        "/v2/uploads/mono/blobs/uploads/",
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"{client.url}/v2/uploads/mono/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert _blob(client, "uploads/mono", digest).content == data


def test_monolithic_post_large_body(client: V2Client) -> None:
    """A monolithic POST big enough to be spooled to disk stores the exact bytes."""
    data = os.urandom(2_500_000)
    digest = digest_of(data)
    response = client.request(
        "POST", "/v2/uploads/mono-large/blobs/uploads/", params={"digest": digest}, data=data
    )
    assert response.status_code == 201
    assert _blob(client, "uploads/mono-large", digest).content == data


def test_monolithic_post_with_wrong_digest_is_400_and_stores_nothing(client: V2Client) -> None:
    """POST ?digest= not matching the body is 400 DIGEST_INVALID; neither digest is served."""
    data, claimed = b"actual bytes", digest_of(b"other bytes")
    response = client.request(
        "POST", "/v2/uploads/mono-bad/blobs/uploads/", params={"digest": claimed}, data=data
    )
    assert response.status_code == 400
    assert client.error_code(response) == "DIGEST_INVALID"
    assert _blob(client, "uploads/mono-bad", claimed).status_code == 404
    assert _blob(client, "uploads/mono-bad", digest_of(data)).status_code == 404


def test_mount_from_repository_holding_blob_is_201(client: V2Client) -> None:
    """POST ?mount=&from= of a blob the source holds is 201 with Location and the digest."""
    data = os.urandom(9000)
    digest = client.push_blob("uploads/mount-src", data)
    response = client.request(
        "POST",
        "/v2/uploads/mount-dst/blobs/uploads/",
        params={"mount": digest, "from": "uploads/mount-src"},
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"{client.url}/v2/uploads/mount-dst/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert "Docker-Upload-UUID" not in response.headers
    assert _blob(client, "uploads/mount-dst", digest).content == data


def test_mount_of_blob_absent_from_source_starts_normal_upload(client: V2Client) -> None:
    """POST ?mount=&from= when `from` lacks the blob is 202: a normal upload, completable."""
    data = os.urandom(1000)
    digest = digest_of(data)
    client.push_blob("uploads/mount-other", data)  # in the registry, but not in `from`
    for source in ("uploads/mount-empty", "uploads/never-existed"):
        response = client.request(
            "POST",
            "/v2/uploads/mount-miss/blobs/uploads/",
            params={"mount": digest, "from": source},
        )
        assert response.status_code == 202
        assert response.headers["Range"] == "0-0"
        assert "Docker-Upload-UUID" in response.headers
    assert _blob(client, "uploads/mount-miss", digest).status_code == 404
    done = client.request("PUT", response.headers["Location"], params={"digest": digest}, data=data)
    assert done.status_code == 201
    assert _blob(client, "uploads/mount-miss", digest).content == data


@pytest.mark.parametrize("source, mount", [("../etc", digest_of(b"x")),
                                           ("Upper/Case", digest_of(b"x")),
                                           ("uploads/mount-src", "sha256:xyz")])
def test_mount_with_an_unusable_source_is_a_plain_upload(client: V2Client, source: str,
                                                        mount: str) -> None:
    """POST ?mount=&from= with an invalid source name or digest mounts nothing and opens an
    upload session instead (the spec's SHOULD; Distribution does the same): 202, completable."""
    response = client.request("POST", "/v2/uploads/mount-bad/blobs/uploads/",
                              params={"mount": mount, "from": source})
    assert response.status_code == 202
    data = os.urandom(100)
    digest = digest_of(data)
    done = client.request("PUT", response.headers["Location"], params={"digest": digest}, data=data)
    assert done.status_code == 201
    assert _blob(client, "uploads/mount-bad", digest).content == data


def test_chunked_patches_then_put(client: V2Client) -> None:
    """PATCHes with consecutive Content-Ranges are 202 with a growing Range; PUT is 201."""
    data = os.urandom(3000)
    location = client.start_upload("uploads/chunked").headers["Location"]
    for start in range(0, len(data), 1000):
        response = _patch(client, location, data[start : start + 1000], start)
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{start + 999}"
        assert response.headers["Content-Length"] == "0"
        location = response.headers["Location"]
    done = client.request("PUT", location, params={"digest": digest_of(data)})
    assert done.status_code == 201
    assert done.headers["Docker-Content-Digest"] == digest_of(data)
    assert done.headers["Location"] == f"{client.url}/v2/uploads/chunked/blobs/{digest_of(data)}"
    assert _blob(client, "uploads/chunked", digest_of(data)).content == data


def test_content_range_with_bytes_prefix_and_total_is_accepted(client: V2Client) -> None:
    """A Content-Range written as `bytes 0-3/4` is accepted like `0-3`."""
    location = client.start_upload("uploads/cr-form").headers["Location"]
    response = client.request(
        "PATCH", location, data=b"abcd", headers={"Content-Range": "bytes 0-3/4"}
    )
    assert response.status_code == 202
    assert response.headers["Range"] == "0-3"


def test_patch_with_gap_is_416_and_state_unchanged(client: V2Client) -> None:
    """A chunk starting past the upload's end is 416; the upload keeps its size and continues."""
    data = os.urandom(2000)
    location = _patch(
        client, client.start_upload("uploads/gap").headers["Location"], data[:1000], 0
    ).headers["Location"]
    gap = _patch(client, location, data[1000:], 1500)
    assert gap.status_code == 416
    assert client.error_code(gap) == "BLOB_UPLOAD_INVALID"
    status = client.request("GET", location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999"
    resumed = _patch(client, location, data[1000:], 1000)
    assert resumed.status_code == 202
    done = client.request("PUT", resumed.headers["Location"], params={"digest": digest_of(data)})
    assert done.status_code == 201
    assert _blob(client, "uploads/gap", digest_of(data)).content == data


def test_patch_with_overlap_is_416_and_state_unchanged(client: V2Client) -> None:
    """A chunk starting before the upload's end (overlap or repeat) is 416 and changes nothing."""
    location = _patch(
        client, client.start_upload("uploads/overlap").headers["Location"], b"x" * 1000, 0
    ).headers["Location"]
    for start in (0, 500, 999):
        response = _patch(client, location, b"y" * 100, start)
        assert response.status_code == 416
        assert client.error_code(response) == "BLOB_UPLOAD_INVALID"
    assert client.request("GET", location).headers["Range"] == "0-999"


def test_content_range_not_matching_body_is_400(client: V2Client) -> None:
    """A malformed Content-Range, or one not the body's length, is 400 BLOB_UPLOAD_INVALID."""
    location = client.start_upload("uploads/cr-bad").headers["Location"]
    for header in ("0-99", "5-2", "abc", "0-"):
        response = client.request(
            "PATCH", location, data=b"z" * 10, headers={"Content-Range": header}
        )
        assert response.status_code == 400, header
        assert client.error_code(response) == "BLOB_UPLOAD_INVALID"
    assert client.request("GET", location).headers["Range"] == "0-0"


def test_streamed_patches_without_content_range(client: V2Client) -> None:
    """PATCHes without Content-Range (plain and chunked) append in order; PUT completes."""
    data = os.urandom(600_000)
    location = client.start_upload("uploads/streamed").headers["Location"]
    first = client.request("PATCH", location, data=data[:100_000])
    assert first.status_code == 202
    assert first.headers["Range"] == "0-99999"
    second = client.request(
        "PATCH", first.headers["Location"], data=iter([data[100_000:300_000], data[300_000:]])
    )
    assert second.status_code == 202
    assert second.headers["Range"] == f"0-{len(data) - 1}"
    done = client.request("PUT", second.headers["Location"], params={"digest": digest_of(data)})
    assert done.status_code == 201
    assert _blob(client, "uploads/streamed", digest_of(data)).content == data


def test_put_with_final_chunk_completes_upload(client: V2Client) -> None:
    """PUT ?digest= with the last chunk (with or without Content-Range) appends it: 201."""
    for with_range in (False, True):
        data = os.urandom(5000)
        location = _patch(
            client, client.start_upload("uploads/final").headers["Location"], data[:3000], 0
        ).headers["Location"]
        headers = {"Content-Range": f"3000-{len(data) - 1}"} if with_range else {}
        done = client.request(
            "PUT", location, params={"digest": digest_of(data)}, data=data[3000:], headers=headers
        )
        assert done.status_code == 201, done.text
        assert _blob(client, "uploads/final", digest_of(data)).content == data


def test_put_with_whole_body_and_no_patch(client: V2Client) -> None:
    """POST then one PUT ?digest= with the whole body stores the blob."""
    data = os.urandom(1234)
    digest = client.push_blob("uploads/two-step", data)
    assert _blob(client, "uploads/two-step", digest).content == data


def test_put_with_wrong_digest_is_400_and_stores_nothing(client: V2Client) -> None:
    """PUT ?digest= not matching the uploaded bytes is 400 DIGEST_INVALID; no blob appears."""
    data = os.urandom(2000)
    location = _patch(
        client, client.start_upload("uploads/wrong").headers["Location"], data, 0
    ).headers["Location"]
    claimed = digest_of(data + b"!")
    response = client.request("PUT", location, params={"digest": claimed})
    assert response.status_code == 400
    assert client.error_code(response) == "DIGEST_INVALID"
    assert _blob(client, "uploads/wrong", claimed).status_code == 404
    assert _blob(client, "uploads/wrong", digest_of(data)).status_code == 404


def test_put_with_final_chunk_and_wrong_digest_stores_nothing(client: V2Client) -> None:
    """A PUT whose final chunk does not match ?digest= is 400 DIGEST_INVALID; nothing stored."""
    location = client.start_upload("uploads/wrong-final").headers["Location"]
    claimed = digest_of(b"expected")
    response = client.request("PUT", location, params={"digest": claimed}, data=b"different")
    assert response.status_code == 400
    assert client.error_code(response) == "DIGEST_INVALID"
    assert _blob(client, "uploads/wrong-final", claimed).status_code == 404
    assert _blob(client, "uploads/wrong-final", digest_of(b"different")).status_code == 404


def test_put_without_or_with_malformed_digest_is_400(client: V2Client) -> None:
    """PUT to an upload without ?digest=, or with a malformed one, is 400 DIGEST_INVALID."""
    location = client.start_upload("uploads/nodigest").headers["Location"]
    assert client.error_code(client.request("PUT", location)) == "DIGEST_INVALID"
    for digest in ("sha256:1234", "crc32:00000000", "nonsense"):
        response = client.request("PUT", location, params={"digest": digest})
        assert response.status_code == 400
        assert client.error_code(response) == "DIGEST_INVALID"


def test_upload_status_is_204_with_range(client: V2Client) -> None:
    """GET on an upload is 204 with Range, Docker-Upload-UUID, a Location, and no body."""
    start = client.start_upload("uploads/status")
    fresh = client.request("GET", start.headers["Location"])
    assert fresh.status_code == 204
    assert fresh.headers["Range"] == "0-0"
    assert fresh.headers["Docker-Upload-UUID"] == start.headers["Docker-Upload-UUID"]
    patched = _patch(client, start.headers["Location"], b"q" * 4096, 0)
    status = client.request("GET", patched.headers["Location"])
    assert status.status_code == 204
    assert status.headers["Range"] == "0-4095"
    assert status.headers["Location"].startswith(f"{client.url}/v2/uploads/status/blobs/uploads/")
    assert status.content == b""


def test_cancel_upload_then_status_is_404(client: V2Client) -> None:
    """DELETE on an upload is 204; then GET, PATCH and PUT on it are 404 BLOB_UPLOAD_UNKNOWN."""
    location = _patch(
        client, client.start_upload("uploads/cancel").headers["Location"], b"abc", 0
    ).headers["Location"]
    cancelled = client.request("DELETE", location)
    assert cancelled.status_code == 204
    for method, kwargs in (
        ("GET", {}),
        ("PATCH", {"data": b"more"}),
        ("PUT", {"params": {"digest": digest_of(b"abc")}}),
        ("DELETE", {}),
    ):
        response = client.request(method, location, **kwargs)
        assert response.status_code == 404, method
        assert client.error_code(response) == "BLOB_UPLOAD_UNKNOWN"


def test_cancel_allowed_when_deletes_disabled(nodelete_client: V2Client) -> None:
    """Cancelling an upload is not a content delete: it is 204 even with deletes disabled."""
    location = nodelete_client.start_upload("uploads/cancel-nodelete").headers["Location"]
    assert nodelete_client.request("DELETE", location).status_code == 204


def test_unknown_upload_id_is_404_blob_upload_unknown(client: V2Client) -> None:
    """GET, PATCH, PUT and DELETE on an upload id never issued are 404 BLOB_UPLOAD_UNKNOWN."""
    path = "/v2/uploads/unknown/blobs/uploads/3f1c0e9a-0000-4000-8000-000000000000"
    for method, kwargs in (
        ("GET", {}),
        ("PATCH", {"data": b"x"}),
        ("PUT", {"params": {"digest": digest_of(b"")}}),
        ("DELETE", {}),
    ):
        response = client.request(method, path, **kwargs)
        assert response.status_code == 404, method
        assert client.error_code(response) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_of_one_repository_is_unknown_in_another(client: V2Client) -> None:
    """An upload id started in repo A is 404 BLOB_UPLOAD_UNKNOWN under repo B."""
    upload_id = client.start_upload("uploads/owner").headers["Docker-Upload-UUID"]
    response = client.request("GET", f"/v2/uploads/stranger/blobs/uploads/{upload_id}")
    assert response.status_code == 404
    assert client.error_code(response) == "BLOB_UPLOAD_UNKNOWN"


def test_tampered_state_is_400_blob_upload_invalid(client: V2Client) -> None:
    """An altered, truncated or foreign `_state` is 400 BLOB_UPLOAD_INVALID on every method."""
    start = client.start_upload("uploads/tamper")
    location = start.headers["Location"]
    state = parse_qs(urlsplit(location).query)["_state"][0]
    payload, _, mac = state.partition(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    other_state = parse_qs(
        urlsplit(client.start_upload("uploads/tamper").headers["Location"]).query
    )["_state"][0]
    for bad in (f"{flipped}.{mac}", payload, "", "not-base64!!.???", other_state):
        target = _with_state(location, bad)
        for method, kwargs in (
            ("GET", {}),
            ("PATCH", {"data": b"x"}),
            ("PUT", {"params": {"digest": digest_of(b"x")}}),
            ("DELETE", {}),
        ):
            response = client.request(method, target, **kwargs)
            assert response.status_code == 400, (bad, method)
            assert client.error_code(response) == "BLOB_UPLOAD_INVALID"
    assert client.request("GET", location).headers["Range"] == "0-0"


def test_state_cannot_move_upload_to_another_repository(client: V2Client) -> None:
    """A valid `_state` for repo A presented under repo B's path is 400 BLOB_UPLOAD_INVALID."""
    location = client.start_upload("uploads/state-a").headers["Location"]
    moved = location.replace("/v2/uploads/state-a/", "/v2/uploads/state-b/")
    response = client.request("GET", moved)
    assert response.status_code == 400
    assert client.error_code(response) == "BLOB_UPLOAD_INVALID"


def test_sha512_digest_accepted_for_chunked_upload(client: V2Client) -> None:
    """A chunked upload finished with a sha512 digest is 201 and served under that digest."""
    data = os.urandom(300_000)
    location = _patch(
        client, client.start_upload("uploads/sha512").headers["Location"], data[:200_000], 0
    ).headers["Location"]
    location = _patch(client, location, data[200_000:], 200_000).headers["Location"]
    digest = digest_of(data, "sha512")
    done = client.request("PUT", location, params={"digest": digest})
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    assert _blob(client, "uploads/sha512", digest).content == data


def test_sha512_monolithic_post(client: V2Client) -> None:
    """POST ?digest=sha512:... with the body is 201 and a wrong sha512 digest is 400."""
    data = os.urandom(1000)
    good = client.request(
        "POST",
        "/v2/uploads/sha512-mono/blobs/uploads/",
        params={"digest": digest_of(data, "sha512")},
        data=data,
    )
    assert good.status_code == 201
    bad = client.request(
        "POST",
        "/v2/uploads/sha512-mono/blobs/uploads/",
        params={"digest": digest_of(data + b"x", "sha512")},
        data=data,
    )
    assert bad.status_code == 400
    assert client.error_code(bad) == "DIGEST_INVALID"


def test_pushing_existing_blob_again_succeeds(client: V2Client) -> None:
    """Uploading bytes the registry already holds is 201 and links them into the new repository."""
    data = os.urandom(777)
    digest = client.push_blob("uploads/dup-a", data)
    assert client.push_blob("uploads/dup-b", data) == digest
    assert _blob(client, "uploads/dup-b", digest).content == data


def test_put_with_final_chunk_at_wrong_offset_is_416(client: V2Client) -> None:
    """A PUT whose final chunk leaves a gap is 416, and the upload can still be finished."""
    data = os.urandom(2000)
    location = _patch(
        client, client.start_upload("uploads/final-gap").headers["Location"], data[:1000], 0
    ).headers["Location"]
    response = client.request(
        "PUT",
        location,
        params={"digest": digest_of(data)},
        data=data[1000:],
        headers={"Content-Range": f"1200-{1200 + 999}"},
    )
    assert response.status_code == 416
    assert client.error_code(response) == "BLOB_UPLOAD_INVALID"
    assert _blob(client, "uploads/final-gap", digest_of(data)).status_code == 404
    done = client.request(
        "PUT",
        location,
        params={"digest": digest_of(data)},
        data=data[1000:],
        headers={"Content-Range": "1000-1999"},
    )
    assert done.status_code == 201


def test_completed_upload_is_gone(client: V2Client) -> None:
    """After PUT completes an upload, its Location is 404 BLOB_UPLOAD_UNKNOWN."""
    start = client.start_upload("uploads/completed")
    location = start.headers["Location"]
    assert (
        client.request(
            "PUT", location, params={"digest": digest_of(b"done")}, data=b"done"
        ).status_code
        == 201
    )
    for method, kwargs in (
        ("GET", {}),
        ("PATCH", {"data": b"more"}),
        ("PUT", {"params": {"digest": digest_of(b"done")}}),
    ):
        response = client.request(method, location, **kwargs)
        assert response.status_code == 404, method
        assert client.error_code(response) == "BLOB_UPLOAD_UNKNOWN"
