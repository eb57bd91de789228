"""Whether writes are refused. Set from config at start."""

from __future__ import annotations


class ReadOnlyFlag:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
