"""`charter report` (being built)."""

from __future__ import annotations


def report() -> None:
    """(being built)"""
