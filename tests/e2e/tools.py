"""Plain helpers for the end-to-end tests: real dockerd, skopeo, podman, buildah, Distribution.

Nothing here imports pytest; ``conftest.py`` wraps these helpers in fixtures.

What works on this kind of machine (root, 2 cores, loopback only, cgroup v1, no systemd),
found while proving the tests against Distribution 2.8.2 (Debian ``docker-registry``):

dockerd 20.10 (Debian ``docker.io``)
    ``dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none
    --data-root D/root --exec-root D/exec -H unix://D/docker.sock --pidfile D/pid
    --config-file D/daemon.json`` with daemon.json ``{"deprecated-key-path": "D/key.json"}``
    answers ``docker info`` in about a second.  Push and pull need no container runtime.
    Without that key (there is no such flag in 20.10) dockerd writes ``/etc/docker/key.json``;
    without ``--config-file`` it would read ``/etc/docker/daemon.json``.  It still creates the empty
    ``/run/docker/plugins`` (hard-coded, harmless).  It spawns its own containerd under
    ``D/exec/containerd``; on TERM it stops that containerd itself.  The only mount it makes is
    a private bind mount of ``D/root`` on itself, gone after a clean stop; :func:`unmount_under`
    sweeps anything left after a KILL.  The Debian CLI ``/usr/bin/docker`` (20.10) is used;
    ``/usr/local/bin/docker`` (28.x) also works (it negotiates API 1.41) but is not needed.
    dockerd treats every registry on 127.0.0.0/8 as insecure: no certificate check, falls back to
    plain HTTP.  So an anonymous pull refused with 401 shows in the CLI as "read: connection
    reset by peer" (the HTTP retry hits the TLS port); a wrong ``docker login`` password shows
    "login attempt to https://HOST/v2/ failed with status: 401 Unauthorized".

skopeo 1.9, podman 4.3, buildah 1.28 (Debian)
    All run as root with fully isolated state; no user namespaces, no runtime are needed for
    pull/push/build-from-scratch:
      - storage: ``--root E/root --runroot E/runroot --storage-driver vfs`` (podman, buildah), plus
        ``CONTAINERS_STORAGE_CONF`` naming a storage.conf with the same values;
      - ``CONTAINERS_CONF`` naming a containers.conf with ``network_config_dir``,
        ``cgroup_manager = "cgroupfs"``, ``events_logger = "file"``, ``tmp_dir``,
        ``volume_path`` under E: without it buildah/podman create ``/etc/containers/networks``;
        podman also gets ``--cgroup-manager cgroupfs --events-backend file --tmpdir E/tmp/libpod
        --network-config-dir E/networks``; buildah ``--registries-conf E/registries.conf``;
        ``BUILDAH_ISOLATION=chroot`` is set though from-scratch/copy/commit run nothing;
      - ``CONTAINERS_REGISTRIES_CONF`` (podman, buildah; skopeo 1.9 ignores it),
        ``REGISTRY_AUTH_FILE`` (must exist for buildah), ``HOME``, ``XDG_RUNTIME_DIR``,
        ``DOCKER_CONFIG`` and ``TMPDIR`` under E so no credential or temp file from the host leaks
        in or out; skopeo gets ``--policy E/policy.json --tmpdir E/tmp``;
      - certificates: ``--cert-dir E/certs`` (``--src-cert-dir``/``--dest-cert-dir`` for skopeo
        copy) holding ``ca.crt``; ``--tls-verify=true``; credentials with ``--creds``
        (``--src-creds``/``--dest-creds``) or ``login --authfile``.
    ``buildah from --arch A --os linux scratch`` + ``buildah copy`` + ``buildah commit`` builds
    per-platform images without any runtime; ``buildah manifest create/add/push --all`` pushes an
    OCI image index.  ``skopeo --override-arch A inspect`` and ``podman pull --arch A`` select
    the platform entry.
    Not isolatable: skopeo (as root) keeps its blob-info cache in
    ``/var/lib/containers/cache/blob-info-cache-v1.boltdb`` (c/image has no flag or variable for
    it); it is only a cache keyed by registry host:port and repository, harmless with random
    ports.  podman and buildah (as root) always create netavark's run dir
    ``/run/containers/networks`` (hard-coded in 4.3; empty, harmless).

Distribution 2.8.2
    ``/usr/bin/docker-registry serve CONFIG`` with REGISTRY_* and AWS_CA_BUNDLE removed from its
    environment (it reads REGISTRY_* as configuration overrides).  The configuration is written
    as JSON (a subset of YAML).  It starts in well under a second.

Certificates come from the appliance's own ``appliance.tls.certs.init_certs`` (EC P-256; SANs
localhost, 127.0.0.1, ::1 plus this host's names), so Go clients check what it generates.

Cleanup: servers are started with PR_SET_PDEATHSIG (TERM when the test process dies, even by
KILL) and stopped by PID (TERM, then KILL).  Scratch directories are /tmp/e2e-<kind>-XXXX,
stamped with the owner PID; the next session deletes those whose owner is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from appliance.tls.certs import CertSet, init_certs

__all__ = [
    "CertSet",
    "CommandFailed",
    "ContainerTools",
    "Distribution",
    "DockerClient",
    "Dockerd",
    "GiveUp",
    "build_image_archive",
    "free_port",
    "make_certs",
    "run",
    "scratch_dir",
    "stop_process",
    "sweep_stale_scratch",
    "unmount_under",
    "wait_for",
    "write_htpasswd",
]

DOCKERD = os.environ.get("E2E_DOCKERD", "/usr/sbin/dockerd")
DOCKER_CLI = os.environ.get("E2E_DOCKER_CLI", "/usr/bin/docker")
DISTRIBUTION = os.environ.get("E2E_DISTRIBUTION", "/usr/bin/docker-registry")

#: Fixed timestamps make layer tars and configs byte-for-byte reproducible.
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z
FIXED_CREATED = "2000-01-01T00:00:00Z"

DEFAULT_TIMEOUT = 180.0


# --------------------------------------------------------------------------- processes


class GiveUp(Exception):
    """Raised by a wait_for predicate to stop waiting at once (e.g. the server died)."""


class CommandFailed(Exception):
    """A command exited non-zero (or timed out); carries its output for the report."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"command {' '.join(map(str, argv))!r} exited {returncode}\n"
            f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}"
        )


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv to completion and return the result; raise CommandFailed if check and it fails."""
    args = [os.fspath(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            env=dict(env) if env is not None else None,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        raise CommandFailed(args, None, out, err + f"\n(timed out after {timeout} s)") from e
    if check and proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _die_with_parent() -> None:
    """preexec_fn: have the kernel TERM the child if the test process dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    log_path: Path,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a long-running server with stdout+stderr going to log_path (and pass_fds open)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [os.fspath(a) for a in argv],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            preexec_fn=_die_with_parent,
        )


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """Stop one process we started, by its PID: TERM, wait up to grace seconds, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists"; treat it as dead.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on host a moment ago (the kernel picked it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> object:
    """Poll predicate until it returns a truthy value (returned) or raise TimeoutError.

    Exceptions raised by predicate count as "not yet" (the last one is chained on timeout),
    except GiveUp (and TypeError/NameError/AttributeError, i.e. bugs), which propagate at once.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (GiveUp, TypeError, NameError, AttributeError):
            raise  # a dead server, or a bug in the predicate: waiting will not help
        except Exception as e:  # any failure means "not ready yet"
            last_exc = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}") from last_exc
        time.sleep(interval)


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            raw = line.split()[4]
            # mountinfo escapes space, tab, newline and backslash as \ooo.
            points.append(
                raw.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
            )
    return points


