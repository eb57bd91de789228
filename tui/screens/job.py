"""What the GC and integrity-check screens share: a job that runs in the server, started with
one call and then polled until it ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Label, ProgressBar

from ..client import ClientError, JobState

POLL_SECONDS = 0.5


class JobScreen(Screen[None]):
    """Polls the job's state once when shown and every `POLL_SECONDS` while a run is going on,
    showing its phase and progress. Subclasses say how to read the state (`fetch`, blocking),
    what else to show of it (`details`) and what to say when a run they followed ends
    (`ended`)."""

    def __init__(self) -> None:
        super().__init__()
        self._poll: Timer | None = None

    def on_mount(self) -> None:
        self.poll()

    def fetch(self) -> JobState:
        raise NotImplementedError

    def details(self, state: Any) -> None:
        """Show what the state holds beyond phase and progress."""

    def ended(self, result: dict[str, Any]) -> None:
        """A run started from this screen has ended with `result`."""

    def progress_widgets(self) -> ComposeResult:
        yield Label("idle", id="phase")
        yield ProgressBar(id="progress", show_eta=False)

    def show(self, state: JobState) -> None:
        bar = self.query_one("#progress", ProgressBar)
        if state.running:
            self.query_one("#phase", Label).update(f"running: {state.phase} {state.done}/{state.total}")
            bar.update(total=max(state.total, 1), progress=state.done)
            self.keep_polling()
        else:
            self.query_one("#phase", Label).update(f"idle{': ' + state.error if state.error else ''}")
            bar.update(total=1, progress=1 if state.last is not None else 0)
            if self.stop_polling() and state.last is not None:
                self.ended(state.last)
        self.details(state)

    def keep_polling(self) -> None:
        if self._poll is None:
            self._poll = self.set_interval(POLL_SECONDS, self.poll)

    def stop_polling(self) -> bool:
        """Stop; True if a run was being followed (so it has just ended and is worth a report)."""
        if self._poll is None:
            return False
        self._poll.stop()
        self._poll = None
        return True

    @work(thread=True, group="job-start")
    def start(self, begin: Callable[[], object]) -> None:
        """Ask the server to start a run, then follow it."""
        try:
            begin()
        except ClientError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self.keep_polling)
        self.app.call_from_thread(self.poll)  # show it at once, not a poll interval later

    @work(thread=True, exclusive=True, group="job-poll")
    def poll(self) -> None:
        try:
            state = self.fetch()
        except ClientError as error:
            self.app.call_from_thread(self.app.report_problem, str(error))  # type: ignore[attr-defined]
            return
        self.app.call_from_thread(self.show, state)
