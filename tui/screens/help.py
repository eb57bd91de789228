"""Every key binding, on one page."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """\
[b]Everywhere[/]
  ?          this help              R          read-only on/off
  g          garbage collection     ctrl+r     refresh
  i          integrity check        q          quit
  escape     back

[b]Repositories[/]
  /          filter                 s          sort: name, size, date
  enter      open tags

[b]Tags[/]
  space      select (several)       enter      manifest details
  d          delete selected tags   D          delete manifest (all its tags)
  c          copy/retag             /          filter

[b]Garbage collection[/]
  u          delete untagged on/off n          dry run
  x          run (after a dry run)  p          purge old uploads

[b]Integrity check[/]
  c          check (changes nothing)
  r          repair (after a check)
"""


class Help(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(KEYS, id="help-text")
