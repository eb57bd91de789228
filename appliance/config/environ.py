"""`REGISTRY_*` environment overrides, applied to the YAML tree as Distribution applies them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from .build import STORAGE_SECTIONS
from .reader import describe_yaml_error, parse_yaml

PREFIX = "REGISTRY_"
# The config file's path, read by the CLI: not a config key.
CONFIG_PATH_ENV = "REGISTRY_CONFIGURATION_PATH"
NOT_OVERRIDES = frozenset({CONFIG_PATH_ENV})


@dataclass(frozen=True)
class Overrides:
    """What applying the environment found: bad values, and variables that set nothing."""

    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def apply_environ(tree: dict[object, object], environ: Mapping[str, str]) -> Overrides:
    """Set `REGISTRY_SECTION_KEY=value` into `tree` in name order, so `REGISTRY_STORAGE=s3`
    comes before `REGISTRY_STORAGE_S3_BUCKET`. Path parts match existing keys whatever their
    case; new keys are lowercase. Values are YAML."""
    found = Overrides()
    if isinstance(storage := tree.get("storage"), str):  # `storage: filesystem` names it.
        _select_driver(tree, storage)
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in NOT_OVERRIDES:
            continue
        parts = name[len(PREFIX):].split("_")
        try:
            value = parse_yaml(environ[name])
        except yaml.YAMLError as error:
            found.problems.append(f"{name}: not valid YAML: {describe_yaml_error(error)}")
            continue
        if parts == ["STORAGE"] and isinstance(value, str):
            _select_driver(tree, value)
        elif "" in parts or not _set(tree, parts, value):
            # Distribution skips these too; Kubernetes' REGISTRY_PORT_5000_TCP is one.
            found.ignored.append(name)
    return found


def _set(node: dict[object, object], parts: list[str], value: object) -> bool:
    for part in parts[:-1]:
        key = _match(node, part)
        child = node.get(key)
        if child is None or child == "":
            child = node[key] = {}
        if not isinstance(child, dict):
            return False
        node = child
    node[_match(node, parts[-1])] = value
    return True


def _match(node: dict[object, object], part: str) -> object:
    return next((key for key in node if str(key).upper() == part.upper()), part.lower())


def _select_driver(tree: dict[object, object], driver: str) -> None:
    """Replace the driver, keeping driver-independent settings such as `delete`."""
    storage = tree.get("storage")
    kept = {k: v for k, v in storage.items() if k in STORAGE_SECTIONS} if isinstance(
        storage, dict) else {}
    tree["storage"] = {driver: {}, **kept}
