"""`reg.prompts` against a server: the embedded SDK's cache and fallback, over HTTP.

`get(ref)` is what an application calls on its serving path, so, as embedded
(`charter.service.prompts`), results are kept in-process for `cache_ttl` seconds (default 30):
within it `get` sends nothing. After it the version is fetched again (one small GET). When the
server cannot be reached — no connection, a time-out, or the server answering that its own store
is unavailable (503) — `get` serves the last version it knew for that reference, marked
`fallback=True` (and logs a warning on the `charter.prompts` logger), and the transaction being
served, if any, is recorded with `stale` set (`charter.service.txn_context`); with nothing known
for the reference it raises `StoreUnavailable`. Every other method is the plain remote operation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.errors import InvalidInput, StoreUnavailable
from charter.service.txn_context import note_fallback

if TYPE_CHECKING:
    from charter.service.prompt_version import PromptVersion

log = logging.getLogger("charter.prompts")

DEFAULT_CACHE_TTL_S = 30.0  # the embedded SDK's default too
DEFAULT_CACHE_SIZE = 4096


class _Entry:
    __slots__ = ("expires", "value")

    def __init__(self, value: PromptVersion, expires: float) -> None:
        self.value, self.expires = value, expires


class RemotePrompts:
    """The prompt service of a `RemoteRegistry`: `get` cached with a TTL and a fallback; the rest
    delegated to `operations` (the generated remote operations of the `prompts` service)."""

    def __init__(
        self,
        operations: Any,
        *,
        cache_ttl: float = DEFAULT_CACHE_TTL_S,
        cache_size: int = DEFAULT_CACHE_SIZE,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._operations = operations
        self.cache_ttl, self.cache_size, self._timer = cache_ttl, cache_size, timer
        self._cache: dict[str, _Entry] = {}

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return getattr(self._operations, method)

    def get(self, ref: str, *, at: datetime | None = None) -> PromptVersion:
        """A version by `name-vN`, `name@N`, `name@ENV` or `name` (the latest); with `at`, the one
        the reference named at that time (never cached: the server answers). Cached for
        `cache_ttl` seconds; when the server cannot be reached, the last version known for `ref`
        is returned with `fallback=True`."""
        if at is not None:
            return self._operations.get(ref, at=at)  # type: ignore[no-any-return]
        entry = self._cache.get(ref)
        if entry is not None and self._timer() < entry.expires:
            return entry.value
        try:
            value: PromptVersion = self._operations.get(ref)
        except StoreUnavailable as exc:
            reason = str(exc.details.get("reason") or exc.message)
            if entry is None:
                raise StoreUnavailable(f"prompt {ref}", reason) from None
            log.warning("the server is unreachable (%s); serving the last known %s", reason, entry.value.ref)
            note_fallback()  # the request being served, if any, records it (`stale`)
            return entry.value.marked(environment=entry.value.environment, fallback=True)
        if ref not in self._cache and len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[ref] = _Entry(value, self._timer() + self.cache_ttl)
        return value

    def configure_cache(self, *, ttl: float | None = None, size: int | None = None) -> None:
        if ttl is not None:
            if ttl < 0:
                raise InvalidInput(f"a cache TTL is ≥ 0 seconds, not {ttl}")
            self.cache_ttl = ttl
            for entry in self._cache.values():
                entry.expires = 0.0  # ask again; kept for the fallback
        if size is not None:
            if size < 1:
                raise InvalidInput(f"a cache holds at least 1 entry, not {size}")
            self.cache_size = size

    def clear_cache(self) -> None:
        self._cache.clear()

    def __repr__(self) -> str:
        return f"<remote prompts (cached {len(self._cache)}) via {self._operations!r}>"
