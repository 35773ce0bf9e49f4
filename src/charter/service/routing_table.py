"""The server's half of routing and recording in remote mode.

An application routes in its own process (`charter.client.routing.RemoteRouter`): it fetches a
slot's routing table once — the table itself, the releases it can hand out (model version,
prompt versions) and the input sample rate — and then decides locally. It asks again now and
then with the table's entity tag; while the slot's routing version and the sample rate are
unchanged, the answer is "not modified" without the releases being read. Transaction records
come back in batches of JSON Lines (`ingest_batch`), validated and stored like `charter txn
ingest`. Both need the service role (route and record), as embedded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from charter.domain.roles import Action
from charter.service.access import authorize
from charter.service.ingest import ingest_lines
from charter.service.releases import require_slot, served_release
from charter.service.router import require_table, sample_rate

if TYPE_CHECKING:
    from charter.service.registry import Registry


def routing_snapshot(
    registry: Registry, slot: str, known: Iterable[str] = ()
) -> tuple[str, dict[str, Any] | None]:
    """(entity tag, document) of the slot's routing table; the document is None when the tag is
    among `known` (the client's copy is current)."""
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.ROUTE)
        record = require_slot(tx, slot)
        rate = sample_rate(tx)
        tag = f'"{record.id}.{record.routing_version}.{rate!r}"'
        if tag in set(known):
            return tag, None
        table = require_table(tx, record)
        digests = [table.production] + ([table.candidate] if table.candidate else [])
        releases = []
        for digest in digests:
            found = tx.slots.release_by_digest(digest)
            assert found is not None  # a routing table names releases of its slot
            served = served_release(tx, found)
            # Result objects: the API renders them as their public JSON, or for the remote client
            # (which rebuilds them) as their field encoding.
            releases.append(
                {
                    "release": served.release,
                    "model": served.model,
                    "prompts": list(served.prompts.values()),
                }
            )
    return tag, {"table": table.as_dict(), "input_sample_rate": rate, "releases": releases}


def ingest_batch(
    registry: Registry, slot: str, lines: Iterable[str], *, first_line: int = 1, loaded: int = 0
) -> dict[str, Any]:
    """Validate and store one batch of transaction records (JSON Lines), all or nothing; the
    counts: lines (records), inserted (the rest were already stored), per arm."""
    counts = ingest_lines(registry, slot, lines, first_line=first_line, loaded=loaded)
    return {"lines": counts.lines, "inserted": counts.inserted, "by_arm": counts.by_arm or {}}
