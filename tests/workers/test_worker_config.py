"""What each worker of `serve --workers N` runs with (appliance.workers.worker_config)."""

from __future__ import annotations

from pathlib import Path

import yaml

from appliance.config import Config, load
from appliance.workers import worker_config
from tests.server import base_config


def config_at(tmp_path: Path) -> Config:
    raw = base_config(tmp_path)
    raw["http"]["debug"] = {"addr": "127.0.0.1:5001"}
    raw["log"]["fields"] = {"service": "registry"}
    raw["appliance"] = {"admin": {"socket": str(tmp_path / "admin.sock")}}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw))
    return load(str(path), {})


def test_worker_zero_keeps_what_must_run_once(tmp_path: Path) -> None:
    """Worker 0 keeps the admin socket, upload purging and the debug listener."""
    config = worker_config(config_at(tmp_path), 0)
    assert config.appliance.admin_socket == str(tmp_path / "admin.sock")
    assert config.storage.uploadpurging.enabled
    assert config.http.debug.addr == "127.0.0.1:5001"
    assert dict(config.log.fields) == {"service": "registry", "worker": "0"}


def test_other_workers_leave_it_to_worker_zero(tmp_path: Path) -> None:
    """Workers 1.. have no admin socket, no purging and no debug listener; the rest is equal."""
    original = config_at(tmp_path)
    config = worker_config(original, 2)
    assert config.appliance.admin_socket == ""
    assert not config.storage.uploadpurging.enabled
    assert config.http.debug.addr == ""
    assert dict(config.log.fields) == {"service": "registry", "worker": "2"}
    assert config.storage.rootdirectory == original.storage.rootdirectory
    assert config.http.secret == original.http.secret
