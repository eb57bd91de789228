"""The systemd units pass systemd's own checks: `verify`, and `security` at exposure <= 2.0."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from appliance.config import ApplianceConfig
from tests.e2e import tools

from .harness import ROOT

UNITS = ROOT / "systemd"
INSTALLED = "/usr/local/bin/registry-appliance"


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """verify accepts the service and socket units, ExecStart pointed at an existing binary."""
    executable = Path(sys.executable).with_name("registry-appliance")
    for unit in ("registry-appliance.service", "registry-appliance.socket"):
        text = (UNITS / unit).read_text()
        (tmp_path / unit).write_text(text.replace(INSTALLED, str(executable)))
    checked = tools.run(["systemd-analyze", "verify", *sorted(map(str, tmp_path.iterdir()))])
    assert "registry-appliance" not in checked.stdout + checked.stderr


def test_service_exposure_is_at_most_2() -> None:
    """systemd-analyze security --offline rates the hardened service 2.0 or lower ("OK")."""
    report = tools.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                        str(UNITS / "registry-appliance.service")]).stdout
    level = re.search(r"Overall exposure level for registry-appliance\.service: (\d+\.\d+)", report)
    assert level, report
    assert float(level[1]) <= 2.0, report


def test_the_service_waits_longer_than_the_server_drains() -> None:
    """TimeoutStopSec leaves room for the default appliance.shutdown.timeout drain."""
    unit = (UNITS / "registry-appliance.service").read_text()
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert stop
    assert int(stop[1]) > ApplianceConfig.shutdown_timeout
