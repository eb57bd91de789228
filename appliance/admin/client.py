"""A small synchronous admin API client: the local UNIX socket, or a URL with an admin password.

Standard library only and no Twisted, so the CLI and the TUI (from a worker thread) share it.
Every failure is one `AdminError` whose message an operator can act on.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from . import routes

NOT_RUNNING = (
    "cannot reach the admin socket at {path}: is the server running? (registry-appliance serve)"
)


class AdminError(Exception):
    """A failed admin call; `status` and `code` are set when the server answered with an error."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a UNIX socket; the Host header says `localhost`."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class AdminClient:
    """`target` is a socket path, or an `http(s)://host:port` URL of the main port."""

    def __init__(
        self,
        target: str,
        user: str | None = None,
        password: str | None = None,
        cafile: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._url = urlsplit(target) if target.startswith(("http://", "https://")) else None
        self._headers = {"Accept": "application/json"}
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._tls = _tls_context(cafile) if self._url and self._url.scheme == "https" else None

    # -- endpoints ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.request("GET", routes.STATUS)

    def repositories(self) -> list[dict[str, Any]]:
        return self.request("GET", routes.REPOSITORIES)["repositories"]

    def tags(self, name: str) -> list[dict[str, Any]]:
        return self.request("GET", routes.tags_url(name))["tags"]

    def manifest(self, name: str, reference: str) -> dict[str, Any]:
        return self.request("GET", routes.manifest_url(name, reference))

    def delete_tag(self, name: str, tag: str) -> dict[str, Any]:
        return self.request("DELETE", routes.tag_url(name, tag))

    def delete_manifest(self, name: str, digest: str) -> dict[str, Any]:
        return self.request("DELETE", routes.manifest_url(name, digest))

    def copy(self, source: str, destination: str) -> dict[str, Any]:
        return self.request("POST", routes.COPY, {"source": source, "destination": destination})

    def readonly(self) -> bool:
        return bool(self.request("GET", routes.READONLY)["enabled"])

    def set_readonly(self, enabled: bool) -> bool:
        return bool(self.request("PUT", routes.READONLY, {"enabled": enabled})["enabled"])

    def start_gc(self, dry_run: bool = False, delete_untagged: bool = False) -> dict[str, Any]:
        return self.request(
            "POST", routes.GC, {"dry_run": dry_run, "delete_untagged": delete_untagged}
        )

    def gc_status(self) -> dict[str, Any]:
        return self.request("GET", routes.GC)

    def start_fsck(self, repair: bool = False) -> dict[str, Any]:
        return self.request("POST", routes.FSCK, {"repair": repair})

    def fsck_status(self) -> dict[str, Any]:
        return self.request("GET", routes.FSCK)

    def purge_uploads(self, dry_run: bool = False, age: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"dry_run": dry_run}
        if age is not None:
            body["age"] = age
        return self.request("POST", routes.PURGE, body)

    def notifications(self) -> dict[str, Any]:
        """Each webhook endpoint's queue and delivery state."""
        return self.request("GET", routes.NOTIFICATIONS)

    def last_purge(self) -> dict[str, Any] | None:
        return self.request("GET", routes.PURGE)["last"]

    # -- transport ------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the parsed JSON answer, or AdminError."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        connection = self._connection()
        try:
            connection.request(method, self._path(path), body=data, headers=headers)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except TimeoutError:
            raise AdminError(
                f"the admin API at {self.target} did not answer within {self.timeout:g}s"
            ) from None
        except ssl.SSLCertVerificationError as error:
            raise AdminError(
                f"cannot verify the TLS certificate of {self.target}: {error.verify_message}; "
                "pass the registry's CA file (ca.crt)"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise self._unreachable(error) from None
        finally:
            connection.close()
        try:
            return _parse(status, payload, self.target)
        except AdminError as error:
            if error.status != 401:
                raise
            problem = (
                "wrong user name or password"
                if "Authorization" in self._headers
                else "an admin user name and password are required"
            )
            raise AdminError(f"{self.target}: {problem}", 401, error.code) from None

    def _connection(self) -> http.client.HTTPConnection:
        if self._url is None:
            return UnixHTTPConnection(self.target, self.timeout)
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._url.netloc, timeout=self.timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._url.netloc, timeout=self.timeout)

    def _path(self, path: str) -> str:
        return (self._url.path.rstrip("/") if self._url else "") + path

    def _unreachable(self, error: Exception) -> AdminError:
        if self._url is not None:
            return AdminError(f"cannot reach the admin API at {self.target}: {_reason(error)}")
        if isinstance(error, PermissionError):
            return AdminError(
                f"cannot open the admin socket at {self.target}: permission denied; it belongs "
                "to the user the server runs as (try sudo)"
            )
        if isinstance(error, FileNotFoundError | ConnectionRefusedError):
            return AdminError(NOT_RUNNING.format(path=self.target))
        return AdminError(f"cannot talk to the admin socket at {self.target}: {_reason(error)}")


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    """Trust `cafile` (the registry's own CA), else the system's CAs."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        raise AdminError(f"cannot use {cafile} as a CA certificate: {_reason(error)}") from None


def _parse(status: int, payload: bytes, target: str) -> Any:
    try:
        value = json.loads(payload) if payload else None
    except ValueError:
        value = None
    if 200 <= status < 300 and value is not None:
        return value
    try:
        error = value["errors"][0]
        message, code = str(error["message"]), str(error["code"])
    except (TypeError, KeyError, IndexError):
        raise AdminError(f"unexpected answer from {target}: HTTP {status}", status) from None
    raise AdminError(message, status, code)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
