"""The admin TUI (`registry-appliance tui`): Textual screens over the admin API. No Twisted here."""
