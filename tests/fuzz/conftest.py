"""One real server per fuzz module, a tally of every case, and the checks made after the run.

Hypothesis runs derandomized with no example database, so CI tries the same cases every time.
Each module's tally is printed as one line at the end of the pytest run (the figures for
docs/reliability.md): cases per endpoint, 5xx answers, bad answers, files outside the root.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

from tests.server import ApplianceServer

from .strategies import MARKER
from .wire import Answer, Tally, exchange, record

SUMMARIES: list[str] = []


def fuzz_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@dataclass
class FilesAround:
    """Files in the server's work area outside its storage root, and in /tmp under the marker."""

    server: ApplianceServer
    before: set[str] = field(default_factory=set)
    since: float = 0.0

    def _around(self) -> set[str]:
        root, workdir = str(self.server.root), self.server.workdir
        own = {str(workdir / name) for name in ("config.yml", "server.log", "admin.sock")}
        found = set()
        for directory, dirs, files in os.walk(workdir.parent):
            dirs[:] = [d for d in dirs if os.path.join(directory, d) != root]
            found.update(os.path.join(directory, name) for name in files + dirs)
        return found - own

    def snapshot(self) -> FilesAround:
        self.before, self.since = self._around(), time.time() - 1
        return self

    def written_outside(self) -> list[str]:
        """New paths beside the storage root, and paths under /tmp named with the marker made
        since the snapshot (earlier runs' storage roots hold valid names with it)."""
        marked = []
        for directory, dirs, files in os.walk("/tmp", onerror=lambda _: None):
            if directory.count(os.sep) > 8:
                dirs[:] = []
            marked += [os.path.join(directory, n) for n in files + dirs if MARKER in n]
        marked = [path for path in marked if _changed_since(path, self.since)]
        root = str(self.server.root)
        return sorted((self._around() - self.before)
                      | {path for path in marked if not path.startswith(root + os.sep)})


@dataclass
class Fuzzed:
    """The module's server, and the files around its root as they were before the run."""

    server: ApplianceServer
    files: FilesAround

    def send(self, tally: Tally, label: str, data: bytes, half_close: bool = False) -> Answer:
        """Send raw `data`; with `half_close` the client hangs up after it (no answer is then
        allowed)."""
        answer = exchange(self.server.port, data, half_close=half_close)
        return record(tally, label, data, answer, may_close=half_close)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counted = Tally(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    yield counted
    SUMMARIES.append(counted.summary())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARIES:
        terminalreporter.write_line(line)


def after_the_run(server: ApplianceServer, tally: Tally, files: FilesAround) -> None:
    """Every answer was below 500 and well-formed, and nothing was written outside the root."""
    outside = files.written_outside()
    tally.outside_root = len(outside)
    assert not tally.failures, "\n".join(tally.failures[:50])
    assert tally.server_errors == 0
    assert outside == []
    assert "Traceback" not in server.log()


def _changed_since(path: str, since: float) -> bool:
    try:
        return os.lstat(path).st_mtime >= since
    except OSError:
        return False
