"""The default spool folder of a process that died is removed by the next process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from appliance.storage.spool import PREFIX, LocalSpool


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_new_spool_removes_folders_of_dead_processes_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    orphan = tmp_path / f"{PREFIX}{dead_pid()}-abc"
    (orphan / "sub").mkdir(parents=True)
    (orphan / "body-1").write_bytes(b"left by a killed process")
    living = tmp_path / f"{PREFIX}{os.getppid()}-def"
    living.mkdir()
    (living / "body-2").write_bytes(b"a running process's upload")
    unrelated = tmp_path / f"{PREFIX}notapid-x"
    unrelated.mkdir()

    spool = Path(LocalSpool(None).directory())

    assert not orphan.exists()
    assert (living / "body-2").read_bytes() == b"a running process's upload"
    assert unrelated.exists()
    assert spool.parent == tmp_path
    assert spool.name.startswith(f"{PREFIX}{os.getpid()}-")


def test_a_configured_spool_folder_is_used_as_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    configured = tmp_path / "spool"
    assert LocalSpool(str(configured)).directory() == str(configured)
    assert configured.is_dir()
    assert not (tmp_path / "temp").exists()
