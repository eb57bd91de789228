"""Pilot fixtures: the app over an in-memory admin API, with cursor blink off for stable frames."""

from __future__ import annotations

import pytest

from tui.app import RegistryApp
from tui.client import AdminClient

from .fake import FakeTransport


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def app(transport: FakeTransport) -> RegistryApp:
    app = RegistryApp(AdminClient(transport, "unix:/run/registry-appliance/admin.sock"))
    app.set_interval = _no_polling(app.set_interval)  # type: ignore[method-assign]
    return app


def _no_polling(set_interval):  # type: ignore[no-untyped-def]
    """The status poll every 5 s would make snapshots race; tests refresh explicitly."""
    def only_fast(interval: float, *args, **kwargs):  # type: ignore[no-untyped-def]
        return set_interval(interval if interval < 5 else 3600, *args, **kwargs)
    return only_fast
