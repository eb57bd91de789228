"""A GC killed at random moments leaves every tagged image pullable, and the next run finishes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from appliance.storage import paths

from .store import open_registry, pulls_completely, push_blob, push_image

pytestmark = pytest.mark.e2e

KILLS = 12


def test_killed_gc_leaves_images_pullable(tmp_path: Path) -> None:
    """SIGKILL during GC: after each kill all tagged images pull; a final run removes the garbage."""
    root = tmp_path / "data"
    registry = open_registry(str(root))
    rng = random.Random(7)
    shared = [os.urandom(3000) for _ in range(20)]
    images = [push_image(registry, f"crash/r{i % 5}", f"t{i}", rng.sample(shared, 2) + [os.urandom(200)])
              for i in range(40)]
    garbage = [push_blob(registry, "crash/junk", os.urandom(5000)) for _ in range(600)]
    untagged = [push_image(registry, "crash/r0", None, [os.urandom(300)]) for _ in range(30)]
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({
        "version": "0.1",
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "appliance": {"gc": {"grace": "0s"}},
    }))
    command = [sys.executable, "-m", "appliance.cli", "garbage-collect", "--delete-untagged", str(config)]
    killed_mid_run = 0
    for _ in range(KILLS):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.25, 1.0))
        if process.poll() is None:
            killed_mid_run += 1
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert all(pulls_completely(registry, image) for image in images)
        # A real run would otherwise find nothing to do after the first complete one.
        if process.returncode == 0:
            untagged += [push_image(registry, "crash/r0", None, [os.urandom(300)]) for _ in range(10)]
    final = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert all(pulls_completely(registry, image) for image in images)
    assert not any(os.path.exists(f"{root}{paths.blob_data(d)}") for d in garbage)
    assert not any(os.path.exists(f"{root}{paths.revision_link(u.name, u.digest)}") for u in untagged)
    trash = Path(f"{root}{paths.TRASH}")
    assert not trash.exists() or not any(p.is_file() for p in trash.rglob("*"))
    print(f"\nGC crash: {KILLS} kills ({killed_mid_run} while running), {len(images)} images pull, "
          f"final run: {final.stdout.strip().splitlines()[-1]}")
    assert killed_mid_run >= KILLS // 2
