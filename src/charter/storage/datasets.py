"""Dataset registry tables: datasets and their immutable versions."""

from __future__ import annotations

from sqlalchemy.engine import Connection


class DatasetRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
