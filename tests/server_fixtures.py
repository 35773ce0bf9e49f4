"""`live_server`: a charter server on loopback over the test's store, with an admin token.

Use it with the `registry` fixture of `tests/conftest.py` (same store, same injected clock):

    from tests.server_fixtures import live_server  # noqa: F401  (a fixture)

    def test_something(registry, live_server):
        url, token = live_server
        remote = RemoteRegistry(url, token)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from charter.clock import ManualClock
from charter.config import Settings
from charter.service.registry import Registry
from tests.remote_fixtures import serving


@pytest.fixture
def live_server(registry: Registry, settings: Settings, clock: ManualClock) -> Iterator[tuple[str, str]]:
    """(base URL such as http://127.0.0.1:PORT, a token of `admin`, who holds every role)."""
    token = registry.tokens.create("admin", name="live-server").secret
    with serving(settings, clock=clock, web=False) as url:
        yield url, token
