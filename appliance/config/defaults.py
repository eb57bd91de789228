"""Where the appliance keeps its files, and the config it runs with when given no file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

AUTH_OFF_WARNING = (
    "auth is off: anyone who can reach the port may push and pull; add a user with "
    "`registry-appliance users add NAME` and restart to turn htpasswd auth on"
)


@dataclass(frozen=True)
class DefaultPaths:
    data_dir: str
    certs_dir: str
    htpasswd_path: str
    admin_socket: str


def default_paths(
    environ: Mapping[str, str] = os.environ, euid: int | None = None
) -> DefaultPaths:
    """System paths for root; XDG base directories for anyone else, so an unprivileged
    user can run the appliance without touching /etc or /var."""
    if (os.geteuid() if euid is None else euid) == 0:
        return DefaultPaths(
            "/var/lib/registry",
            "/etc/registry-appliance/certs",
            "/etc/registry-appliance/htpasswd",
            "/run/registry-appliance/admin.sock",
        )
    home = environ.get("HOME") or os.path.expanduser("~")

    def xdg(variable: str, fallback: str) -> str:
        base = environ.get(variable, "")
        # The XDG spec says relative paths in these variables are invalid and ignored.
        return os.path.join(base if os.path.isabs(base) else os.path.join(home, fallback),
                            "registry-appliance")

    config = xdg("XDG_CONFIG_HOME", ".config")
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    socket_dir = (os.path.join(runtime, "registry-appliance") if os.path.isabs(runtime)
                  else xdg("XDG_CACHE_HOME", ".cache"))
    return DefaultPaths(
        xdg("XDG_DATA_HOME", os.path.join(".local", "share")),
        os.path.join(config, "certs"),
        os.path.join(config, "htpasswd"),
        os.path.join(socket_dir, "admin.sock"),
    )


def embedded_tree(paths: DefaultPaths) -> dict[str, object]:
    """The config used when no file is given, in config.yml's shape so env overrides apply.

    Unlike Distribution, deletes are enabled: an appliance admin expects deleting a tag from
    the TUI or CLI to work. TLS is on with certificates generated on first start, and htpasswd
    auth is on once the htpasswd file exists (`registry-appliance users add` creates it).
    """
    tree: dict[str, object] = {
        "version": "0.1",
        "storage": {"filesystem": {"rootdirectory": paths.data_dir}, "delete": {"enabled": True}},
        "http": {
            "addr": ":5000",
            "tls": {
                "certificate": os.path.join(paths.certs_dir, "server.crt"),
                "key": os.path.join(paths.certs_dir, "server.key"),
            },
        },
        "appliance": {"certs": {"autogenerate": True}},
    }
    if os.path.exists(paths.htpasswd_path):
        tree["auth"] = {"htpasswd": {"realm": "registry-appliance", "path": paths.htpasswd_path}}
    return tree
