"""`registry-appliance fsck`: the integrity check, straight on the configured storage.

It runs beside a live server (see `appliance.registry.fsck` for why that is safe), so it needs
no admin socket. Exit status: 0 clean, 1 problems found, 2 when it could not check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from appliance.cli_admin import human
from appliance.config import CONFIG_PATH_ENV, ConfigError, load

CANNOT_CHECK = 2
PROGRESS_EVERY = 1.0  # seconds between progress lines with --verbose


def cmd_fsck(args: argparse.Namespace) -> int:
    from appliance.registry.fsck import Fsck
    from appliance.registry.gclock import GCBusy
    from appliance.server import open_driver
    from appliance.storage.driver import StorageError

    try:
        config = load(
            args.config_option or args.config or os.environ.get(CONFIG_PATH_ENV), os.environ
        )
        driver = open_driver(config)
        mirrored = config.proxy.prefix if config.proxy is not None else None
        checker = Fsck(
            driver,
            config.appliance.max_manifest_bytes,
            mirrored,
            on_progress=_progress_printer(args.verbose),
        )
        result = checker.run(repair=args.repair)
    except ConfigError as error:
        return _cannot("\n".join(error.problems))
    except (GCBusy, StorageError) as error:
        return _cannot(f"cannot check: {error}")
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_fsck_result(result.to_json())
    return 0 if result.clean else 1


def print_fsck_result(result: dict[str, Any]) -> None:
    """One line per problem (kind, repository, digest, path: detail [what repair did]), then
    the totals. Takes `FsckResult.to_json()`, as the admin API returns it too."""
    for p in result["problems"]:
        action = f" [{p['action']}]" if p["action"] else ""
        where = f"{p['repository'] or '-'} {p['digest'] or '-'} {p['path']}"
        print(f"{p['kind']} {where}: {p['detail']}{action}")
    print(
        f"checked {result['blobs']} blobs ({human(result['bytes'])}), "
        f"{result['manifests']} manifests, {result['links']} links "
        f"({result['stale_links']} to blobs garbage collection removed) "
        f"in {result['repositories']} repositories "
        f"in {result['finished'] - result['started']:.1f}s: {len(result['problems'])} problems"
    )
    if result["quarantine"]:
        print(f"quarantined under {result['quarantine']} in the storage (move a file back to undo)")
    elif result["problems"] and not result["repair"]:
        print("run again with --repair to quarantine what is broken")


def _progress_printer(verbose: bool) -> Callable[[Any], None] | None:
    if not verbose:
        return None
    shown = {"phase": "", "at": 0.0}

    def show(progress: Any) -> None:
        now = time.monotonic()
        if progress.phase == "done":
            return
        if progress.phase != shown["phase"] or now - shown["at"] >= PROGRESS_EVERY:
            print(f"{progress.phase} {progress.done}/{progress.total}", file=sys.stderr, flush=True)
            shown.update(phase=progress.phase, at=now)

    return show


def _cannot(message: str) -> int:
    print(f"registry-appliance: {message}", file=sys.stderr)
    return CANNOT_CHECK


def add_fsck_verb(verbs: Any, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    fsck = verbs.add_parser(
        "fsck", help="check every blob, link and manifest in storage (safe while serving)"
    )
    with_config(fsck)
    fsck.add_argument(
        "--repair",
        action="store_true",
        help="move what is broken to <root>/appliance/quarantine/ (never deletes)",
    )
    fsck.add_argument("--json", action="store_true", help="print the result as JSON")
    fsck.add_argument("-v", "--verbose", action="store_true", help="print progress to stderr")
    fsck.set_defaults(run=cmd_fsck)
