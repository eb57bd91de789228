"""A bounded libFuzzer run (atheris) over the pure parsers, in its own process (libFuzzer exits
the process when it is done)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")  # Linux wheels only: the `test` extra installs it there

RUNS = 100_000


def test_parsers_survive_libfuzzer(tmp_path: Path) -> None:
    """100k inputs, fixed seed: no parser raises anything but its own ValueError, and nothing
    it accepts breaks an invariant (names that could leave their folder, ranges off the blob)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_parsers", f"-runs={RUNS}", "-seed=1",
         "-max_len=512", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {RUNS} runs" in done.stderr
    print(f"\natheris parsers: {RUNS} inputs, 0 crashes")
