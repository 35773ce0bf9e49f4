"""The transaction a request is being served in, for code that is not handed it.

`with reg.transaction(...) as txn:` makes `txn` the current transaction of the thread (or asyncio
task) for the block. When `reg.prompts.get` has to serve the last version it knew because the
store or server cannot be reached, it marks the current transaction, and the record is stored
with `stale` set: the request's provenance shows it was served from a fallback. Kept apart from
the recorder so the prompt services, embedded and remote, can import it without the recorder's
dependencies.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

CURRENT: ContextVar[Any] = ContextVar("charter_transaction", default=None)


def note_fallback() -> None:
    """Mark the current transaction, if any, as served (in part) from a fallback."""
    txn = CURRENT.get()
    if txn is not None:
        txn.fallback = True
