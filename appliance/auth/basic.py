"""Basic auth against an htpasswd file: bcrypt once per credential, then a short-lived verdict.

bcrypt is slow on purpose. Distribution pays it on every request and loses half its request
rate; we check a credential once (in a thread) and remember the verdict for `ttl` seconds,
keyed by a keyed hash of the credential so the cache never holds a password. The cache is
dropped when the file changes, so removing a user takes effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable

from twisted.logger import Logger

from . import htpasswd
from .ratelimit import LoginLimiter

log = Logger()

_DUMMY_HASH = htpasswd.hash_password(os.urandom(16).hex())


def parse_basic(header: bytes | None) -> tuple[str, str] | None:
    """`Authorization: Basic ...` -> (user, password), or None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class HtpasswdAuthenticator:
    def __init__(
        self,
        path: str,
        realm: str,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.path = path
        self.realm = realm
        self.ttl = ttl
        self._clock = clock
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._stamp: htpasswd.FileStamp | None = None
        self._entries: dict[str, str] = {}
        self._verdicts: dict[bytes, tuple[bool, float]] = {}
        self.limiter = limiter or LoginLimiter()

    def cached_verdict(self, user: str, password: str) -> bool | None:
        """The remembered answer, or None when bcrypt must run. Cheap: safe on the reactor."""
        self._reload_if_changed()
        entry = self._verdicts.get(self._fingerprint(user, password))
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def check(self, user: str, password: str) -> bool:
        """Run bcrypt (blocking: call it in a thread) and remember the verdict."""
        self._reload_if_changed()
        with self._lock:
            hashed = self._entries.get(user)
        verdict = htpasswd.verify(hashed or _DUMMY_HASH, password) and hashed is not None
        with self._lock:
            self._verdicts[self._fingerprint(user, password)] = (verdict, self._clock() + self.ttl)
            if len(self._verdicts) > 10000:
                self._verdicts.clear()
        return verdict

    def knows(self, user: str) -> bool:
        """Whether `user` is in the file now (a refresh token outlives a removed user otherwise)."""
        self._reload_if_changed()
        with self._lock:
            return user in self._entries

    def reload(self) -> None:
        """Re-read the file even if it looks unchanged (SIGHUP), dropping remembered verdicts."""
        self._stamp = None
        self._reload_if_changed()

    def _fingerprint(self, user: str, password: str) -> bytes:
        message = user.encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _reload_if_changed(self) -> None:
        """Re-read a changed file; a broken one is reported once and the last good users kept."""
        stamp = htpasswd.FileStamp.of(self.path)
        if stamp == self._stamp:
            return
        try:
            entries = htpasswd.read_entries(self.path)
        except (htpasswd.HtpasswdError, OSError, UnicodeDecodeError) as error:
            log.error("htpasswd file not reloaded, keeping the previous users: {error}", error=error)
            self._stamp = stamp
            return
        with self._lock:
            self._stamp, self._entries = stamp, entries
            self._verdicts.clear()
