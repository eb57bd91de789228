"""`Range` (blob GET) and `Content-Range` (upload PATCH) header parsing."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)\Z")  # ASCII digits: `\d` takes "١٢" too
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?\Z")


class Unsatisfiable(ValueError):
    """The range cannot be served: answer 416."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=` range -> (start, end inclusive); None when the header is to be ignored and
    the whole blob sent (RFC 9110 14.2): a unit other than bytes (which a server MUST ignore),
    or several ranges (we send no multipart answers; ignoring is what a server MAY do, 416 is
    not). A malformed or unsatisfiable bytes range is refused (416)."""
    unit, equals, ranges = header.strip().partition("=")
    if equals and unit.strip().lower() != "bytes":
        return None
    if equals and "," in ranges:
        return None
    found = _RANGE.match(header.strip())
    if not found or found.groups() == ("", ""):
        raise Unsatisfiable(f"unsupported Range {header!r}: use one bytes=START-END range")
    first, last = found.groups()
    if first == "":
        length = int(last)
        if length == 0:
            raise Unsatisfiable("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise Unsatisfiable(f"range {header!r} is outside the blob's {size} bytes")
    return start, end


def parse_content_range(header: str) -> tuple[int, int]:
    """`START-END` (inclusive, as docker sends it) -> (start, end)."""
    found = _CONTENT_RANGE.match(header.strip())
    if not found:
        raise ValueError(f"malformed Content-Range {header!r}")
    start, end = int(found.group(1)), int(found.group(2))
    if end < start:
        raise ValueError(f"Content-Range {header!r} ends before it starts")
    return start, end
