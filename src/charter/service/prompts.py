"""Prompt library use cases."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter.service.registry import Registry


class PromptService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
