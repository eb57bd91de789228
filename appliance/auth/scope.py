"""Distribution's resource scopes: `repository:NAME:ACTIONS` and `registry:catalog:*`.

A scope is parsed from the right, because a repository name may hold a `host:port` part
(`repository:localhost:5000/app:pull,push`); the grammar is Distribution's `resourceScope`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CATALOG", "Scope", "format_scopes", "parse_scope", "parse_scopes"]

ACTIONS = ("pull", "push", "delete", "*")


@dataclass(frozen=True)
class Scope:
    """One resource and the actions wanted on (or granted for) it."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


CATALOG = Scope("registry", "catalog", ("*",))


def parse_scope(text: str) -> Scope | None:
    """`type:name:actions` -> Scope, or None when malformed. The name may contain colons."""
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        return None
    wanted = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    return Scope(kind, name, wanted)


def parse_scopes(texts: Iterable[str]) -> list[Scope]:
    """Every well-formed scope in `texts`; each text may hold several, separated by spaces."""
    scopes = []
    for text in texts:
        for part in text.split():
            scope = parse_scope(part)
            if scope is not None:
                scopes.append(scope)
    return scopes


def format_scopes(scopes: Iterable[Scope]) -> str:
    """Space-separated, as a `scope=` challenge parameter carries several."""
    return " ".join(str(scope) for scope in scopes)
