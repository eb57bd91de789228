"""Tags list and catalog: lexical order, pagination with n/last and Link headers, errors."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.client import DOCKER_MANIFEST, V2Client
from tests.api.conftest import EXTRA_HEADERS
from tests.server import ApplianceServer

TAGS = ["v10", "v2", "latest", "V1", "1.0", "a_b", "a-b", "a.b", "_under", "Z"]
REPOSITORIES = ["listing/app", "listing/app/sub", "listing/other", "alpha", "zeta/x/y/z", "m0"]
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@pytest.fixture(scope="module")
def seeded(server: ApplianceServer) -> V2Client:
    """One image under every TAG in listing/app, and one image in each of REPOSITORIES."""
    client = V2Client(server.url, expect_headers=EXTRA_HEADERS)
    image = client.push_image("listing/app", TAGS[0], [os.urandom(100)])
    for tag in TAGS[1:]:
        assert (
            client.put_manifest("listing/app", tag, image.manifest, DOCKER_MANIFEST).status_code
            == 201
        )
    for name in REPOSITORIES[1:]:
        client.push_image(name, "latest", [os.urandom(10)])
    client.push_blob("listing/blobs-only", b"no manifests here")
    return client


def _follow(client: V2Client, path: str, key: str, n: int) -> tuple[list[list[str]], list[str]]:
    """Fetch every page from `path?n=`; return the pages and the Link targets seen."""
    pages, links = [], []
    response = client.request("GET", path, params={"n": str(n)})
    while True:
        assert response.status_code == 200
        pages.append(response.json()[key])
        link = response.headers.get("Link")
        if link is None:
            return pages, links
        target = LINK.match(link)
        assert target, link
        links.append(target["url"])
        assert len(pages) < 50
        response = client.request("GET", target["url"])


def test_tags_are_listed_in_lexical_order(seeded: V2Client) -> None:
    """GET tags/list is 200 with the repository name and every tag in byte-wise lexical order."""
    response = seeded.request("GET", "/v2/listing/app/tags/list")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"name": "listing/app", "tags": sorted(TAGS)}
    assert "Link" not in response.headers


def test_tags_pagination_with_n_and_link(seeded: V2Client) -> None:
    """With n=3, pages of 3 tags are chained by Link headers and cover every tag in order."""
    pages, links = _follow(seeded, "/v2/listing/app/tags/list", "tags", 3)
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [tag for page in pages for tag in page] == sorted(TAGS)
    first = urlsplit(links[0])
    assert first.path == "/v2/listing/app/tags/list"
    assert parse_qs(first.query) == {"n": ["3"], "last": [sorted(TAGS)[2]]}


def test_tags_last_without_n_returns_the_rest(seeded: V2Client) -> None:
    """`last` alone returns every tag after it, with no Link."""
    after = sorted(TAGS)[4]
    response = seeded.request("GET", "/v2/listing/app/tags/list", params={"last": after})
    assert response.json()["tags"] == sorted(TAGS)[5:]
    assert "Link" not in response.headers


def test_tags_last_and_n(seeded: V2Client) -> None:
    """`n` and `last` give the n tags after `last`; a `last` that is not a tag works too."""
    ordered = sorted(TAGS)
    response = seeded.request(
        "GET", "/v2/listing/app/tags/list", params={"n": "2", "last": ordered[1]}
    )
    assert response.json()["tags"] == ordered[2:4]
    assert "Link" in response.headers
    between = seeded.request("GET", "/v2/listing/app/tags/list", params={"n": "100", "last": "b"})
    assert between.json()["tags"] == [tag for tag in ordered if tag > "b"]


def test_tags_page_reaching_the_end_has_no_link(seeded: V2Client) -> None:
    """When n covers all remaining tags, there is no Link header."""
    for n in (len(TAGS), len(TAGS) + 5):
        response = seeded.request("GET", "/v2/listing/app/tags/list", params={"n": str(n)})
        assert response.json()["tags"] == sorted(TAGS)
        assert "Link" not in response.headers
    past = seeded.request("GET", "/v2/listing/app/tags/list", params={"n": "5", "last": "zzz"})
    assert past.json()["tags"] == []
    assert "Link" not in past.headers


def test_tags_of_unknown_repository_is_404_name_unknown(seeded: V2Client) -> None:
    """GET tags/list of a repository never pushed is 404 NAME_UNKNOWN."""
    response = seeded.request("GET", "/v2/listing/never/tags/list")
    assert response.status_code == 404
    assert seeded.error_code(response) == "NAME_UNKNOWN"


@pytest.mark.parametrize("n", ["abc", "-1", "1.5", " 2", "0x10", "²", "٣", "9" * 5000])
def test_invalid_n_is_400(seeded: V2Client, n: str) -> None:
    """A non-integer or negative n is 400 PAGINATION_NUMBER_INVALID (tags, catalog), not 500."""
    for path in ("/v2/listing/app/tags/list", "/v2/_catalog"):
        response = seeded.request("GET", path, params={"n": n})
        assert response.status_code == 400, (path, n[:10])
        assert seeded.error_code(response) == "PAGINATION_NUMBER_INVALID"


def test_catalog_lists_repositories_with_manifests_in_order(seeded: V2Client) -> None:
    """The catalog lists every repository holding a manifest, nested ones too, in lexical order."""
    response = seeded.request("GET", "/v2/_catalog")
    assert response.status_code == 200
    assert response.json() == {"repositories": sorted(REPOSITORIES)}
    assert "Link" not in response.headers


def test_catalog_pagination_with_n_and_link(seeded: V2Client) -> None:
    """With n=2 the catalog is paged by Link headers, covering every repository in order."""
    pages, links = _follow(seeded, "/v2/_catalog", "repositories", 2)
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [name for page in pages for name in page] == sorted(REPOSITORIES)
    assert all(urlsplit(link).path == "/v2/_catalog" for link in links)
    assert parse_qs(urlsplit(links[0]).query) == {"n": ["2"], "last": [sorted(REPOSITORIES)[1]]}


def test_catalog_last(seeded: V2Client) -> None:
    """The catalog with `last` lists the repositories after it (nested names compare as strings)."""
    response = seeded.request("GET", "/v2/_catalog", params={"last": "listing/app"})
    assert response.json()["repositories"] == [r for r in sorted(REPOSITORIES) if r > "listing/app"]


def test_large_n_returns_everything(seeded: V2Client) -> None:
    """An n far beyond the number of entries (but a sane integer) returns them all with no Link."""
    response = seeded.request("GET", "/v2/_catalog", params={"n": "9" * 30})
    assert response.status_code == 200
    assert response.json()["repositories"] == sorted(REPOSITORIES)
    assert "Link" not in response.headers
