"""The one place that knows Distribution's storage layout (and where our own state goes).

    /docker/registry/v2/
        blobs/<alg>/<hex[:2]>/<hex>/data
        repositories/<name>/
            _layers/<alg>/<hex>/link                     -> "<alg>:<hex>"
            _manifests/revisions/<alg>/<hex>/link
            _manifests/tags/<tag>/current/link
            _manifests/tags/<tag>/index/<alg>/<hex>/link
            _uploads/<uuid>/data, startedat
            _uploads/<uuid>/chunks/<start offset>        object stores: one object per chunk
    /appliance/                                           state Distribution never reads
        repositories/<name>/_referrers/<subject alg>/<subject hex>/<alg>/<hex>/link
        http-secret
        readonly                                           the runtime read-only flag (JSON)
        gc/lock, gc/history.json, gc/progress.json
        gc/trash/<alg>/<hex>                               blobs a running GC is about to delete
        quarantine/<time>/<original path>                  what `fsck --repair` found broken
        spool/
        events/<endpoint>/<sequence>.json                  queued webhook events (filesystem driver;
                                                           `appliance.notifications.statedir`)
        proxy/tags/<name>/<tag>                            pull-through cache: when the tag was
                                                           last checked upstream (JSON)
        proxy/incoming/<uuid>                              blobs being fetched from the upstream

Repository name components cannot start with `_`, so `_layers` and friends never collide with
a nested repository.
"""

from __future__ import annotations

from appliance.oci.digest import Digest

V2 = "/docker/registry/v2"
BLOBS = f"{V2}/blobs"
REPOSITORIES = f"{V2}/repositories"
APPLIANCE = "/appliance"
HTTP_SECRET = f"{APPLIANCE}/http-secret"
READONLY = f"{APPLIANCE}/readonly"
GC = f"{APPLIANCE}/gc"
GC_LOCK = f"{GC}/lock"
GC_HISTORY = f"{GC}/history.json"
GC_PROGRESS = f"{GC}/progress.json"
TRASH = f"{GC}/trash"
QUARANTINE = f"{APPLIANCE}/quarantine"
PROXY = f"{APPLIANCE}/proxy"
PROXY_INCOMING = f"{PROXY}/incoming"


def quarantined(stamp: str, path: str) -> str:
    """Where `fsck --repair` moves `path`: the original path under one folder per run."""
    return f"{QUARANTINE}/{stamp}{path}"


def proxy_tag(name: str, tag: str) -> str:
    """When the pull-through cache last checked `name:tag` upstream."""
    return f"{PROXY}/tags/{name}/{tag}"


def proxy_incoming(fetch_id: str) -> str:
    """A blob being fetched from the upstream; moved into the blob store once verified."""
    return f"{PROXY_INCOMING}/{fetch_id}"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_data(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def trash(digest: Digest) -> str:
    return f"{TRASH}/{digest.algorithm}/{digest.hex}"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layers(name: str) -> str:
    return f"{repository(name)}/_layers"


def layer_link(name: str, digest: Digest) -> str:
    return f"{layers(name)}/{digest.algorithm}/{digest.hex}/link"


def revisions(name: str) -> str:
    return f"{repository(name)}/_manifests/revisions"


def revision_link(name: str, digest: Digest) -> str:
    return f"{revisions(name)}/{digest.algorithm}/{digest.hex}/link"


def tags(name: str) -> str:
    return f"{repository(name)}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags(name)}/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{tag_dir(name, tag)}/index/{digest.algorithm}/{digest.hex}/link"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{repository(name)}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/data"


def upload_chunks(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/chunks"


def upload_chunk(name: str, upload_id: str, start: int) -> str:
    """Zero padded, so the chunks list in byte order."""
    return f"{upload_chunks(name, upload_id)}/{start:020d}"


def upload_started_at(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/startedat"


def referrers(name: str, subject: Digest) -> str:
    return f"{APPLIANCE}/repositories/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers(name, subject)}/{referrer.algorithm}/{referrer.hex}/link"


def link_target(path_of_link_dir_child: str) -> Digest:
    """`.../<alg>/<hex>` (a link's parent folder) back to its digest."""
    algorithm, hexpart = path_of_link_dir_child.rstrip("/").split("/")[-2:]
    return Digest(algorithm, hexpart)
