"""The distribution spec's error codes with their HTTP status, and the error envelope."""

from __future__ import annotations

import json
from typing import Any

from appliance.registry.errors import RegistryError
from appliance.registry.manifests import ManifestTooLarge
from appliance.registry.uploads import RangeMismatch

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "NOT_FOUND": 404,
    "PAGINATION_NUMBER_INVALID": 400,
    "RANGE_INVALID": 416,
    "TOOMANYREQUESTS": 429,
    "UNAVAILABLE": 503,
    "UNKNOWN": 500,
    # The admin API's own: a malformed request body, and work that is already running.
    "BAD_REQUEST": 400,
    "CONFLICT": 409,
}


def status_of(error: RegistryError) -> int:
    if isinstance(error, RangeMismatch):
        return 416
    if isinstance(error, ManifestTooLarge):
        return 413
    return STATUS.get(error.code, 500)


def envelope(code: str, message: str, detail: Any = None) -> bytes:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()
