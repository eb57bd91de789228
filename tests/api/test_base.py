"""The base endpoint, headers on every response, unknown endpoints and methods, error envelope."""

from __future__ import annotations

from tests.api.client import API_VERSION, V2Client, digest_of, raw_request
from tests.api.conftest import EXTRA_HEADERS
from tests.server import ApplianceServer


def test_base_endpoint_is_200_with_empty_json(client: V2Client) -> None:
    """GET /v2/ answers 200 with a JSON body of {}."""
    response = client.request("GET", "/v2/")
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["Content-Type"].startswith("application/json")


def test_base_endpoint_without_trailing_slash_and_head(client: V2Client) -> None:
    """GET /v2 and HEAD /v2/ also answer 200 (clients probe both)."""
    assert client.request("GET", "/v2").status_code == 200
    head = client.request("HEAD", "/v2/")
    assert head.status_code == 200
    assert head.content == b""


def test_api_version_and_configured_headers_on_errors(client: V2Client) -> None:
    """Error responses (400, 404, 405, 416) carry the API version and http.headers too."""
    missing = digest_of(b"never pushed")
    client.push_blob("base/headers", b"0123456789")
    responses = [
        client.request("GET", "/v2/Bad-Name/tags/list"),
        client.request("GET", f"/v2/base/headers/blobs/{missing}"),
        client.request("HEAD", f"/v2/base/headers/blobs/{missing}"),
        client.request("PUT", "/v2/"),
        client.request(
            "GET",
            f"/v2/base/headers/blobs/{digest_of(b'0123456789')}",
            headers={"Range": "bytes=50-60"},
        ),
        client.request("GET", "/nothing-here"),
    ]
    assert [r.status_code for r in responses] == [400, 404, 404, 405, 416, 404]
    for response in responses:
        for name, value in {
            "Docker-Distribution-Api-Version": "registry/2.0",
            **EXTRA_HEADERS,
        }.items():
            assert response.headers[name] == value


def test_configured_headers_absent_when_not_configured(nodelete_client: V2Client) -> None:
    """Without http.headers, responses carry the API version and Distribution's nosniff default."""
    response = nodelete_client.request("GET", "/v2/")
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Registry-Test" not in response.headers


def test_unknown_endpoint_under_v2_is_404_not_found(client: V2Client) -> None:
    """A path under /v2/ that names no endpoint is 404 with the NOT_FOUND envelope."""
    response = client.request("GET", "/v2/some/repo/nonsense")
    assert response.status_code == 404
    assert client.error_code(response) == "NOT_FOUND"


def test_path_outside_v2_is_404(client: V2Client) -> None:
    """A path outside /v2/ is 404 with an error envelope, not a directory listing."""
    for path in ("/", "/v1/_ping", "/v3/"):
        response = client.request("GET", path)
        assert response.status_code == 404
        assert client.error_code(response) == "NOT_FOUND"


def test_wrong_method_is_405_unsupported_with_allow(client: V2Client) -> None:
    """A method an endpoint does not take is 405 UNSUPPORTED with Allow listing those it does."""
    response = client.request("POST", "/v2/base/repo/tags/list")
    assert response.status_code == 405
    assert client.error_code(response) == "UNSUPPORTED"
    assert response.headers["Allow"] == "GET"
    other = client.request("PATCH", "/v2/base/repo/manifests/latest")
    assert other.status_code == 405
    assert other.headers["Allow"] == "DELETE, GET, HEAD, PUT"


def test_error_envelope_shape(client: V2Client) -> None:
    """Errors are JSON {"errors": [{"code", "message", "detail"?}]} with a JSON content type."""
    response = client.request("GET", f"/v2/base/envelope/blobs/{digest_of(b'x')}")
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["errors"]
    (entry,) = body["errors"]
    assert entry["code"] == "BLOB_UNKNOWN"
    assert isinstance(entry["message"], str)
    assert entry["message"]
    assert set(entry) <= {"code", "message", "detail"}
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_star_requests_carry_the_common_headers(server: ApplianceServer) -> None:
    """`OPTIONS *` (200) and `GET *` (405), answered by Twisted itself, carry the common headers."""
    expected = {**API_VERSION, **EXTRA_HEADERS}
    assert raw_request(server.url, "OPTIONS", b"*", expect_headers=expected).status == 200
    refused = raw_request(server.url, "GET", b"*", expect_headers=expected)
    assert refused.status == 405
    assert refused.headers["allow"] == "OPTIONS"


def test_absolute_form_request_target_is_404(server: ApplianceServer) -> None:
    """A proxy-style absolute URI as the request target is 404 NOT_FOUND, not a crash."""
    response = raw_request(
        server.url,
        "GET",
        f"{server.url}/v2/".encode(),
        expect_headers={**API_VERSION, **EXTRA_HEADERS},
    )
    assert response.status == 404
