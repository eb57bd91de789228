"""The `registry-appliance` command line."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from appliance import __version__
from appliance.admin.client import AdminError
from appliance.cli_admin import add_admin_verbs
from appliance.cli_fsck import add_fsck_verb
from appliance.config import (
    CONFIG_PATH_ENV,
    Config,
    ConfigError,
    default_paths,
    load,
    redacted_yaml,
)


class CommandError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


def _config_path(args: argparse.Namespace) -> str | None:
    return args.config_option or args.config or os.environ.get(CONFIG_PATH_ENV) or None


def _load(args: argparse.Namespace) -> Config:
    try:
        return load(_config_path(args), os.environ)
    except ConfigError as error:
        raise CommandError("\n".join(error.problems)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    from appliance import systemd

    inherited = systemd.listen_fds()  # before Twisted's endpoints module takes them at import
    from twisted.internet.defer import Deferred
    from twisted.internet.task import react

    from appliance.logs import start_logging
    from appliance.server import serve
    from appliance.tls import TLSConfigError

    workers = args.workers or len(os.sched_getaffinity(0))  # 0: one per CPU core
    if workers < 1:
        raise CommandError("--workers: must be 0 (one per CPU core) or more")
    from appliance.workers import WorkerRole, worker_config

    role = WorkerRole()
    if args.listen_fd is not None:  # a worker of `serve --workers N` (appliance/workers.py)
        config, inherited = worker_config(config, args.worker_index), [args.listen_fd]
        role = WorkerRole(args.worker_index, args.shared_dir)
    elif workers > 1:
        return _supervise(config, args, workers, inherited)
    start_logging(config.log.level, config.log.formatter, config.log.fields)

    async def main(reactor: object) -> None:
        try:
            await serve(config, reactor, inherited, role)
        except (TLSConfigError, OSError, ValueError) as error:
            print(f"registry-appliance: cannot start: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
    return 0


def _supervise(config: Config, args: argparse.Namespace, workers: int, inherited: list[int]) -> int:
    """`serve --workers N` with N > 1: bind once, run N workers on the socket, watch them."""
    import socket

    from appliance.logs import start_logging
    from appliance.server import server_tls
    from appliance.tls import TLSConfigError
    from appliance.workers import Supervisor, bind_listening_socket, worker_command

    start_logging(config.log.level, config.log.formatter, config.log.fields)
    try:
        server_tls(config)  # check (and autogenerate) certificates once, not in N workers at once
        if inherited:
            listening = socket.socket(fileno=inherited[0])
        else:
            listening = bind_listening_socket(config)
    except (TLSConfigError, OSError, ValueError) as error:
        print(f"registry-appliance: cannot start: {error}", file=sys.stderr)
        return 1
    path = _config_path(args)
    command = worker_command(["--config", path] if path else [])
    return Supervisor(config, workers, listening, command).run()


def cmd_version(args: argparse.Namespace) -> int:
    print(f"registry-appliance {__version__}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"# effective configuration from {config.source}")
    print(redacted_yaml(config), end="")
    for key in config.ignored:
        print(f"# ignored (not implemented yet): {key}", file=sys.stderr)
    for warning in config.warnings:
        print(f"# warning: {warning}", file=sys.stderr)
    return 0


def cmd_certs_init(args: argparse.Namespace) -> int:
    from appliance.tls import CertsExistError, init_certs, install_hints

    directory = Path(args.dir or default_paths().certs_dir)
    if args.token_key:
        return _init_token_key(directory, args)
    try:
        made = init_certs(directory, args.hostname, args.ip, args.days, args.force)
    except (CertsExistError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(f"Wrote {made.ca_cert}, {made.ca_key}, {made.server_cert}, {made.server_key}")
    print(f"Server certificate names: {', '.join([*made.dns_names, *made.ip_addresses])}")
    print(f"Valid until {made.not_after:%Y-%m-%d}.")
    print("\nOn each docker (or podman/skopeo) host, install the CA for the name you use:")
    for line in install_hints([*made.dns_names, *made.ip_addresses], args.port, made.ca_cert):
        print(f"  {line}")
    return 0


def _init_token_key(directory: Path, args: argparse.Namespace) -> int:
    from appliance.tls import CertsExistError
    from appliance.tls.tokenkey import init_token_key

    try:
        made = init_token_key(directory, max(args.days, 3650), args.force)
    except (CertsExistError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(f"Wrote {made.key} (token signing key) and {made.cert} (its certificate).")
    print(f"Trust it with auth.token.rootcertbundle: {made.cert}")
    return 0


def cmd_certs_show(args: argparse.Namespace) -> int:
    from appliance.tls import describe

    try:
        print(describe(Path(args.dir or default_paths().certs_dir)))
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    return 0


def _htpasswd_file(args: argparse.Namespace) -> str:
    return args.file or default_paths().htpasswd_path


def cmd_users_add(args: argparse.Namespace) -> int:
    from appliance.auth import htpasswd

    user = htpasswd.check_user_name(args.name)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {user}: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the passwords differ; nothing changed")
    if not password:
        raise CommandError("empty password refused")
    path = _htpasswd_file(args)
    entries = htpasswd.read_entries(path)
    verb = "updated" if user in entries else "added"
    entries[user] = htpasswd.hash_password(password)
    htpasswd.write_entries(path, entries)
    print(f"{verb} {user} in {path}")
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    from appliance.auth import htpasswd

    path = _htpasswd_file(args)
    entries = htpasswd.read_entries(path)
    if args.name not in entries:
        raise CommandError(f"no user {args.name!r} in {path}")
    del entries[args.name]
    htpasswd.write_entries(path, entries)
    print(f"removed {args.name} from {path}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from appliance.auth import htpasswd

    for user, hashed in htpasswd.read_entries(_htpasswd_file(args)).items():
        note = "" if hashed.startswith(htpasswd.BCRYPT_PREFIXES) else "  (not bcrypt: refused at login)"
        print(f"{user}{note}")
    return 0


def cmd_garbage_collect(args: argparse.Namespace) -> int:
    """Distribution's offline command, kept for muscle memory; safe here while the server runs."""
    from appliance.registry.blobs import BlobStore
    from appliance.registry.gc import GarbageCollector, GCError
    from appliance.registry.gclock import GCBusy
    from appliance.server import open_driver

    config = _load(args)
    driver = open_driver(config)

    def show(progress: object) -> None:
        if args.verbose:
            print(f"{progress.phase} {progress.done}/{progress.total}", file=sys.stderr)

    collector = GarbageCollector(driver, BlobStore(driver), config.appliance.gc_grace, on_progress=show)
    try:
        result = collector.run(dry_run=args.dry_run, delete_untagged=args.delete_untagged)
    except (GCBusy, GCError) as error:
        raise CommandError(str(error)) from None
    verb = "would remove" if args.dry_run else "removed"
    for item in result.manifests:
        print(f"{verb} manifest {item['repository']}@{item['digest']}")
    for digest in result.blobs:
        print(f"{verb} blob {digest}")
    for name in result.repositories:
        print(f"{verb} empty repository {name}")
    print(f"{len(result.blobs)} blobs, {len(result.manifests)} manifests, {result.bytes_freed} bytes "
          f"{'would be freed' if args.dry_run else 'freed'} in {result.finished - result.started:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry-appliance", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", nargs="?", metavar="CONFIG", help="config.yml (Distribution's format)")
        p.add_argument("-c", "--config", dest="config_option", metavar="CONFIG")

    serve = verbs.add_parser("serve", help="run the registry")
    with_config(serve)
    serve.add_argument("--workers", type=int, default=0, metavar="N",
                       help="worker processes sharing the port (default 0: one per CPU core; "
                            "1: a single process)")
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # set for workers
    serve.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    serve.add_argument("--shared-dir", help=argparse.SUPPRESS)
    serve.set_defaults(run=cmd_serve)

    verbs.add_parser("version", help="print the version").set_defaults(run=cmd_version)

    collect = verbs.add_parser("garbage-collect", help="GC straight on storage (safe while serving)")
    with_config(collect)
    collect.add_argument("-d", "--dry-run", action="store_true", help="only list what would go")
    collect.add_argument("-m", "--delete-untagged", action="store_true", help="also remove untagged manifests")
    collect.add_argument("-v", "--verbose", action="store_true", help="print progress")
    collect.set_defaults(run=cmd_garbage_collect)
    add_fsck_verb(verbs, with_config)

    config = verbs.add_parser("config", help="configuration tools").add_subparsers(dest="action", required=True)
    check = config.add_parser("check", help="validate and print the effective config, secrets redacted")
    with_config(check)
    check.set_defaults(run=cmd_config_check)

    certs = verbs.add_parser("certs", help="TLS certificates").add_subparsers(dest="action", required=True)
    init = certs.add_parser("init", help="generate a CA and a server certificate")
    init.add_argument("--dir", help=f"default {default_paths().certs_dir}")
    init.add_argument("--hostname", action="append", default=[], help="extra DNS name (repeatable)")
    init.add_argument("--ip", action="append", default=[], help="extra IP address (repeatable)")
    init.add_argument("--days", type=int, default=825)
    init.add_argument("--port", type=int, default=5000, help="port shown in the install hints")
    init.add_argument("--force", action="store_true", help="overwrite existing certificates")
    init.add_argument("--token-key", action="store_true",
                      help="write only the token server's signing key (token.key, token.crt)")
    init.set_defaults(run=cmd_certs_init)
    show = certs.add_parser("show", help="print subject, names and expiry")
    show.add_argument("--dir")
    show.set_defaults(run=cmd_certs_show)

    users = verbs.add_parser("users", help="htpasswd users").add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="add a user or change a password (bcrypt)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true")
    remove = users.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    listing = users.add_parser("list", help="list users")
    for p, run in ((add, cmd_users_add), (remove, cmd_users_remove), (listing, cmd_users_list)):
        p.add_argument("--file", help=f"htpasswd file (default {default_paths().htpasswd_path})")
        p.set_defaults(run=run)
    add_admin_verbs(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, AdminError) as error:
        print(f"registry-appliance: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"registry-appliance: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
