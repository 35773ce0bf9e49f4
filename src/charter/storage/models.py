"""Model registry tables: models, versions, aliases, evaluations, sign-offs, promotions."""

from __future__ import annotations

from sqlalchemy.engine import Connection


class ModelRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
