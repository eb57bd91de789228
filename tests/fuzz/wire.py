"""Send requests byte for byte over a bare socket and keep score of every answer.

`requests` would fix up what the fuzz tests break on purpose (`..` in paths, bad
`Content-Length`, bodies shorter or longer than announced), so requests go out as raw bytes.
Every answer is checked with the API suite's `check_response` (no 5xx, no traceback, the API
version header); a failure is recorded with the request that caused it, not raised, so one run
reports all of them.
"""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass, field

from tests.api.client import API_VERSION, check_response


@dataclass
class Answer:
    status: int  # 0: the server closed the connection without answering
    headers: dict[str, str]
    body: bytes


@dataclass
class Tally:
    """Cases tried per endpoint, statuses seen, and every bad answer with its request."""

    label: str
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    outside_root: int | None = None  # files written outside the storage root, once checked

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        per_endpoint = ", ".join(f"{name} {count}" for name, count in sorted(self.cases.items()))
        statuses = ", ".join(f"{status or 'closed'}: {count}"
                             for status, count in sorted(self.statuses.items()))
        outside = "not checked" if self.outside_root is None else self.outside_root
        return (f"fuzz {self.label}: {sum(self.cases.values())} cases ({per_endpoint}); "
                f"statuses ({statuses}); 5xx {self.server_errors}; "
                f"bad answers {len(self.failures)}; files outside root {outside}")


def head(method: str, target: bytes, headers: dict[str, str] | list[tuple[str, str]],
         content_length: int | None = None) -> bytes:
    """A request line and headers; `Content-Length` only when given (or in `headers`)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    if content_length is not None:
        items.append(("Content-Length", str(content_length)))
    lines = [method.encode("latin-1") + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [f"{k}: {v}".encode("utf-8", "surrogateescape") for k, v in items]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 15) -> Answer:
    """Send `data`, then read until the server closes. `half_close` shuts our side after
    sending: a truncated body then ends at once instead of at the idle timeout (Twisted takes
    the half-close for a hang-up, so often there is no answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN: the server refused early (headers over
            pass  # the limit, a bad request) and closed: read what it said
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return parse(received)


def parse(received: bytes) -> Answer:
    """The first final response in `received`: `100 Continue` is skipped, a pipelined second
    response is left in the body."""
    while received.startswith(b"HTTP/1.1 1"):
        received = received.partition(b"\r\n\r\n")[2]
    if not received.startswith(b"HTTP/"):
        return Answer(0, {}, received)
    header_block, _, body = received.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.setdefault(key.strip().title(), value.strip())
    return Answer(int(lines[0].split()[1]), headers, body)


def record(tally: Tally, endpoint: str, request: bytes, answer: Answer,
           may_close: bool = False) -> Answer:
    """Count the case; keep the request of any answer that breaks the rules for every answer.

    Twisted's parser refuses what it cannot parse with a bare 400 (no registry headers) and the
    header timeout answers a bare 408; closing without an answer is allowed only when the client
    hung up first (`may_close`)."""
    tally.cases[endpoint] += 1
    tally.statuses[answer.status] += 1
    if answer.status == 0 and not may_close:
        tally.failures.append(f"{endpoint}: closed without an answer <- {request[:600]!r}")
        return answer
    bare = answer.status in (400, 408) and "Docker-Distribution-Api-Version" not in answer.headers
    try:
        check_response(answer.status, answer.headers, answer.body[:4096],
                       {} if bare or answer.status == 0 else API_VERSION)
    except AssertionError as problem:
        tally.failures.append(f"{endpoint}: {problem} <- {request[:600]!r}")
    return answer
