"""How a command finds its registry (embedded today; remote once the server exists)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter.service.registry import Registry


def registry() -> Registry:
    from charter.service.setup import open_registry

    return open_registry()
