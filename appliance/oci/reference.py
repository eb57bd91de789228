"""Repository names and tags: the distribution spec's grammar, which also keeps paths safe."""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")  # \Z: `$` lets a "\n" through
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
MAX_NAME_LENGTH = 255


class InvalidName(ValueError):
    """The repository name is outside the spec's grammar."""


class InvalidTag(ValueError):
    """The tag is outside the spec's grammar."""


def check_name(name: str) -> str:
    """Return `name` when valid; the grammar excludes `..`, empty and absolute components."""
    if len(name) > MAX_NAME_LENGTH or not NAME.match(name):
        raise InvalidName(f"invalid repository name {name!r}")
    return name


def check_tag(tag: str) -> str:
    if not TAG.match(tag):
        raise InvalidTag(f"invalid tag {tag!r}")
    return tag


def split_reference(text: str) -> tuple[str, str]:
    """`name:tag` or `name@digest` -> (name, tag or digest); a bare `name` -> (name, "").

    Names hold no colon, so only the last path component can carry the tag. The name and tag
    are checked; a digest is returned as text for the caller to parse.
    """
    name, at, digest = text.partition("@")
    if at:
        return check_name(name), digest
    head, slash, last = name.rpartition("/")
    base, colon, tag = last.partition(":")
    return check_name(head + slash + base), check_tag(tag) if colon else ""
