"""Distribution's `config.yml` (same keys, same `REGISTRY_*` overrides), as typed frozen objects.

Appliance-only settings live under `appliance:`. Imports nothing else of ours.
"""

from __future__ import annotations

from .defaults import DefaultPaths, default_paths
from .environ import CONFIG_PATH_ENV
from .errors import ConfigError
from .loader import load
from .model import (
    ApplianceConfig,
    AuthConfig,
    Config,
    HtpasswdConfig,
    HTTPConfig,
    LogConfig,
    StorageConfig,
    TLSConfig,
    UploadPurgingConfig,
)
from .redact import redacted_yaml

__all__ = [
    "CONFIG_PATH_ENV",
    "ApplianceConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "DefaultPaths",
    "HTTPConfig",
    "HtpasswdConfig",
    "LogConfig",
    "StorageConfig",
    "TLSConfig",
    "UploadPurgingConfig",
    "default_paths",
    "load",
    "redacted_yaml",
]
