"""The integrity check (fsck): check first, then repair what it found, with progress.

A check hashes every blob and follows every link and manifest reference; it changes nothing.
A repair moves what is broken to the quarantine folder (never deletes), re-checking each item
first, so it is offered only after a check that found something.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from .. import format as fmt
from ..client import FsckState
from ..widgets import StatusBar
from .dialogs import Confirm
from .job import JobScreen

IDLE = "Check (c) hashes every blob and follows every link and manifest; it changes nothing."


def summary(result: dict[str, Any]) -> str:
    checked = (f"{result.get('blobs', 0)} blobs ({fmt.size(result.get('bytes', 0))}), "
               f"{result.get('manifests', 0)} manifests, {result.get('links', 0)} links in "
               f"{result.get('repositories', 0)} repositories")
    problems = len(result.get("problems") or [])
    found = f"{problems} problem{'s' if problems != 1 else ''}" if problems else "no problems"
    return f"{'Repair' if result.get('repair') else 'Check'}: {checked}; {found}."


class FsckScreen(JobScreen):
    BINDINGS = [
        Binding("c", "check", "check"),
        Binding("r", "repair", "repair"),
        Binding("escape", "app.pop_screen", "back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last_check: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield from self.progress_widgets()
        yield Static(IDLE, id="result")
        table: DataTable[str] = DataTable(id="problems", cursor_type="row")
        table.add_columns("problem", "repository", "digest", "action", "detail")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.title = "integrity check"
        super().on_mount()

    def fetch(self) -> FsckState:
        return self.app.client.fsck_state()

    def action_check(self) -> None:
        self.start(lambda: self.app.client.start_fsck(False))

    def action_repair(self) -> None:
        found = (self.last_check or {}).get("problems") or []
        if not found:
            self.app.notify("run a check first (c): a repair moves only what a check found",
                            severity="warning")
            return
        lines = [f"  {p['kind']} {p.get('repository') or ''} {fmt.short_digest(p.get('digest') or '')}"
                 for p in found][:10]
        lines = [f"The check found {len(found)} problems:", *lines, "",
                 "Broken files are moved to <root>/appliance/quarantine/, never deleted; each is",
                 "checked again first. Images that use them answer 404 until pushed again."]
        self.app.push_screen(Confirm("Repair: quarantine what is broken?", lines, action="Repair"),
                             lambda yes: self._repair() if yes else None)

    def _repair(self) -> None:
        self.start(lambda: self.app.client.start_fsck(True))

    def details(self, state: FsckState) -> None:
        result = state.last
        if result is None:
            return
        self.query_one("#result", Static).update(summary(result))
        table = self.query_one("#problems", DataTable)
        table.clear()
        for problem in result.get("problems") or []:
            table.add_row(problem["kind"], problem.get("repository") or "-",
                          fmt.short_digest(problem.get("digest") or "") or "-",
                          problem.get("action") or "-", problem.get("detail", ""))

    def ended(self, result: dict[str, Any]) -> None:
        self.last_check = None if result.get("repair") else result
        if result.get("repair"):
            self.app.refresh_status()  # type: ignore[attr-defined]
