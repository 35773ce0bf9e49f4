"""Creating, upgrading and opening a store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from charter.clock import Clock, SystemClock
from charter.config import Settings
from charter.domain.roles import Role
from charter.errors import InvalidInput, StoreNotInitialised, StoreOutOfDate
from charter.service.registry import Registry
from charter.storage import migrate
from charter.storage.blobs import BlobStore, LocalBlobStore
from charter.storage.engine import create_engine
from charter.storage.store import Store


@dataclass(frozen=True)
class InitResult:
    home: str
    database: str
    blobs: str
    revision: str
    created: bool  # False when the store existed already
    admin: str | None  # the user granted every role, when the store had no users

    def as_dict(self) -> dict[str, Any]:
        return {
            "home": self.home,
            "database": self.database,
            "blobs": self.blobs,
            "revision": self.revision,
            "created": self.created,
            "admin": self.admin,
        }


def init_store(settings: Settings, clock: Clock | None = None) -> InitResult:
    """Create (or bring up to date) the store; the first user gets every role. Idempotent."""
    clock = clock or SystemClock()
    if settings.embedded_database:
        settings.home.mkdir(parents=True, exist_ok=True)
    blobs = _blob_store(settings)
    blobs.create()
    engine = create_engine(settings.database_url)
    try:
        before, after = migrate.upgrade(engine)
        store = Store(engine, blobs, clock)
        admin = None
        with store.write() as tx:
            if tx.users.count() == 0:
                tx.users.add(settings.user, frozenset(Role), at=clock.now(), by=settings.user)
                tx.ledger.append(
                    settings.user,
                    "store.initialised",
                    "store",
                    {
                        "revision": after,
                        "admin": settings.user,
                        "roles": sorted(r.value for r in Role),
                    },
                )
                admin = settings.user
    finally:
        engine.dispose()
    return InitResult(
        str(settings.home), _redacted(settings.database_url), blobs.location, after, before is None, admin
    )


def upgrade_store(settings: Settings) -> tuple[str | None, str]:
    engine = create_engine(settings.database_url)
    try:
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


def open_registry(
    settings: Settings | None = None, *, clock: Clock | None = None, user: str | None = None
) -> Registry:
    """The registry over an existing, up-to-date store."""
    settings = settings or Settings.from_env()
    if settings.embedded_database and not (settings.home / "charter.db").exists():
        raise StoreNotInitialised(str(settings.home))
    engine = create_engine(settings.database_url)
    try:
        current = migrate.current_revision(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise InvalidInput(f"cannot reach the database: {exc.orig}") from None
    head = migrate.head_revision()
    if current is None:
        engine.dispose()
        raise StoreNotInitialised(_redacted(settings.database_url))
    if current != head:
        engine.dispose()
        raise StoreOutOfDate(current, head)
    blobs = _blob_store(settings)
    return Registry(
        Store(engine, blobs, clock or SystemClock()), settings, user or settings.user, clock or SystemClock()
    )


def _blob_store(settings: Settings) -> BlobStore:
    """A local folder for a plain path or file:// URL; any other URL goes to fsspec (s3://…)."""
    url = settings.blob_url
    if "://" not in url:
        return LocalBlobStore(Path(url).expanduser())
    if url.startswith("file://"):
        return LocalBlobStore(Path(url.removeprefix("file://")))
    from charter.storage.blobs_fsspec import FsspecBlobStore

    return FsspecBlobStore(url)


def _redacted(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)
