"""A slot's recorded production inputs as a drift source: `charter dataset drift TRAIN@N --against
slot:NAME` (or `slot:NAME@SINCE`, an ISO 8601 time: only inputs recorded since then).

Transaction records carry the request's input features for the share of requests set by the
`drift` policy's `input_sample_rate`; this source reads the most recent ones (at most
`MAX_ROWS`) of a slot's served requests and hands them to the drift engine as one record batch.
Registered under the `slot:` prefix of `charter.service.datasets.DRIFT_SOURCES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain.times import parse_time
from charter.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from charter.service.registry import Registry

MAX_ROWS = 200_000


@dataclass(frozen=True)
class SlotInputs:
    registry: Registry
    slot: str
    since: datetime | None

    def describe(self) -> str:
        return f"slot:{self.slot}" + ("" if self.since is None else f" since {self.since.isoformat()}")

    def read(self) -> tuple[dict[str, str], list[pa.RecordBatch]]:
        import pyarrow as pa

        from charter.data.tabular import type_name

        rows = self.registry.slots.inputs(self.slot, since=self.since, limit=MAX_ROWS)
        if not rows:
            raise InvalidInput(
                f"{self.describe()} has no recorded inputs; applications record them with "
                "`txn.record(inputs={...})`, sampled at the drift policy's input_sample_rate"
            )
        try:
            table = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(
                f"the inputs recorded on {self.describe()} do not form one table: {exc}"
            ) from None
        return {f.name: type_name(f.type) for f in table.schema}, table.to_batches()


def slot_inputs(registry: Registry, text: str) -> Any:
    """The factory `DRIFT_SOURCES["slot:"]` calls with what follows the prefix: NAME[@SINCE]."""
    name, _, since = text.partition("@")
    return SlotInputs(registry, name, parse_time(since) if since else None)
