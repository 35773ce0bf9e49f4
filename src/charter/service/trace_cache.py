"""What `trace` keeps between calls, and which audit events make it forget what.

Every state change appends an audit event whose subject names what changed (`slot:agent`,
`model:m@1.0.0`, `prompt:summarize-v3`, `dataset:tickets@2`, `user:sam`, …). Each memo entry is
tagged with the subjects its answer depends on. When the ledger head has moved, the events appended
since the memo's head are read (one range read of the ledger's primary key) and only the entries
whose tags they touch are dropped:

| event                                                   | touches                                    |
|---------------------------------------------------------|--------------------------------------------|
| `user.*`, `token.*` on `user:NAME`                      | the authorisation of NAME                  |
| `slot.*`, `release.created`, `rollout.*`, `incident.*`  | the slot's production periods and rollouts |
| `rollout.complete`                                      | also every release chain (the rollout      |
|                                                         | records production metrics on the model    |
|                                                         | and prompt versions it promoted)           |
| `model.*` on `model:NAME[@X.Y.Z]`                       | chains whose model is NAME (any version)   |
| `prompt.*` on `prompt:NAME[-vN]`                        | chains with a version of prompt NAME       |
| `dataset.*` on `dataset:NAME[@N]`                       | chains naming a version of dataset NAME    |
| `policy.applied`, `webhook.*`, `blobs.collected`,       | nothing a trace shows                      |
| `ledger.checkpointed`                                   |                                            |
| anything else                                           | everything                                 |

Everything is dropped, too, when more than `GAP` events were appended since, when the acting user
changes, and when the event the memo was read at is no longer in the ledger as it was (a store
replaced under a running process). A release's own record, and its model version's spec, ref and
digest (all a trace shows of it), are immutable and stay until then.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from charter.storage.ledger import Ledger

GAP = 1000  # more events than this since the memo's head: drop everything rather than read them
MEMO_SIZE = 4096  # entries kept (releases, their chains, periods, rollouts); beyond: start again
CHAINS = "*chains"  # the tag every release chain carries
MISSING = object()  # `peek`: no such entry
T = TypeVar("T")

_NOTHING = frozenset({"policy.applied", "webhook.added", "webhook.removed", "blobs.collected",
                      "ledger.checkpointed"})  # fmt: skip
_SLOT_ACTIONS = ("slot.", "release.", "rollout.", "incident.")
_PROMPT_VERSION = re.compile(r"-v[0-9]+$")


def touched(action: str, subject: str) -> frozenset[str] | None:
    """The tags an audit event touches; None: every entry (an event this table does not know)."""
    if action in _NOTHING:
        return frozenset()
    scope, _, name = subject.partition(":")
    kind = action.partition(".")[0]
    if scope == "user" and kind in ("user", "token"):
        return frozenset({subject})
    if scope == "slot" and action.startswith(_SLOT_ACTIONS):
        return frozenset({subject, CHAINS}) if action == "rollout.complete" else frozenset({subject})
    if scope == kind and kind in ("model", "dataset"):
        return frozenset({subject, f"{scope}:{name.partition('@')[0]}"})
    if scope == kind == "prompt":
        return frozenset({subject, f"prompt:{_PROMPT_VERSION.sub('', name)}"})
    return None


class TraceMemo:
    """Entries with the tags they depend on, valid as of ledger event `head`. Safe to share between
    threads (the server keeps one registry per user): an entry read by a trace is kept only if the
    memo is still at the head that trace caught up to, so an entry read from an older snapshot
    never outlives the events that superseded it."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self.head: tuple[int, str] | None = None  # (sequence, hash) of the event read at
        self.actor: str | None = None
        self._entries: dict[Hashable, Any] = {}
        self._tagged: dict[str, set[Hashable]] = {}
        self._lock = threading.Lock()

    def catch_up(self, ledger: Ledger, actor: str) -> tuple[int, str]:
        """Forget what the events since the memo's head touched (everything, if there are more than
        `GAP`, if the actor changed or if the head event is not as it was). Call it first in a read
        transaction, so everything read after it is at least as new as the head it returns."""
        with self._lock:
            if self.head is not None and actor == self.actor:
                events = ledger.changes_from(self.head[0], GAP + 2)
                if events and events[0][:2] == self.head and len(events) <= GAP + 1:
                    for _, _, action, subject in events[1:]:
                        tags = touched(action, subject)
                        if tags is None:
                            self._clear()
                        else:
                            self._forget(tags)
                    self.head = events[-1][:2]
                    return self.head
            self._clear()
            self.actor, self.head = actor, ledger.head()
            return self.head

    def get(
        self, key: Hashable, compute: Callable[[], tuple[T, Iterable[str] | None]], head: tuple[int, str]
    ) -> T:
        """The entry for `key`; if absent, `compute()` → (value, tags), kept unless tags is None or
        the memo has moved on from `head` (what `catch_up` returned to this caller) meanwhile."""
        found = self.peek(key)
        if found is not MISSING:
            return found  # type: ignore[no-any-return]
        value, tags = compute()
        return self.keep(key, value, tags, head)

    def peek(self, key: Hashable) -> Any:
        """The entry for `key`, or `MISSING`."""
        with self._lock:
            return self._entries.get(key, MISSING)

    def keep(self, key: Hashable, value: T, tags: Iterable[str] | None, head: tuple[int, str]) -> T:
        """Keep `value` for `key` with its tags (not if tags is None, or if the memo has moved on
        from `head` since the caller caught up); returns `value`."""
        if tags is not None:
            with self._lock:
                if self.head == head:
                    if len(self._entries) >= self.size:
                        self._clear()
                    self._entries[key] = value
                    for tag in tags:
                        self._tagged.setdefault(tag, set()).add(key)
        return value

    def _forget(self, tags: Iterable[str]) -> None:
        for tag in tags:
            for key in self._tagged.pop(tag, ()):
                self._entries.pop(key, None)

    def _clear(self) -> None:
        self._entries.clear()
        self._tagged.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries
