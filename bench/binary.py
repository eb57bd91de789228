"""Size and start-up time of the one-file binary (dist/registry-appliance) against the source.

    packaging/build.sh && .venv/bin/python -m bench.binary [--runs 5]

`version`: wall time of the whole command. `serve` time-to-ready: from exec until GET /v2/
answers over TLS (certificates made beforehand). The first run of each follows a page-cache
drop when this process may write /proc/sys/vm/drop_caches (root on a VM), so it is truly cold.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import requests
import yaml

from appliance.tls.certs import init_certs
from tests.server import base_config

BINARY = Path(__file__).resolve().parents[1] / "dist" / "registry-appliance"
SOURCE = (sys.executable, "-m", "appliance.cli")


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def time_version(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run([*command, "version"], check=True, capture_output=True)
    return time.perf_counter() - started


def time_to_ready(command: Sequence[str], config: Path, url: str) -> float:
    started = time.perf_counter()
    server = subprocess.Popen([*command, "serve", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    requests.get(url, verify=False, timeout=1)
                return time.perf_counter() - started
            except requests.ConnectionError:
                if server.poll() is not None:
                    raise RuntimeError(f"{command} serve exited {server.returncode}") from None
                time.sleep(0.005)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def measure(label: str, command: Sequence[str], runs: int, config: Path, url: str) -> None:
    cold = drop_caches()
    versions = [time_version(command) for _ in range(runs)]
    drop_caches()
    readies = [time_to_ready(command, config, url) for _ in range(runs)]
    first = "cold" if cold else "first"
    print(f"{label}: version {first} {versions[0]:.2f}s, "
          f"median {statistics.median(versions):.2f}s; "
          f"serve ready {first} {readies[0]:.2f}s, median {statistics.median(readies):.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"binary: {BINARY.stat().st_size / 2**20:.1f} MiB ({BINARY.stat().st_size} bytes)")
    with tempfile.TemporaryDirectory(prefix="ra-bin-bench-") as work:
        certs = init_certs(Path(work, "certs"), ["localhost"])
        config = base_config(Path(work))
        config["http"]["tls"] = {"certificate": str(certs.server_cert),
                                 "key": str(certs.server_key)}
        config["appliance"] = {"admin": {"socket": str(Path(work, "admin.sock"))}}
        path = Path(work, "config.yml")
        path.write_text(yaml.safe_dump(config))
        url = f"https://{config['http']['addr']}/v2/"
        measure("one-file binary", (str(BINARY),), args.runs, path, url)
        measure("python -m appliance.cli", SOURCE, args.runs, path, url)


if __name__ == "__main__":
    main()
