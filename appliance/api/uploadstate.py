"""Upload state carried in `Location` URLs, signed with `http.secret`.

Any worker or instance holding the same secret can continue an upload, and a client cannot
steer an upload into another repository by editing the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class BadUploadState(ValueError):
    """The `_state` parameter was altered, truncated or signed with another secret."""


@dataclass(frozen=True)
class UploadState:
    name: str
    upload_id: str
    offset: int


class UploadStateSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, state: UploadState) -> str:
        payload = json.dumps(
            {"n": state.name, "u": state.upload_id, "o": state.offset}, separators=(",", ":")
        ).encode()
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(mac)}"

    def verify(self, token: str) -> UploadState:
        payload_text, _, mac_text = token.partition(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except ValueError:
            raise BadUploadState("malformed upload state") from None
        expected = hmac.new(self._secret, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise BadUploadState("upload state signature does not match")
        try:
            fields = json.loads(payload)
            return UploadState(str(fields["n"]), str(fields["u"]), int(fields["o"]))
        except (ValueError, KeyError, TypeError):
            raise BadUploadState("malformed upload state") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
