"""The first screen: every repository with its tags and what it costs on disk."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input

from .. import format as fmt
from ..client import ClientError, Repository
from ..widgets import FilterInput, StatusBar

SORTS = ("name", "size", "date")


class RepositoriesScreen(Screen[None]):
    BINDINGS = [
        Binding("slash", "filter", "filter"),
        Binding("s", "sort", "sort"),
        Binding("ctrl+r", "refresh", "refresh"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[Repository] = []
        self._sort = "name"

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield FilterInput("filter repositories")
        table: DataTable[str] = DataTable(id="repositories", cursor_type="row", zebra_stripes=True)
        table.add_columns("repository", "tags", "unique", "shared", "last push")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="repositories")
    def load(self) -> None:
        try:
            rows = self.app.client.repositories()
        except ClientError as error:
            self.app.call_from_thread(self.app.report_problem, str(error))
            return
        self.app.call_from_thread(self._loaded, rows)

    def _loaded(self, rows: list[Repository]) -> None:
        self._rows = rows
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        text = self.query_one(FilterInput).text
        rows = [r for r in self._rows if text in r.name.lower()]
        key = {"name": lambda r: r.name, "size": lambda r: -(r.unique_bytes + r.shared_bytes),
               "date": lambda r: -(r.last_push or 0)}[self._sort]
        selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear()
        for r in sorted(rows, key=key):
            table.add_row(r.name, str(r.tags), fmt.size(r.unique_bytes), fmt.size(r.shared_bytes),
                          fmt.when(r.last_push), key=r.name)
        if selected in {r.name for r in rows}:
            table.move_cursor(row=table.get_row_index(selected))
        self.sub_title = f"{len(rows)} of {len(self._rows)} repositories · sorted by {self._sort}"

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from .tags import TagsScreen

        self.app.push_screen(TagsScreen(str(event.row_key.value)))

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    def action_clear_filter(self) -> None:
        self.query_one(FilterInput).close()

    def action_sort(self) -> None:
        self._sort = SORTS[(SORTS.index(self._sort) + 1) % len(SORTS)]
        self._fill()

    def action_refresh(self) -> None:
        self.load()
        self.app.refresh_status()
