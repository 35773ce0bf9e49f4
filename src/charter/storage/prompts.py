"""Prompt library tables: prompts, versions, environment pointers and their moves, validations."""

from __future__ import annotations

from sqlalchemy.engine import Connection


class PromptRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
