"""The CLI verbs that operate a running server through its admin API.

`readonly`, `tags`, `retag`, `gc` and `du` talk to the admin socket named by the config (or
`--admin`), or to `--admin https://host:port` as an htpasswd admin user.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from appliance.admin.client import AdminClient
from appliance.config import CONFIG_PATH_ENV, ConfigError, load
from appliance.oci.reference import split_reference

PASSWORD_ENV = "REGISTRY_ADMIN_PASSWORD"
POLL_SECONDS = 0.5


def admin_client(args: argparse.Namespace) -> AdminClient:
    """From `--admin`, else the socket `appliance.admin.socket` of `-c CONFIG` (or the default).

    For a URL the password comes from REGISTRY_ADMIN_PASSWORD, else from `docker login`'s
    entry for that host in ~/.docker/config.json, else a prompt.
    """
    target = args.admin or _configured_socket(args.config_option or os.environ.get(CONFIG_PATH_ENV))
    user, password = args.user, os.environ.get(PASSWORD_ENV)
    if target.startswith(("http://", "https://")) and password is None:
        saved = docker_login(urlsplit(target).netloc)
        if saved is not None and user in (None, saved[0]):
            user, password = saved
    if user is not None and password is None:
        password = getpass.getpass(f"Password for {user}: ")
    return AdminClient(target, user, password, args.ca_file)


def docker_login(host: str) -> tuple[str, str] | None:
    """(user, password) that `docker login HOST` saved in plain `auths`, if any."""
    path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            auth = json.load(f).get("auths", {}).get(host, {}).get("auth")
        user, _, password = base64.b64decode(auth).decode().partition(":")
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return (user, password) if user else None


def _configured_socket(config_path: str | None) -> str:
    try:
        return load(config_path, os.environ).appliance.admin_socket
    except ConfigError as error:
        raise ValueError("\n".join(error.problems)) from None


# -- verbs -------------------------------------------------------------------------------


def cmd_readonly(args: argparse.Namespace) -> int:
    client = admin_client(args)
    if args.state == "status":
        enabled = client.readonly()
    else:
        enabled = client.set_readonly(args.state == "on")
    if enabled:
        print("read-only: on (writes are refused; every server on this storage follows within 1 s)")
    else:
        print("read-only: off")
    return 0


def cmd_tags_list(args: argparse.Namespace) -> int:
    tags = admin_client(args).tags(args.repository)
    rows = [
        (
            t["tag"],
            t["digest"],
            t["kind"],
            human(t["size"]),
            _day(t["created"]),
            _platforms(t["platforms"]),
        )
        for t in tags
    ]
    print_table(("TAG", "DIGEST", "KIND", "SIZE", "CREATED", "PLATFORMS"), rows, right={3})
    return 0


def cmd_tags_delete(args: argparse.Namespace) -> int:
    name, tag = split_reference(args.reference)
    if not tag or "@" in args.reference:
        raise ValueError(f"tags delete takes REPO:TAG, not {args.reference!r}")
    deleted = admin_client(args).delete_tag(name, tag)
    print(
        f"deleted tag {name}:{tag} (the manifest {deleted['digest']} and any other tags on it stay)"
    )
    return 0


def cmd_retag(args: argparse.Namespace) -> int:
    copied = admin_client(args).copy(args.source, args.destination)
    print(
        f"{copied['destination']} now names {copied['digest']} "
        f"({copied['mounted']} blobs linked, no data copied)"
    )
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Start a GC on the server, print its progress, then what it removed (or would)."""
    client = admin_client(args)
    before = client.gc_status()["history"]
    previous = before[0]["started"] if before else None
    client.start_gc(args.dry_run, args.delete_untagged)
    print(
        "garbage collection started"
        + (" (dry run: nothing will be removed)" if args.dry_run else "")
    )
    shown = None
    try:
        while (status := client.gc_status())["running"]:
            progress = status["progress"] or {}
            step = (progress.get("phase"), progress.get("done"), progress.get("total"))
            if step != shown and step[0] not in (None, "idle"):
                print(f"  {step[0]} {step[1]}/{step[2]}", flush=True)
                shown = step
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        print("\nstopped watching; the garbage collection goes on in the server", file=sys.stderr)
        return 1
    if status["error"]:
        raise ValueError(status["error"])
    history = status["history"]
    if not history or history[0]["started"] == previous:
        raise ValueError("the garbage collection left no result; see the server log")
    print_gc_result(history[0])
    return 0


