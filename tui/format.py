"""Human-readable sizes, times and digests for narrow terminals."""

from __future__ import annotations

import time
from datetime import datetime


def size(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


def short_digest(digest: str) -> str:
    """`sha256:0123456789ab…` -> `0123456789ab`, as docker shows image IDs."""
    return digest.split(":", 1)[-1][:12]


def when(moment: float | str | None, now: float | None = None) -> str:
    """A timestamp or an RFC 3339 string as `2026-11-22 10:04` (or `-`)."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return moment[:16]
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))


def platform(entry: dict[str, str]) -> str:
    text = f"{entry.get('os', '?')}/{entry.get('architecture', '?')}"
    return f"{text}/{entry['variant']}" if entry.get("variant") else text
