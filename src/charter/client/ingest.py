"""`ingest` in remote mode: transaction records sent to the server in batches.

The lines of the file (or the lines given) are sent as they are, as JSON Lines, in batches of as
many records as the embedded ingest stores in one transaction (`INGEST_BATCH`), so a batch is
stored all or nothing exactly as it would be embedded, and its first line's number travels with it
so that a refusal names the line of the file. The server validates and stores each batch with the
embedded code (`charter.service.ingest`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from charter.client.blobs import Remote
    from charter.service.ingest import IngestReport

MAX_BATCH_BYTES = 32 * 1024 * 1024  # below the server's limit for one batch


def ingest(remote: Remote, slot: str, source: str | Path | Iterable[str]) -> IngestReport:
    """Load records from a JSONL file (or lines) into `slot`; see docs/rollouts.md for the schema."""
    from charter.service.ingest import IngestReport, record_lines

    started = time.perf_counter()
    sender = BatchSender(remote, slot)
    with record_lines(source) as lines:
        sender.send_lines(lines)
    return IngestReport(
        slot,
        sender.loaded,
        sender.inserted,
        sender.loaded - sender.inserted,
        sender.by_arm,
        time.perf_counter() - started,
    )


class BatchSender:
    """Cuts lines into batches and posts each to `/slots/SLOT/transactions`; keeps the totals."""

    def __init__(self, remote: Remote, slot: str) -> None:
        from charter.service.ingest import INGEST_BATCH

        self.remote = remote
        self.where = f"/slots/{quote(slot, safe='')}/transactions"
        self.batch_records = INGEST_BATCH
        self.next_line = 1
        self.loaded = self.inserted = 0
        self.by_arm: dict[str, int] = {}

    def send_lines(self, lines: Iterable[str]) -> None:
        batch: list[str] = []
        records = size = 0
        for line in lines:
            text = line.rstrip("\r\n")
            if "\n" in text or "\r" in text:  # white space between JSON tokens: one line on the wire
                text = text.replace("\r", " ").replace("\n", " ")
            batch.append(text)
            size += len(text) + 1
            if text.strip():
                records += 1
                if records >= self.batch_records or size >= MAX_BATCH_BYTES:
                    self.send(batch, records)
                    batch, records, size = [], 0, 0
        self.send(batch, records)

    def send(self, batch: list[str], records: int) -> dict[str, Any] | None:
        """Post one batch (lines as read; `records` of them not blank); None if it holds no record."""
        first = self.next_line
        self.next_line += len(batch)
        if not records:
            return None
        response = self.remote.request(
            "POST",
            self.where,
            params={"first_line": first, "loaded": self.loaded},
            content="\n".join(batch).encode("utf-8"),
            headers={"Content-Type": "application/x-ndjson"},
        )
        counts: dict[str, Any] = response.json()
        self.loaded += int(counts["lines"])
        self.inserted += int(counts["inserted"])
        for arm, n in counts["by_arm"].items():
            self.by_arm[arm] = self.by_arm.get(arm, 0) + int(n)
        return counts