def print_gc_result(result: dict[str, Any]) -> None:
    """A GC result (`GCResult.to_json()`), one line per thing removed, then the totals."""
    verb = "would remove" if result["dry_run"] else "removed"
    for item in result["manifests"]:
        print(f"{verb} manifest {item['repository']}@{item['digest']}")
    for digest in result["blobs"]:
        print(f"{verb} blob {digest}")
    for name in result["repositories"]:
        print(f"{verb} empty repository {name}")
    freed = result["bytes_freed"]
    outcome = "would be freed" if result["dry_run"] else "freed"
    print(
        f"{len(result['blobs'])} blobs, {len(result['manifests'])} manifests, "
        f"{freed} bytes ({human(freed)}) {outcome} in {result['finished'] - result['started']:.1f}s"
    )


def cmd_du(args: argparse.Namespace) -> int:
    client = admin_client(args)
    if args.repository:
        rows = [
            (t["tag"], human(t["size"]), t["kind"], t["digest"][:19])
            for t in client.tags(args.repository)
        ]
        print_table(("TAG", "SIZE", "KIND", "DIGEST"), rows, right={1})
        return 0
    rows = [
        (
            r["name"],
            str(r["tags"]),
            human(r["unique_bytes"]),
            human(r["shared_bytes"]),
            _when(r["last_push"]),
        )
        for r in client.repositories()
    ]
    print_table(("REPOSITORY", "TAGS", "UNIQUE", "SHARED", "LAST PUSH"), rows, right={1, 2, 3})
    return 0


# -- output ------------------------------------------------------------------------------


def human(size: int) -> str:
    """Bytes in binary units, as `du -h` would say them: `512 B`, `1.5 KiB`, `3.0 GiB`."""
    if size < 1024:
        return f"{size} B"
    exponent = min((size.bit_length() - 1) // 10, 4)
    return f"{size / 1024**exponent:.1f} {('KiB', 'MiB', 'GiB', 'TiB')[exponent - 1]}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    for row in (headers, *rows):
        cells = [
            str(cell).rjust(w) if i in right else str(cell).ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def _when(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M") if seconds else "-"


def _day(created: str | None) -> str:
    return created[:16].replace("T", " ") if created else "-"


def _platforms(platforms: list[dict[str, str]]) -> str:
    names = ["/".join(p[k] for k in ("os", "architecture", "variant") if k in p) for p in platforms]
    return ",".join(names) or "-"


# -- parsers -----------------------------------------------------------------------------


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.app import RegistryApp
    from tui.client import AdminClient as ScreensClient

    transport = admin_client(args)
    RegistryApp(ScreensClient(transport, transport.target)).run()
    return 0


def add_admin_verbs(verbs: Any) -> None:
    """Register the admin verbs on the top-level subparsers."""

    def admin_verb(
        parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int]
    ) -> None:
        parser.add_argument(
            "--admin",
            metavar="SOCKET|URL",
            help="admin socket path, or https://host:port for an admin user "
            "(default: appliance.admin.socket of the config)",
        )
        parser.add_argument(
            "--user",
            help=f"htpasswd admin user for a URL; password from {PASSWORD_ENV} or a prompt",
        )
        parser.add_argument(
            "--ca-file", help="CA certificate to trust for an https URL (default: system)"
        )
        parser.add_argument(
            "-c",
            "--config",
            dest="config_option",
            metavar="CONFIG",
            help="config.yml whose admin socket to use",
        )
        parser.set_defaults(run=run)

    admin_verb(verbs.add_parser("tui", help="the admin TUI (Textual)"), cmd_tui)

    readonly = verbs.add_parser(
        "readonly", help="switch read-only mode on or off on a running server"
    )
    readonly.add_argument("state", nargs="?", choices=("on", "off", "status"), default="status")
    admin_verb(readonly, cmd_readonly)

    tags = verbs.add_parser("tags", help="list or delete tags").add_subparsers(
        dest="action", required=True
    )
    listing = tags.add_parser(
        "list", help="tags of a repository with digest, kind, size, age, platforms"
    )
    listing.add_argument("repository", metavar="REPO")
    admin_verb(listing, cmd_tags_list)
    delete = tags.add_parser("delete", help="delete one tag; the manifest and its other tags stay")
    delete.add_argument("reference", metavar="REPO:TAG")
    admin_verb(delete, cmd_tags_delete)

    retag = verbs.add_parser(
        "retag", help="copy a tag, also across repositories, without copying data"
    )
    retag.add_argument("source", metavar="SRC", help="repo:tag or repo@sha256:…")
    retag.add_argument("destination", metavar="DST", help="repo:tag")
    admin_verb(retag, cmd_retag)

    gc = verbs.add_parser("gc", help="garbage-collect on a running server, showing progress")
    gc.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    gc.add_argument(
        "--delete-untagged", action="store_true", help="also remove manifests no tag reaches"
    )
    admin_verb(gc, cmd_gc)

    du = verbs.add_parser("du", help="disk usage per repository (or per tag of REPO)")
    du.add_argument("repository", nargs="?", metavar="REPO")
    admin_verb(du, cmd_du)
