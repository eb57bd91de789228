"""The Textual application: global keys, the shared status, and the screen stack."""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive

from .client import AdminClient, ClientError, Status
from .screens.dialogs import Confirm
from .screens.fsck import FsckScreen
from .screens.gc import GCScreen
from .screens.help import Help
from .screens.repositories import RepositoriesScreen

STATUS_EVERY = 15.0  # status walks all of storage; actions refresh it at once


class RegistryApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "registry-appliance"
    BINDINGS = [
        Binding("question_mark", "help", "help"),
        Binding("R", "toggle_read_only", "read-only"),
        Binding("g", "gc", "GC"),
        Binding("i", "fsck", "fsck"),
        Binding("q", "quit", "quit"),
    ]

    status: reactive[Status | None] = reactive(None)
    problem: reactive[str] = reactive("")

    def __init__(self, client: AdminClient) -> None:
        super().__init__()
        self.client = client
        self.sub_title = client.target

    def on_mount(self) -> None:
        self.push_screen(RepositoriesScreen())
        self.refresh_status()
        self.set_interval(STATUS_EVERY, self.refresh_status)

    @work(thread=True, exclusive=True, group="status")
    def refresh_status(self) -> None:
        try:
            status = self.client.status()
        except ClientError as error:
            self.call_from_thread(self.report_problem, str(error))
            return
        self.call_from_thread(self._set_status, status)

    def _set_status(self, status: Status) -> None:
        self.status, self.problem = status, ""

    def report_problem(self, message: str) -> None:
        """Connection and API errors go to the status line, in words, never as a traceback."""
        self.problem = message

    def action_help(self) -> None:
        self.push_screen(Help())

    def action_gc(self) -> None:
        if not isinstance(self.screen, GCScreen):
            self.push_screen(GCScreen())

    def action_fsck(self) -> None:
        if not isinstance(self.screen, FsckScreen):
            self.push_screen(FsckScreen())

    def action_toggle_read_only(self) -> None:
        if self.status is None:
            return
        enable = not self.status.read_only
        lines = (["Pushes, deletes and mounts will be refused (405) on every instance; pulls go on."]
                 if enable else ["Pushes and deletes will be accepted again."])
        self.push_screen(Confirm(f"Turn read-only {'ON' if enable else 'OFF'}?", lines,
                                 action="Read-only on" if enable else "Read-only off"),
                         lambda yes: self._set_read_only(enable) if yes else None)

    @work(thread=True, group="readonly")
    def _set_read_only(self, enabled: bool) -> None:
        try:
            self.client.set_read_only(enabled)
        except ClientError as error:
            self.call_from_thread(self.notify, str(error), severity="error")
            return
        self.call_from_thread(self.notify, f"read-only is {'on' if enabled else 'off'}")
        self.refresh_status()
