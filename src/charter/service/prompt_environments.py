"""The prompt environments in force: their order (the `environments` policy) and pointers in it."""

from __future__ import annotations

from collections.abc import Mapping

from charter.service.policies import current_policy
from charter.storage.store import Tx


def environment_order(tx: Tx) -> list[str]:
    """development → staging → production, or the order the policy sets."""
    order: list[str] = current_policy(tx).section("environments")["order"]
    return order


def in_order(pointers: Mapping[str, int], order: list[str]) -> list[tuple[str, int]]:
    """Environment pointers in the policy's order (environments no longer in it last, by name)."""
    rank = {env: i for i, env in enumerate(order)}
    return sorted(pointers.items(), key=lambda item: (rank.get(item[0], len(order)), item[0]))