def unmount_under(directory: str | os.PathLike[str]) -> list[str]:
    """Lazily unmount every mount point at or below directory (deepest first); return them."""
    base = os.path.realpath(directory)
    found = [p for p in _mount_points() if p == base or p.startswith(base + "/")]
    found.sort(key=lambda p: p.count("/"), reverse=True)
    for point in found:
        run(["umount", "-l", point], check=False, timeout=30)
    return found


def remove_tree(directory: str | os.PathLike[str]) -> None:
    """Unmount leftovers below directory, then delete it (vfs trees can be large)."""
    if not os.path.lexists(directory):
        return
    unmount_under(directory)
    shutil.rmtree(directory, ignore_errors=True)
    if os.path.exists(directory):  # read-only bits or a busy mount: one more try
        run(["rm", "-rf", "--one-file-system", os.fspath(directory)], check=False)


OWNER_FILE = ".e2e-owner-pid"
SCRATCH_PREFIX = "e2e-"


def scratch_dir(kind: str) -> Path:
    """A new short directory /tmp/e2e-<kind>-XXXX stamped with this process's PID.

    The stamp lets sweep_stale_scratch() remove directories left by a killed test run.
    """
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{kind}-", dir="/tmp"))
    (path / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return path


def sweep_stale_scratch() -> list[Path]:
    """Delete /tmp/e2e-* scratch directories whose owning test process is gone."""
    removed = []
    for path in Path("/tmp").glob(f"{SCRATCH_PREFIX}*"):
        try:
            owner = int((path / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if not _pid_alive(owner):
            remove_tree(path)
            removed.append(path)
    return removed


def clean_env(drop_prefixes: Iterable[str] = (), drop: Iterable[str] = ()) -> dict[str, str]:
    """A copy of os.environ without the named variables and prefixes."""
    prefixes = tuple(drop_prefixes)
    names = set(drop)
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith(prefixes)}


# --------------------------------------------------------------------------- dockerd


class Dockerd:
    """A private dockerd (vfs, no networking setup) listening on a unix socket under /tmp.

    Use as a context manager, or call start() and stop(); stop() also deletes its directory.
    """

    def __init__(self, base_dir: str | os.PathLike[str] | None = None):
        # Unix socket paths must stay below 108 bytes: keep the directory short.
        self.dir = Path(base_dir) if base_dir else scratch_dir("dk")
        self.socket = self.dir / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log_path = self.dir / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if len(str(self.socket)) >= 100:
            raise ValueError(f"socket path too long for AF_UNIX: {self.socket}")

    def argv(self) -> list[str]:
        d = self.dir
        return [
            DOCKERD,
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--data-root={d / 'root'}",
            f"--exec-root={d / 'exec'}",
            f"-H={self.host}",
            f"--pidfile={d / 'pid'}",
            f"--config-file={d / 'daemon.json'}",
        ]

    def start(self, timeout: float = 60.0) -> Dockerd:
        self.dir.mkdir(parents=True, exist_ok=True)
        # "deprecated-key-path" exists only as a daemon.json key (no flag) in 20.10; without it
        # dockerd writes /etc/docker/key.json.
        daemon_json = {"deprecated-key-path": str(self.dir / "key.json")}
        (self.dir / "daemon.json").write_text(json.dumps(daemon_json) + "\n")
        env = clean_env(drop_prefixes=("DOCKER_",))
        self.proc = spawn(self.argv(), env=env, log_path=self.log_path)
        probe = self.client(self.dir / "probe-config")

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise GiveUp(f"dockerd exited {self.proc.returncode}:\n{self.log_tail()}")
            return probe.run("info", "--format", "{{.ServerVersion}}", check=False).returncode == 0

        try:
            wait_for(answers, timeout=timeout, interval=0.2, what="dockerd to answer docker info")
        except BaseException:
            self.stop()
            raise
        return self

    def client(self, config_dir: str | os.PathLike[str]) -> DockerClient:
        """A docker CLI bound to this daemon with its own DOCKER_CONFIG (login state)."""
        return DockerClient(self.host, Path(config_dir))

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, remove: bool = True) -> None:
        """TERM then KILL dockerd by PID, kill a containerd orphaned by a KILL, clean up."""
        stop_process(self.proc, grace=20)
        pidfile = self.dir / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            # Only the containerd that this dockerd started (its config lives under our dir).
            if _pid_alive(pid) and str(self.dir).encode() in cmdline:
                os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    wait_for(lambda: not _pid_alive(pid), timeout=10, what="containerd to exit")
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        if remove:
            remove_tree(self.dir)

    def __enter__(self) -> Dockerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class DockerClient:
    """The docker CLI pointed at one daemon and one DOCKER_CONFIG directory."""

    host: str
    config_dir: Path

    def env(self) -> dict[str, str]:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.config_dir / "config.json"
        if not cfg.exists():
            cfg.write_text('{"auths": {}}\n')
        env = clean_env(drop_prefixes=("DOCKER_",))
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.config_dir))
        return env

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run([DOCKER_CLI, *args], env=self.env(), stdin=stdin, check=check, timeout=timeout)

    def login(
        self, host_port: str, user: str, password: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "login", "--username", user, "--password-stdin", host_port, stdin=password, check=check
        )

    def image_id(self, ref: str) -> str:
        return self.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


