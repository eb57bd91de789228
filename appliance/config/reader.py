"""Typed reads from the YAML tree; every problem names its dotted key, nothing raises."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from fractions import Fraction

import yaml

_KEEP = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"}


class TextLoader(yaml.SafeLoader):
    """Leaves scalars as the text written (only nulls and merge keys resolve), so each field
    parses its own type as Go's typed unmarshalling does: `version: 0.1` stays "0.1"."""


TextLoader.yaml_implicit_resolvers = {
    first: kept
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    if (kept := [r for r in resolvers if r[0] in _KEEP])
}
for _tag in ("bool", "int", "float", "timestamp", "binary"):  # explicit `!!int 5` is text too
    TextLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", TextLoader.construct_scalar)


def parse_yaml(text: str | bytes) -> object:
    """Parse one YAML document; raises `yaml.YAMLError`."""
    try:
        return yaml.load(text, Loader=TextLoader)  # noqa: S506 - TextLoader is a SafeLoader
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """One line, with the position when PyYAML knows it."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    return f"line {mark.line + 1} column {mark.column + 1}: {problem}" if mark else problem


_TRUE, _FALSE = {"true", "yes", "y", "on"}, {"false", "no", "n", "off"}
_INTEGER = re.compile(r"[+-]?\d+")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
                   "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = rf"(\d+\.?\d*|\.\d+)({'|'.join(sorted(_DURATION_UNITS, key=len, reverse=True))})"
_GO_DURATION = re.compile(f"(?:{_DURATION_PART})+")
_SIZE = re.compile(r"(\d+\.?\d*)\s*([kmgt]i?b|b)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1} | {f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgt")} | {
    f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgt")}


def parse_duration(text: str) -> float:
    """Seconds from a Go duration ("168h", "1h30m", "500ms") or a plain number of seconds."""
    if _INTEGER.fullmatch(text) and not text.startswith("-"):
        seconds = float(text)
    elif _GO_DURATION.fullmatch(text):
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in re.findall(_DURATION_PART, text))
    else:
        raise ValueError(text)
    if not math.isfinite(seconds):
        raise ValueError(text)
    return seconds


def parse_size(text: str) -> int:
    """Bytes from a number of bytes or a size such as "512MiB", "10GiB" or "2GB"."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(text)
    return int(Fraction(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()])


class Section:
    """One mapping of the input. It remembers which keys were read, so the rest can be
    reported as ignored. An empty value (`key:` or `key: ""`) means "use the default"."""

    def __init__(self, path: str, value: object, problems: list[str]) -> None:
        self.path = path
        self._problems = problems
        self._items: dict[object, object] = value if isinstance(value, dict) else {}
        self._read: dict[object, Section | None] = {}
        self.valid = isinstance(value, dict) or _empty(value)
        if not self.valid:
            problems.append(f"{path}: must be a map")

    def keys(self) -> list[str]:
        return [str(key) for key in self._items]

    def has(self, key: str) -> bool:
        """Whether `key` is given a value (an empty one means the default)."""
        return not _empty(self._items.get(key))

    def problem(self, key: str, message: str) -> None:
        """Record `message` against `key`, or against this section itself when `key` is ""."""
        self._problems.append(f"{self._dotted(key)}: {message}")

    def section(self, key: str) -> Section:
        child = Section(self._dotted(key), self._items.get(key), self._problems)
        self._read[key] = child
        return child

    def sections(self, key: str) -> list[Section]:
        """A list of maps, such as `notifications.endpoints`; items are named `key[i]`."""
        value = self._take(key)
        if value is not None and not isinstance(value, list):
            self.problem(key, "must be a list")
            value = None
        children = [Section(f"{self._dotted(key)}[{i}]", item, self._problems)
                    for i, item in enumerate(value or [])]
        self._read[key] = _Sections(children)  # type: ignore[assignment]
        return children

    def string(self, key: str, default: str) -> str:
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, dict | list):
            self.problem(key, "must be a string")
            return default
        return str(value)

    def required(self, key: str) -> str:
        if self._take(key) is None:
            self.problem(key, "required")
        return self.string(key, "")

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings; a single string is taken as a one-element list."""
        value = self._take(key)
        items = [] if value is None else value if isinstance(value, list) else [value]
        if any(isinstance(item, dict | list) or item is None for item in items):
            self.problem(key, "must be a string or a list of strings")
            return ()
        return tuple(str(item) for item in items)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is None or isinstance(value, bool):
            return default if value is None else value
        if str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        self.problem(key, "must be true or false")
        return default

    def integer(self, key: str, default: int) -> int:
        text = self.string(key, str(default))
        if _INTEGER.fullmatch(text):
            return int(text)
        self.problem(key, "must be a whole number")
        return default

    def choice(self, key: str, default: str, choices: dict[str, str]) -> str:
        """One of `choices`' keys (case-insensitive), mapped to its canonical spelling."""
        text = self.string(key, default).lower()
        if text not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}")
        return choices.get(text, default)

    def duration(self, key: str, default: float) -> float:
        text = self.string(key, "")
        try:
            return parse_duration(text) if text else default
        except ValueError:
            self.problem(key, "must be a duration like 168h, 1h30m or 10s")
            return default

    def size(self, key: str, default: int) -> int:
        text = self.string(key, "")
        try:
            return parse_size(text) if text else default
        except ValueError:
            self.problem(key, "must be a size like 512MiB, 10GiB or a number of bytes")
            return default

    def unread(self) -> Iterator[str]:
        """Dotted keys that no one read, in input order; a wholly unread map counts once."""
        for key in self._items:
            if key not in self._read:
                yield self._dotted(str(key))
            elif (child := self._read[key]) is not None:
                yield from child.unread()

    def _take(self, key: str) -> object:
        self._read.setdefault(key, None)
        value = self._items.get(key)
        return None if _empty(value) else value

    def _dotted(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else self.path or key


class _Sections:
    """The read items of a list of maps, so their unread keys are reported too."""

    def __init__(self, children: list[Section]) -> None:
        self._children = children

    def unread(self) -> Iterator[str]:
        for child in self._children:
            yield from child.unread()


def _empty(value: object) -> bool:
    return value is None or value == ""
