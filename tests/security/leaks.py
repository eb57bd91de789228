"""Secrets to look for, in every form they could leak in, and the search itself."""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.server import EXECUTABLE


def new_secret(label: str) -> str:
    return f"{label}-{secrets.token_hex(8)}"


@dataclass
class Secrets:
    """Every secret string, with the user names that go with passwords (for Basic's form)."""

    values: dict[str, str] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)  # label -> "user:password"

    def add(self, label: str, value: str, user: str = "") -> str:
        self.values[label] = value
        if user:
            self.logins[label] = f"{user}:{value}"
        return value

    def forms(self) -> dict[str, str]:
        """label -> text that must not appear: each value, its base64, Basic's base64."""
        found = {}
        for label, value in self.values.items():
            found[label] = value
            found[f"{label} (base64)"] = base64.b64encode(value.encode()).decode().rstrip("=")
        for label, login in self.logins.items():
            found[f"{label} (Basic)"] = base64.b64encode(login.encode()).decode().rstrip("=")
        return found

    def leaks(self, where: str, text: str) -> list[str]:
        return [f"{label} in {where}" for label, form in self.forms().items() if form in text]


def assert_no_leaks(found: Secrets, texts: Iterable[tuple[str, str]]) -> None:
    leaks = [leak for where, text in texts for leak in found.leaks(where, text)]
    assert not leaks, leaks


def config_check(config_path: Path) -> str:
    result = subprocess.run([*EXECUTABLE, "config", "check", str(config_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr
