"""Every screen and action, driven with Pilot against an in-memory admin API."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from tui.app import RegistryApp
from tui.screens.dialogs import Confirm, Prompt
from tui.screens.fsck import FsckScreen
from tui.screens.gc import GCScreen
from tui.screens.help import Help
from tui.screens.manifest import ManifestScreen
from tui.screens.repositories import RepositoriesScreen
from tui.screens.tags import TagsScreen

from .fake import DIGEST_A, FakeTransport

pytestmark = pytest.mark.asyncio


def rows(app: RegistryApp) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(table.get_row_at(i)[0 if isinstance(app.screen, RepositoriesScreen) else 1])
            for i in range(table.row_count)]


async def test_repositories_listed_with_sizes(app: RegistryApp) -> None:
    """The first screen lists every repository with tag count and sizes, and the status line."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert isinstance(app.screen, RepositoriesScreen)
        assert rows(app) == ["team/api", "team/web", "tools/builder"]
        assert app.status is not None and app.status.repositories == 3
        table = app.screen.query_one(DataTable)
        assert [str(c) for c in table.get_row_at(0)[1:3]] == ["3", "10.0 MB"]


async def test_filter_and_sort(app: RegistryApp) -> None:
    """`/` filters incrementally; `s` cycles the sort; escape clears the filter."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("slash", "t", "e", "a", "m")
        await pilot.pause(0.1)
        assert rows(app) == ["team/api", "team/web"]
        await pilot.press("enter", "s")
        await pilot.pause(0.1)
        assert rows(app) == ["team/api", "team/web"]  # by size, largest first
        await pilot.press("s")
        await pilot.pause(0.1)
        assert rows(app) == ["team/web", "team/api"]  # by date, newest first
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert len(rows(app)) == 3


async def test_open_tags_and_manifest(app: RegistryApp) -> None:
    """enter opens a repository's tags, enter again the manifest detail, escape goes back."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TagsScreen) and rows(app) == ["stable", "v1", "v2"]
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ManifestScreen)
        text = str(app.screen.query_one("#details").render())
        assert "Layers (1)" in text and "cosign" in text and "tags: stable, v1" in text
        await pilot.press("escape", "escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RepositoriesScreen)


async def test_delete_selected_tags_after_confirmation(app: RegistryApp, transport: FakeTransport) -> None:
    """Selected tags are deleted one by one after a confirmation that lists them."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("space", "down", "down", "space", "d")
        await pilot.pause(0.1)
        assert isinstance(app.screen, Confirm)
        body = str(app.screen.query_one("#dialog-body").render())
        assert "team/api:stable" in body and "team/api:v2" in body and "team/api:v1" not in body
        await pilot.press("y")
        await pilot.pause(0.3)
        assert [c[1] for c in transport.calls] == ["/admin/v1/repositories/team/api/tags/stable",
                                                   "/admin/v1/repositories/team/api/tags/v2"]
        assert rows(app) == ["v1"]


async def test_cancelled_delete_changes_nothing(app: RegistryApp, transport: FakeTransport) -> None:
    """Answering no to the confirmation sends nothing."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("d", "n")
        await pilot.pause(0.2)
        assert transport.calls == [] and len(rows(app)) == 3


async def test_digest_delete_names_every_tag_it_takes(app: RegistryApp, transport: FakeTransport) -> None:
    """D on a tag warns that the manifest's other tags go too, and deletes by digest."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("D")
        await pilot.pause(0.1)
        body = str(app.screen.query_one("#dialog-body").render())
        assert "EVERY tag" in body and "team/api:stable" in body and "team/api:v1" in body
        await pilot.press("y")
        await pilot.pause(0.3)
        assert transport.calls == [("DELETE", f"/admin/v1/repositories/team/api/manifests/{DIGEST_A}", None)]
        assert rows(app) == ["v2"]


async def test_copy_to_another_repository(app: RegistryApp, transport: FakeTransport) -> None:
    """c asks for a destination and copies server-side."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("c")
        await pilot.pause(0.1)
        assert isinstance(app.screen, Prompt)
        prompt = app.screen.query_one("#prompt")
        prompt.value = "release/api:1.0"
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert transport.calls == [("POST", "/admin/v1/copy", {"source": "team/api:stable",
                                                                 "destination": "release/api:1.0"})]


async def test_read_only_toggle_updates_the_badge(app: RegistryApp, transport: FakeTransport) -> None:
    """R asks, flips read-only on the server, and every screen's badge follows."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("R")
        await pilot.pause(0.1)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause(0.4)
        assert transport.read_only and app.status is not None and app.status.read_only
        assert "READ-ONLY" in str(app.screen.query_one("#status").render())
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert "READ-ONLY" in str(app.screen.query_one("#status").render())


async def test_gc_dry_run_then_run(app: RegistryApp, transport: FakeTransport) -> None:
    """g opens GC; x is refused before a dry run; n shows the dry run; x confirms and runs."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("g")
        await pilot.pause(0.3)
        assert isinstance(app.screen, GCScreen)
        await pilot.press("x")
        await pilot.pause(0.1)
        assert transport.calls == []
        await pilot.press("u", "n")
        await pilot.pause(1.2)
        assert transport.calls == [("POST", "/admin/v1/gc", {"dry_run": True, "delete_untagged": True})]
        assert "would free 2.5 MB" in str(app.screen.query_one("#result").render())
        await pilot.press("x")
        await pilot.pause(0.1)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause(1.2)
        assert transport.calls[-1] == ("POST", "/admin/v1/gc", {"dry_run": False, "delete_untagged": True})
        assert "GC done" in str(app.screen.query_one("#result").render())


async def test_integrity_check_then_repair(app: RegistryApp, transport: FakeTransport) -> None:
    """i opens the integrity check; r is refused before a check; c lists the problems found;
    r confirms and repairs, and the table shows what was quarantined."""
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("i")
        await pilot.pause(0.3)
        assert isinstance(app.screen, FsckScreen)
        await pilot.press("r")
        await pilot.pause(0.1)
        assert transport.calls == [] and not isinstance(app.screen, Confirm)
        await pilot.press("c")
        await pilot.pause(1.2)
        assert transport.calls == [("POST", "/admin/v1/fsck", {"repair": False})]
        assert "Check: 42 blobs (184.5 MB), 9 manifests, 57 links in 3 repositories; 3 problems." in str(
            app.screen.query_one("#result").render())
        table = app.screen.query_one("#problems", DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
            "corrupt_blob", "dangling_link", "missing_reference"]
        await pilot.press("r")
        await pilot.pause(0.1)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause(1.2)
        assert transport.calls[-1] == ("POST", "/admin/v1/fsck", {"repair": True})
        assert str(app.screen.query_one("#result").render()).startswith("Repair:")
        table = app.screen.query_one("#problems", DataTable)
        assert {str(table.get_row_at(i)[3]) for i in range(table.row_count)} == {"quarantined"}


async def test_upload_purge_dry_run_then_confirm(app: RegistryApp, transport: FakeTransport) -> None:
    """p shows what a purge would remove and purges after a yes."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("g")
        await pilot.pause(0.3)
        await pilot.press("p")
        await pilot.pause(0.3)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause(0.3)
        assert [c[2]["dry_run"] for c in transport.calls] == [True, False]


async def test_help_overlay(app: RegistryApp) -> None:
    """? shows every key binding; escape closes it."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, Help)
        assert "delete manifest" in str(app.screen.query_one("#help-text").render())
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RepositoriesScreen)


async def test_unreachable_server_is_explained(app: RegistryApp, transport: FakeTransport) -> None:
    """When the admin socket is unreachable the status line says so and what to do."""
    transport.reachable = False
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        status = str(app.screen.query_one("#status").render())
        assert "NOT CONNECTED" in status and "is the server running?" in status
