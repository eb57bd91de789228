"""`Range` (blob GET) and `Content-Range` (upload PATCH) header parsing."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)\Z")  # ASCII digits: `\d` takes "١٢" too
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?\Z")


class Unsatisfiable(ValueError):
    """The range cannot be served: answer 416."""


def parse_range(header: str, size: int) -> tuple[int, int]:
    """One `bytes=` range -> (start, end inclusive). Several ranges are refused, not merged."""
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
