"""`charter server` (being built)."""

from __future__ import annotations


def server() -> None:
    """(being built)"""
