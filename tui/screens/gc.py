"""Garbage collection and upload purging: dry run first, then the real thing, with progress."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static

from .. import format as fmt
from ..client import ClientError, GCState
from ..widgets import StatusBar
from .dialogs import Confirm

POLL_SECONDS = 0.5


def summary(result: dict[str, Any]) -> str:
    verb = "would free" if result.get("dry_run") else "freed"
    return (f"{len(result.get('manifests') or [])} manifests, {len(result.get('blobs') or [])} blobs, "
            f"{verb} {fmt.size(result.get('bytes_freed', 0))}")


class GCScreen(Screen[None]):
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
        self._poll: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield Label(self._options(), id="options")
        yield Label("idle", id="phase")
        yield ProgressBar(id="progress", show_eta=False)
        yield Static("Run a dry run (n) to see what a GC would remove.", id="result")
        table: DataTable[str] = DataTable(id="history", cursor_type="row")
        table.add_columns("started", "kind", "manifests", "blobs", "bytes")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.title = "garbage collection"
        self.poll()

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

    @work(thread=True, group="gc-start")
    def _start_gc(self, dry_run: bool) -> None:
        try:
            self.app.client.start_gc(dry_run, self.delete_untagged)
        except ClientError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._keep_polling)

    def _keep_polling(self) -> None:
        if self._poll is None:
            self._poll = self.set_interval(POLL_SECONDS, self.poll)

    @work(thread=True, exclusive=True, group="gc-poll")
    def poll(self) -> None:
        try:
            state = self.app.client.gc_state()
        except ClientError as error:
            self.app.call_from_thread(self.app.report_problem, str(error))
            return
        self.app.call_from_thread(self._display, state)

    def _display(self, state: GCState) -> None:
        bar = self.query_one("#progress", ProgressBar)
        if state.running:
            self.query_one("#phase", Label).update(f"running: {state.phase} {state.done}/{state.total}")
            bar.update(total=max(state.total, 1), progress=state.done)
            self._keep_polling()
        else:
            self.query_one("#phase", Label).update(f"idle{': ' + state.error if state.error else ''}")
            bar.update(total=1, progress=1 if state.history else 0)
            if self._poll is not None:
                self._poll.stop()
                self._poll = None
                if state.history:
                    self._report(state.history[0])
        table = self.query_one("#history", DataTable)
        table.clear()
        for run in state.history:
            table.add_row(fmt.when(run.get("started")), "dry run" if run.get("dry_run") else "GC",
                          str(len(run.get("manifests") or [])), str(len(run.get("blobs") or [])),
                          fmt.size(run.get("bytes_freed", 0)))

    def _report(self, result: dict[str, Any]) -> None:
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
