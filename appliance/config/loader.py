"""`load`: config file or embedded defaults, then env overrides, then validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import yaml

from .build import build
from .defaults import AUTH_OFF_WARNING, DefaultPaths, default_paths, embedded_tree
from .environ import apply_environ
from .errors import ConfigError
from .model import EMBEDDED, Config
from .reader import describe_yaml_error, parse_yaml


def load(
    path: str | None, environ: Mapping[str, str], *, paths: DefaultPaths | None = None
) -> Config:
    """Read `path` (None: the embedded defaults) and apply `environ`'s overrides.

    `paths` defaults to `default_paths(environ)`; tests pass their own. Raises `ConfigError`.
    """
    paths = paths or default_paths(environ)
    tree = embedded_tree(paths) if path is None else _read(path)
    overrides = apply_environ(tree, environ)
    config = build(tree, path or EMBEDDED, paths, overrides.problems, overrides.ignored)
    if path is None and config.auth.htpasswd is None:
        return replace(config, warnings=(*config.warnings, AUTH_OFF_WARNING))
    return config


def _read(path: str) -> dict[object, object]:
    try:
        with open(path, "rb") as file:
            tree = parse_yaml(file.read())
    except OSError as error:
        raise ConfigError((f"{path}: cannot read: {error.strerror}",)) from None
    except yaml.YAMLError as error:
        raise ConfigError((f"{path}: not valid YAML: {describe_yaml_error(error)}",)) from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError((f"{path}: must be a map of sections such as version and storage",))
    return tree
