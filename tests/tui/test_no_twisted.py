"""The TUI and the admin client it uses never import Twisted (they run without a reactor)."""

from __future__ import annotations

import subprocess
import sys


def test_tui_imports_no_twisted() -> None:
    """Importing the app, its client and the admin client loads no twisted module."""
    code = ("import sys, tui.app, tui.client, appliance.admin.client, appliance.cli_admin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'twisted'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
