"""Configuration: the only module that reads the process environment."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
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
            settings = cls(settings.home, settings.database_url, blob_url, settings.user)
        return settings


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "charter"
