"""Configuration: the only module that reads the process environment."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HOME = ".charter"
DATABASE_FILE = "charter.db"
BLOB_FOLDER = "blobs"


@dataclass(frozen=True)
class Settings:
    """Where the store lives and who is acting.

    `home` holds the embedded store: the SQLite file and the blob folder. `database_url`
    overrides the metadata database (for example a PostgreSQL URL); `blob_url` overrides the
    blob store location. `user` is the acting user in embedded mode.
    """

    home: Path
    database_url: str
    blob_url: str
    user: str
    checkpoint_key: Path | None = None  # Ed25519 private key (PEM) for signed ledger checkpoints
    url: str | None = None  # remote mode: the charter server (CHARTER_URL)
    token: str | None = field(default=None, repr=False)  # remote mode: the API token (CHARTER_TOKEN)
    server_jobs: bool = True  # `charter server --workers N` passes --no-jobs to its workers this way
    session_secret: bytes | None = field(default=None, repr=False)  # web sessions (CHARTER_SESSION_SECRET)
    metrics_multiprocess: bool = False  # PROMETHEUS_MULTIPROC_DIR set: aggregate metrics of workers
    # Folders under which the server may open lake tables and catalog files a caller names over the
    # API (CHARTER_LAKE_ROOTS, os.pathsep-separated); object-store URIs need no root.
    lake_roots: tuple[Path, ...] = ()
    # Catalog services (Iceberg REST or SQL catalogs: https://…, postgresql://…) the server may
    # connect to for a caller over the API (CHARTER_LAKE_CATALOGS, comma-separated URI prefixes);
    # without it a caller could make the server connect to any internal service.
    lake_catalogs: tuple[str, ...] = ()

    @property
    def remote(self) -> bool:
        return self.url is not None

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def for_home(cls, home: Path | str, *, user: str, database_url: str | None = None) -> Settings:
        home = Path(home).absolute()
        return cls(
            home=home,
            database_url=database_url or f"sqlite:///{home / DATABASE_FILE}",
            blob_url=str(home / BLOB_FOLDER),
            user=user,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("CHARTER_HOME") or DEFAULT_HOME).absolute()
        settings = cls.for_home(
            home,
            user=env.get("CHARTER_USER") or _os_user(),
            database_url=env.get("CHARTER_DATABASE_URL") or None,
        )
        blob_url = env.get("CHARTER_BLOB_URL")
        if blob_url:
            settings = replace(settings, blob_url=blob_url)
        key = env.get("CHARTER_CHECKPOINT_KEY")
        return replace(
            settings,
            checkpoint_key=Path(key).expanduser().absolute() if key else None,
            url=(env.get("CHARTER_URL") or "").rstrip("/") or None,
            token=env.get("CHARTER_TOKEN") or None,
            server_jobs=env.get("CHARTER_SERVER_JOBS", "1") != "0",
            metrics_multiprocess=bool(env.get("PROMETHEUS_MULTIPROC_DIR")),
            lake_roots=tuple(
                Path(p).expanduser().absolute()
                for p in env.get("CHARTER_LAKE_ROOTS", "").split(os.pathsep)
                if p
            ),
            lake_catalogs=tuple(
                p.strip() for p in env.get("CHARTER_LAKE_CATALOGS", "").split(",") if p.strip()
            ),
            session_secret=env["CHARTER_SESSION_SECRET"].encode()
            if env.get("CHARTER_SESSION_SECRET")
            else None,
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "charter"
