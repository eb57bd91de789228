"""Each screen as pixels-in-text at 80x24 and 120x40 (pytest-textual-snapshot)."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from tui.app import RegistryApp

os.environ["TZ"] = "UTC"
time.tzset()

SIZES = [(80, 24), (120, 40)]


def after(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await pilot.pause(0.3)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        await pilot.pause(0.3)
    return run


SCREENS = {
    "repositories": after(),
    "tags": after("enter"),
    "manifest": after("enter", "enter"),
    "index": after("down", "enter", "enter"),
    "delete-confirmation": after("enter", "D"),
    "gc-dry-run": after("g", "u", "n"),
    "fsck-problems": after("i", "c"),
    "help": after("question_mark"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, app: RegistryApp, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The screen renders as recorded."""
    assert snap_compare(app, run_before=SCREENS[screen], terminal_size=size)