# --------------------------------------------------------------------------- images


def _tar_info(name: str, kind: bytes, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layer_tar(files: Mapping[str, bytes]) -> bytes:
    """A reproducible uncompressed layer tar holding files (parent directories added)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        seen_dirs: set[str] = set()
        for name in sorted(files):
            parts = name.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    tar.addfile(_tar_info(d + "/", tarfile.DIRTYPE, mode=0o755))
            data = files[name]
            tar.addfile(_tar_info("/".join(parts), tarfile.REGTYPE, len(data)), io.BytesIO(data))
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(
    diff_ids: Sequence[str], architecture: str = "amd64", os_name: str = "linux"
) -> bytes:
    """Canonical JSON bytes of an image config for the given layer diff IDs."""
    config = {
        "architecture": architecture,
        "os": os_name,
        "created": FIXED_CREATED,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [
            {"created": FIXED_CREATED, "created_by": f"e2e layer {i}"} for i in range(len(diff_ids))
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def build_image_archive(
    path: str | os.PathLike[str],
    layers: list[dict[str, bytes]],
    tag: str,
    architecture: str = "amd64",
    os_name: str = "linux",
) -> str:
    """Write a deterministic ``docker save`` tar of an image with the given layers to path.

    Each dict maps file paths (e.g. ``"etc/hello.txt"``) to contents and becomes one layer.
    The archive loads with ``docker load`` and reads as ``skopeo docker-archive:``; tag is its
    RepoTag (``name:tag``).  Returns the image ID ``sha256:<hex>``, the digest of the config
    JSON, which a registry round trip must preserve.
    """
    blobs = [layer_tar(files) for files in layers]
    diff_ids = [_sha256(b) for b in blobs]
    config = image_config(diff_ids, architecture, os_name)
    image_id = _sha256(config)
    config_name = image_id.split(":", 1)[1] + ".json"
    layer_names = [d.split(":", 1)[1] + "/layer.tar" for d in diff_ids]
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]
    name, _, version = tag.rpartition(":")
    repositories = {name: {version: image_id.split(":", 1)[1]}}

    members: dict[str, bytes] = {}
    for layer_name, blob in zip(layer_names, blobs, strict=True):
        members.setdefault(layer_name, blob)  # identical layers share one file
    members[config_name] = config
    members["manifest.json"] = json.dumps(manifest, separators=(",", ":")).encode()
    members["repositories"] = json.dumps(repositories, separators=(",", ":")).encode()

    with tarfile.open(path, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        seen_dirs: set[str] = set()
        for member in members:
            if "/" in member:
                d = member.split("/", 1)[0]
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    tar.addfile(_tar_info(d + "/", tarfile.DIRTYPE, mode=0o755))
            data = members[member]
            tar.addfile(_tar_info(member, tarfile.REGTYPE, len(data)), io.BytesIO(data))
    return image_id


# --------------------------------------------------------------------------- TLS and auth


def make_certs(directory: str | os.PathLike[str], days: int = 2) -> CertSet:
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1 in directory.

    Made by the appliance's own ``init_certs`` (ca.crt, ca.key, server.crt, server.key), so
    the real clients here also check what ``registry-appliance init-certs`` generates.
    """
    return init_certs(
        Path(directory), hostnames=["localhost"], ips=["127.0.0.1", "::1"], days=days, force=True
    )


def write_htpasswd(path: str | os.PathLike[str], users: Mapping[str, str]) -> Path:
    """Write an htpasswd file with bcrypt entries (``htpasswd -Bbn``) for users."""
    lines = [
        run(["htpasswd", "-Bbn", user, password]).stdout.strip() for user, password in users.items()
    ]
    out = Path(path)
    out.write_text("\n".join(lines) + "\n")
    return out


# --------------------------------------------------------------------------- skopeo/podman/buildah


class ContainerTools:
    """skopeo, podman and buildah with all their state under one directory.

    cert_dir holds the registry CA as ``ca.crt`` (pass it with ``--cert-dir``); auth_file is
    the REGISTRY_AUTH_FILE used by ``login`` and pushes without ``--creds``.
    """

    def __init__(self, base_dir: str | os.PathLike[str], ca_path: str | os.PathLike[str] | None):
        self.dir = Path(base_dir)
        self.root = self.dir / "root"
        self.runroot = self.dir / "runroot"
        self.tmp = self.dir / "tmp"
        self.cert_dir = self.dir / "certs"
        self.auth_file = self.dir / "auth.json"
        self.policy = self.dir / "policy.json"
        for d in (
            self.root,
            self.runroot,
            self.tmp,
            self.cert_dir,
            self.dir / "home",
            self.dir / "xdg-run",
            self.dir / "docker-config",
        ):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir / "xdg-run", 0o700)
        if ca_path is not None:
            shutil.copyfile(ca_path, self.cert_dir / "ca.crt")
        self.auth_file.write_text('{"auths": {}}\n')
        self.policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        (self.dir / "registries.conf").write_text(
            'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
        )
        (self.dir / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.root}"\nrunroot = "{self.runroot}"\n'
        )
        (self.dir / "containers.conf").write_text(
            "[network]\n"
            f'network_config_dir = "{self.dir / "networks"}"\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.dir / "events.log"}"\n'
            f'tmp_dir = "{self.tmp / "libpod"}"\n'
            f'volume_path = "{self.dir / "volumes"}"\n'
        )

    def env(self) -> dict[str, str]:
        env = clean_env(
            drop_prefixes=("CONTAINERS_", "DOCKER_", "BUILDAH_", "PODMAN_"),
            drop=("REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME", "XDG_DATA_HOME"),
        )
        env.update(
            HOME=str(self.dir / "home"),
            XDG_RUNTIME_DIR=str(self.dir / "xdg-run"),
            DOCKER_CONFIG=str(self.dir / "docker-config"),
            TMPDIR=str(self.tmp),
            REGISTRY_AUTH_FILE=str(self.auth_file),
            CONTAINERS_CONF=str(self.dir / "containers.conf"),
            CONTAINERS_STORAGE_CONF=str(self.dir / "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=str(self.dir / "registries.conf"),
            BUILDAH_ISOLATION="chroot",
        )
        return env

    def _run(
        self, argv: list[str], check: bool, timeout: float, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(argv, env=self.env(), check=check, timeout=timeout, stdin=stdin, cwd=self.dir)

    def skopeo(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """skopeo GLOBAL-FLAGS ARGS (pass --creds/--cert-dir per command)."""
        argv = ["skopeo", "--policy", str(self.policy), "--tmpdir", str(self.tmp), *args]
        return self._run(argv, check, timeout)

    def podman(
        self, *args: str, check: bool = True, timeout: float = 300, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """podman GLOBAL-FLAGS ARGS with vfs storage under this directory."""
        argv = [
            "podman",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--tmpdir",
            str(self.tmp / "libpod"),
            "--network-config-dir",
            str(self.dir / "networks"),
            *args,
        ]
        return self._run(argv, check, timeout, stdin)

    def buildah(
        self, *args: str, check: bool = True, timeout: float = 300, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """buildah GLOBAL-FLAGS ARGS with vfs storage under this directory."""
        argv = [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
            "--registries-conf",
            str(self.dir / "registries.conf"),
            *args,
        ]
        return self._run(argv, check, timeout, stdin)

    def cleanup(self) -> None:
        remove_tree(self.dir)


# --------------------------------------------------------------------------- Distribution


class Distribution:
    """CNCF Distribution 2.8.2 (``docker-registry serve``) on a free loopback port.

    root is the filesystem storage root.  tls is (certificate, key); htpasswd a bcrypt
    htpasswd file.  Deletes are enabled.  ca_path, if given, is used to probe readiness.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        root: str | os.PathLike[str],
        *,
        tls: tuple[Path, Path] | None = None,
        htpasswd: Path | None = None,
        ca_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        s3: Mapping[str, object] | None = None,
        swift: Mapping[str, object] | None = None,
    ):
        self.workdir = Path(workdir)
        self.root = Path(root)
        self.s3 = dict(s3) if s3 is not None else None  # a `storage.s3` section instead of root
        self.swift = dict(swift) if swift is not None else None  # or a `storage.swift` section
        self.tls = tls
        self.htpasswd = htpasswd
        self.ca_path = ca_path
        self.host = host
        self.port = port
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host_port}"

    def config(self) -> dict[str, object]:
        http: dict[str, object] = {
            "addr": self.host_port,
            "secret": "e2e-shared-secret",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        cfg: dict[str, object] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                **({"s3": self.s3} if self.s3 else {"swift": self.swift} if self.swift
                   else {"filesystem": {"rootdirectory": str(self.root)}}),
                "delete": {"enabled": True},
                "redirect": {"disable": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if self.htpasswd:
            cfg["auth"] = {"htpasswd": {"realm": "registry-e2e", "path": str(self.htpasswd)}}
        return cfg

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise GiveUp(f"docker-registry exited {self.proc.returncode}:\n{self.log_tail()}")
        verify: bool | str = str(self.ca_path) if self.ca_path else False
        r = requests.get(self.url + "/v2/", verify=verify, timeout=2)
        return r.status_code in (200, 401)

    def start(self, timeout: float = 30.0) -> Distribution:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        env = clean_env(drop_prefixes=("REGISTRY_",), drop=("AWS_CA_BUNDLE",))
        for attempt in range(3):  # the free port can be taken between probe and bind
            if self.port is None or attempt:
                self.port = free_port(self.host)
            self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")
            self.proc = spawn(
                [DISTRIBUTION, "serve", self.config_path], env=env, log_path=self.log_path
            )
            try:
                wait_for(self._ready, timeout=timeout, what="docker-registry /v2/")
                return self
            except (TimeoutError, GiveUp):
                stop_process(self.proc)
                if "address already in use" not in self.log_tail() or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc, grace=10)

    def __enter__(self) -> Distribution:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
