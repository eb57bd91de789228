"""Small widgets shared by the screens."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from . import format as fmt
from .client import Status


class StatusBar(Static):
    """The registry's state in one line; follows the app's `status`, so the badge is the same
    on every screen."""

    status: reactive[Status | None] = reactive(None)
    problem: reactive[str] = reactive("")

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._set_status, init=True)
        self.watch(self.app, "problem", self._set_problem, init=True)

    def _set_status(self, status: Status | None) -> None:
        self.status = status

    def _set_problem(self, problem: str) -> None:
        self.problem = problem

    def render(self) -> str:
        if self.problem:
            return f"[b reverse red] NOT CONNECTED [/] {self.problem}"
        status = self.status
        if status is None:
            return "connecting…"
        badge = "[b reverse red] READ-ONLY [/]" if status.read_only else "[b reverse green] read-write [/]"
        free = f" · {fmt.size(status.free_bytes)} free" if status.free_bytes is not None else ""
        return (f"{badge} v{status.version} · {status.driver} · {status.repositories} repos · "
                f"{status.tags} tags · {fmt.size(status.total_bytes)}{free}")


class FilterInput(Input):
    """An incremental filter that hides itself when empty; `/` opens it, escape closes it."""

    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder=placeholder, id="filter", classes="hidden")

    @property
    def text(self) -> str:
        return self.value.strip().lower()

    def open(self) -> None:
        self.remove_class("hidden")
        self.focus()

    def close(self) -> bool:
        """Clear and hide; False when it was already closed (so escape can go back instead)."""
        if self.has_class("hidden") and not self.value:
            return False
        self.value = ""
        self.add_class("hidden")
        self.screen.query_one(DataTable).focus()
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.screen.query_one(DataTable).focus()
