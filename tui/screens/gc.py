"""Garbage collection and upload purging: dry run first, then the real thing, with progress."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Label, Static

from .. import format as fmt
from ..client import ClientError, GCState
from ..widgets import StatusBar
from .dialogs import Confirm
from .job import JobScreen


def summary(result: dict[str, Any]) -> str:
    verb = "would free" if result.get("dry_run") else "freed"
    return (f"{len(result.get('manifests') or [])} manifests, {len(result.get('blobs') or [])} blobs, "
            f"{verb} {fmt.size(result.get('bytes_freed', 0))}")


class GCScreen(JobScreen):
    BINDINGS = [
        Binding("n", "dry_run", "dry run"),
        Binding("x", "run", "run GC"),
        Binding("u", "toggle_untagged", "untagged on/off"),
        Binding("p", "purge", "purge uploads"),
        Binding("escape", "app.pop_screen", "back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.delete_untagged = False
        self.last_dry_run: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield Label(self._options(), id="options")
        yield from self.progress_widgets()
        yield Static("Run a dry run (n) to see what a GC would remove.", id="result")
        table: DataTable[str] = DataTable(id="history", cursor_type="row")
        table.add_columns("started", "kind", "manifests", "blobs", "bytes")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.title = "garbage collection"
        super().on_mount()

    def _options(self) -> str:
        state = "[b]on[/]" if self.delete_untagged else "off"
        return f"delete untagged manifests: {state} (u) · grace period protects recent pushes"

    def action_toggle_untagged(self) -> None:
        self.delete_untagged = not self.delete_untagged
        self.last_dry_run = None
        self.query_one("#options", Label).update(self._options())

    def action_dry_run(self) -> None:
        self._start_gc(dry_run=True)

    def action_run(self) -> None:
        if self.last_dry_run is None:
            self.app.notify("run a dry run first (n): it shows what will be removed", severity="warning")
            return
        result = self.last_dry_run
        lines = [f"  {m['repository']}@{fmt.short_digest(m['digest'])}" for m in result.get("manifests") or []][:10]
        lines = [f"The dry run found: {summary(result)}.", *(["Untagged manifests:", *lines] if lines else []),
                 "", "Pushes may go on meanwhile: anything they use is kept."]
        self.app.push_screen(Confirm("Run garbage collection now?", lines, action="Run GC"),
                             lambda yes: self._start_gc(dry_run=False) if yes else None)

    def _start_gc(self, dry_run: bool) -> None:
        self.start(lambda: self.app.client.start_gc(dry_run, self.delete_untagged))

    def fetch(self) -> GCState:
        return self.app.client.gc_state()

    def details(self, state: GCState) -> None:
        table = self.query_one("#history", DataTable)
        table.clear()
        for run in state.history:
            table.add_row(fmt.when(run.get("started")), "dry run" if run.get("dry_run") else "GC",
                          str(len(run.get("manifests") or [])), str(len(run.get("blobs") or [])),
                          fmt.size(run.get("bytes_freed", 0)))

    def ended(self, result: dict[str, Any]) -> None:
        if result.get("dry_run"):
            self.last_dry_run = result
            self.query_one("#result", Static).update(f"Dry run: {summary(result)}. Press x to run it.")
        else:
            self.last_dry_run = None
            self.query_one("#result", Static).update(f"GC done: {summary(result)}.")
            self.app.refresh_status()

    def action_purge(self) -> None:
        self._purge(dry_run=True)

    @work(thread=True, group="purge")
    def _purge(self, dry_run: bool) -> None:
        try:
            result = self.app.client.purge_uploads(dry_run)
        except ClientError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        uploads, fetches = result.get("uploads") or [], result.get("fetches") or []
        count, freed = len(uploads) + len(fetches), fmt.size(result.get("bytes_freed", 0))
        if not dry_run:
            self.app.call_from_thread(self.app.notify, f"purged {count} uploads, {freed}")
        elif count:
            lines = [f"  {u['repository']} {u['upload']}" for u in uploads]
            lines += [f"  mirror download {fetch}" for fetch in fetches]
            self.app.call_from_thread(
                self.app.push_screen,
                Confirm(f"Purge {count} abandoned uploads ({freed})?", lines[:12], action="Purge"),
                lambda yes: self._purge(dry_run=False) if yes else None,
            )
        else:
            self.app.call_from_thread(self.app.notify, "no abandoned uploads older than the purge age")
