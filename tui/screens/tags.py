"""Tags of one repository: select, delete (by tag or by digest), copy, open."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input

from .. import format as fmt
from ..client import ClientError, Tag
from ..widgets import FilterInput, StatusBar
from .dialogs import Confirm, Prompt

KIND = {"image": "image", "index": "index", "artifact": "artifact"}


class TagsScreen(Screen[None]):
    BINDINGS = [
        Binding("space", "toggle", "select"),
        Binding("d", "delete_tags", "delete tag"),
        Binding("D", "delete_manifest", "delete digest"),
        Binding("c", "copy", "copy/retag"),
        Binding("slash", "filter", "filter"),
        Binding("ctrl+r", "refresh", "refresh"),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, repository: str) -> None:
        super().__init__()
        self.repository = repository
        self._tags: list[Tag] = []
        self.selected: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield FilterInput("filter tags")
        table: DataTable[str] = DataTable(id="tags", cursor_type="row", zebra_stripes=True)
        table.add_columns(" ", "tag", "digest", "kind", "size", "created", "platforms")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.title = self.repository
        self.query_one(DataTable).focus()
        self.load()

    @work(thread=True, exclusive=True, group="tags")
    def load(self) -> None:
        try:
            tags = self.app.client.tags(self.repository)
        except ClientError as error:
            self.app.call_from_thread(self.app.report_problem, str(error))
            return
        self.app.call_from_thread(self._loaded, tags)

    def _loaded(self, tags: list[Tag]) -> None:
        self._tags = tags
        self.selected &= {t.tag for t in tags}
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        text = self.query_one(FilterInput).text
        row = table.cursor_row
        table.clear()
        for t in self._tags:
            if text and text not in t.tag.lower():
                continue
            table.add_row("✓" if t.tag in self.selected else " ", t.tag, fmt.short_digest(t.digest),
                          KIND.get(t.kind, t.kind), fmt.size(t.size), fmt.when(t.created),
                          ", ".join(fmt.platform(p) for p in t.platforms) or "-", key=t.tag)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        self.sub_title = f"{table.row_count} tags · {len(self.selected)} selected"

    def _current(self) -> Tag | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((t for t in self._tags if t.tag == key), None)

    def _targets(self) -> list[Tag]:
        """The selected tags, or the one under the cursor when none are selected."""
        chosen = [t for t in self._tags if t.tag in self.selected]
        current = self._current()
        return chosen or ([current] if current else [])

    def action_toggle(self) -> None:
        current = self._current()
        if current is not None:
            self.selected ^= {current.tag}
            self._fill()

    def action_delete_tags(self) -> None:
        targets = self._targets()
        if not targets:
            return
        lines = [f"  {self.repository}:{t.tag}  ({fmt.short_digest(t.digest)})" for t in targets]
        lines += ["", "Only these tags go; the manifests stay for their other tags (GC reclaims the rest)."]
        self.app.push_screen(
            Confirm(f"Delete {len(targets)} tag(s)?", lines),
            lambda yes: self._delete_tags([t.tag for t in targets]) if yes else None,
        )

    @work(thread=True, group="tags-write")
    def _delete_tags(self, tags: list[str]) -> None:
        try:
            for tag in tags:
                self.app.client.delete_tag(self.repository, tag)
        except ClientError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
        else:
            self.app.call_from_thread(self.app.notify, f"deleted {len(tags)} tag(s)")
        self.selected -= set(tags)
        self.load()
        self.app.refresh_status()

    def action_delete_manifest(self) -> None:
        current = self._current()
        if current is None:
            return
        siblings = sorted(t.tag for t in self._tags if t.digest == current.digest)
        lines = [f"  manifest {current.digest}", "", "and EVERY tag on it:"]
        lines += [f"  {self.repository}:{tag}" for tag in siblings]
        self.app.push_screen(
            Confirm(f"Delete manifest {fmt.short_digest(current.digest)} and {len(siblings)} tag(s)?", lines),
            lambda yes: self._delete_manifest(current.digest) if yes else None,
        )

    @work(thread=True, group="tags-write")
    def _delete_manifest(self, digest: str) -> None:
        try:
            removed = self.app.client.delete_manifest(self.repository, digest)
        except ClientError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
        else:
            self.app.call_from_thread(self.app.notify, f"deleted {fmt.short_digest(digest)} and tags: "
                                      f"{', '.join(removed) or 'none'}")
        self.load()
        self.app.refresh_status()

    def action_copy(self) -> None:
        current = self._current()
        if current is None:
            return
        source = f"{self.repository}:{current.tag}"
        self.app.push_screen(
            Prompt(f"Copy {source} to (repository:tag)", "team/app:stable", source),
            lambda destination: self._copy_image(source, destination) if destination else None,
        )

    @work(thread=True, group="tags-write")
    def _copy_image(self, source: str, destination: str) -> None:
        try:
            self.app.client.copy(source, destination)
        except ClientError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self.app.notify, f"copied {source} -> {destination}")
        self.load()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from .manifest import ManifestScreen

        self.app.push_screen(ManifestScreen(self.repository, str(event.row_key.value)))

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        if not self.query_one(FilterInput).close():
            self.app.pop_screen()
