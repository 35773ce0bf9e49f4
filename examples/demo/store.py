"""Which store the demo is pointed at, and removing it safely (`make demo-reset`).

The demo writes `demo.json` into the store's home when it starts ("building") and again when it
finishes ("complete"). Only a store carrying that marker — or one holding nothing but its own
initialisation — is ever removed; any other store is left exactly as it is.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.config import Settings
from charter.errors import StoreNotInitialised
from charter.service.setup import open_registry

MARKER = "demo.json"


@dataclass(frozen=True)
class Found:
    kind: str  # absent | empty | demo | unfinished | other
    detail: str = ""
    marker: dict[str, Any] | None = None


def marker_path(settings: Settings) -> Path:
    return settings.home / MARKER


def write_marker(settings: Settings, facts: dict[str, Any]) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    marker_path(settings).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def inspect(settings: Settings) -> Found:
    """What the configured store holds, as far as the demo is concerned."""
    marker = marker_path(settings)
    if marker.exists():
        facts = json.loads(marker.read_text(encoding="utf-8"))
        return Found("demo" if facts.get("status") == "complete" else "unfinished", marker=facts)
    if settings.embedded_database and not (settings.home / "charter.db").exists():
        return Found("absent")
    try:
        registry = open_registry(settings)
    except StoreNotInitialised:
        return Found("absent")
    try:
        with registry.store.read() as tx:
            sequence, _ = tx.ledger.head()
            first = tx.ledger.events(limit=1)
    finally:
        registry.close()
    if sequence <= 1:
        when = first[0].time if first else "an unknown time"
        return Found("empty", f"initialised at {when} and holding nothing else")
    return Found("other", f"{sequence} audit events")


def reset(settings: Settings, workspace: Path) -> tuple[bool, str]:
    """Remove a demo store (or an empty one) and the demo's workspace; refuse anything else.
    (done, what was said)"""
    found = inspect(settings)
    removed = []
    if found.kind in ("demo", "unfinished", "empty"):
        if not settings.embedded_database:
            return False, (
                f"the demo store's metadata lives in {settings.database_url.split('@')[-1]}; drop that "
                "database yourself (charter never drops a database), then run the demo again"
            )
        shutil.rmtree(settings.home)
        removed.append(f"the {'empty ' if found.kind == 'empty' else 'demo '}store {settings.home}")
    elif found.kind == "other":
        return False, (
            f"{settings.home} holds a store that is not the demo ({found.detail}); nothing was removed. "
            "Point CHARTER_HOME at the demo's store to reset it."
        )
    if workspace.exists():
        shutil.rmtree(workspace)
        removed.append(f"the workspace {workspace}")
    return True, ("removed " + " and ".join(removed) if removed else "nothing to remove")
