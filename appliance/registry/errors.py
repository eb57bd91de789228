"""Domain errors carry the distribution spec's error code; the HTTP layer maps it to a status."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    def __init__(self, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
