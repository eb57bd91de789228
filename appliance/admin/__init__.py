"""The admin API: JSON over HTTP on a private UNIX socket, and under `/admin/v1/` for admin users.

`client.py` imports no Twisted, so the CLI and the TUI can use it without a reactor.
"""
