"""Web UI: how long the server takes to answer each page of a large store, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.bench_web [--quick]

Target (issue 7): pages stay fast on stores with thousands of versions and millions of
transactions — every list is paged in SQL (never all rows), a rollout's charts are one aggregate
query, the ledger pages by sequence.

Set-up (per backend): a model with V versions, a prompt with V versions, a dataset with V / 2
versions, a slot with a rollout in canary-micro (5 %) whose window holds N transaction records
(inserted with one INSERT … SELECT per million: baseline and candidate arms, three metrics; their
sums in `txn_moments` then computed from them, as migration 0004 does), and the
audit events all that wrote. The server app (`charter.api.app.create_app`, web UI included) runs
in a thread on loopback; each page is fetched once cold (`first_s`: the store's clock moved past
the 30 s for which a page reuses a rollout's gate verdict and charts), then R times more by a
signed-in viewer; the wall time of each request (loopback HTTP included) is recorded. Full run:
V = 2,000, N = 1,000,000, R = 15 (`--quick`: V = 60, N = 20,000, R = 3).
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bench_tracks import MODEL, POSTGRES, SLOT, _percentile, _store
from charter.clock import ManualClock

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the store's clock is a manual one, starting here

_COLUMNS = (
    "id, time, slot_id, release_id, arm, rollout_id, stage, table_version, stale, latency_ms, error, key, "
    "metrics, inputs, parent_id"
)
# three metrics that vary with the record's number (JSON text built by the database)
_METRICS = (
    """'{"quality":' || (0.78 + (x % 7) * 0.01) || ',"format_ok":' || '1.0,"cost":'"""
    """ || (0.010 + (x % 3) * 0.001) || '}'"""
)
# x: the record's number; its time is :base_ms + x * :step_ms; odd records are the candidate's
_FILL_SQLITE = f"""
    WITH RECURSIVE n(x) AS (
        SELECT :offset UNION ALL SELECT x + 1 FROM n WHERE x < :offset + :size - 1
    )
    INSERT INTO transactions ({_COLUMNS})
    SELECT printf('%08x-%04x-7000-8000-%012x', (:base + x * :step) >> 16, (:base + x * :step) & 65535, x),
           strftime('%Y-%m-%d %H:%M:%S', (:base + x * :step) / 1000, 'unixepoch')
             || printf('.%06d', ((:base + x * :step) % 1000) * 1000),
           :slot, CASE x % 2 WHEN 0 THEN :baseline ELSE :candidate END,
           CASE x % 2 WHEN 0 THEN 'baseline' ELSE 'candidate' END, :rollout, 'canary-micro', 2, 0, 1.5,
           NULL, 'k' || x,
           {_METRICS}, NULL, NULL
    FROM n
"""
_FILL_POSTGRES = f"""
    INSERT INTO transactions ({_COLUMNS})
    SELECT lpad(to_hex((:base + x * :step) >> 16), 8, '0') || '-'
             || lpad(to_hex((:base + x * :step) & 65535), 4, '0') || '-7000-8000-'
             || lpad(to_hex(x), 12, '0'),
           to_timestamp((:base + x * :step) / 1000.0),
           :slot, CASE x % 2 WHEN 0 THEN :baseline ELSE :candidate END,
           CASE x % 2 WHEN 0 THEN 'baseline' ELSE 'candidate' END, :rollout, 'canary-micro', 2, false, 1.5,
           NULL, 'k' || x,
           {_METRICS}, NULL, NULL
    FROM generate_series(CAST(:offset AS bigint), CAST(:offset AS bigint) + :size - 1) AS x
"""


def _setup(reg: Any, workdir: Path, versions: int, records: int) -> dict[str, Any]:
    """The large store (see the module docstring); returns what the pages need."""
    reg.users.add("vic", ["viewer"])
    began = time.perf_counter()
    for i in range(versions):
        reg.models.register("m", {**MODEL, "serving": {"temperature": 0.2, "max_tokens": 400 + i}})
    folder = workdir / "web-prompts"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(versions):
        (folder / "greet.prompt.yaml").write_text(
            f'name: greet\nmodel: m@1.0.0\nvariables:\n  who: string\ntemplate: "Hello {{{{ who }}}} #{i}"\n'
        )
        reg.prompts.sync(folder)
    table = workdir / "web-events.jsonl"
    lines = [json.dumps({"length": i % 50, "kind": f"k{i % 7}"}) + "\n" for i in range(500)]
    for i in range(versions // 2):  # each version appends a row: the chunks before it are reused
        lines.append(json.dumps({"length": i, "kind": "new"}) + "\n")
        table.write_text("".join(lines))
        reg.datasets.add("events", table, role="production-sample")
    reg.slots.create(SLOT)
    production = reg.releases.create(SLOT, model="m@1.0.0", prompts=["greet-v1"]).digest
    candidate = reg.releases.create(SLOT, model="m@1.0.0", prompts=["greet-v1"], params={"top_p": 0.9}).digest
    reg.slots.bootstrap(SLOT, release=production)
    reg.rollouts.start(SLOT, release=candidate, rollback_plan="charter slot rollback agent")
    reg.rollouts.advance(SLOT, override=True, reason="benchmark: skip shadow")
    setup_s = time.perf_counter() - began
    fill_s = _fill(reg, records)
    reg.clock.advance(timedelta(hours=6, minutes=1))  # the records are inside the stage's window
    with reg.store.read() as tx:
        events = tx.ledger.head()[0]
    return {"setup_s": round(setup_s, 1), "fill_s": round(fill_s, 1), "events": events}


def _fill(reg: Any, count: int) -> float:
    """`count` records of the active rollout over the six hours after its stage began, one INSERT …
    SELECT per million."""
    import sqlalchemy as sa

    with reg.store.read() as tx:
        slot = tx.slots.slot(SLOT)
        rollout = tx.rollouts.active_rollout(slot.id)
    began = time.perf_counter()
    start = datetime.fromisoformat(rollout.state["stage_entered_at"]) + timedelta(seconds=1)
    step_ms = max(1, int(6 * 3600 * 1000 / count))
    for offset in range(0, count, 1_000_000):
        size = min(1_000_000, count - offset)
        params = {"offset": offset, "size": size, "base": int(start.timestamp() * 1000), "step": step_ms,
                  "slot": slot.id, "baseline": rollout.baseline_id, "candidate": rollout.candidate_id,
                  "rollout": rollout.id}  # fmt: skip
        sql = _FILL_SQLITE if reg.store.dialect == "sqlite" else _FILL_POSTGRES
        with reg.store.engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    # the records went in by SQL, around insert_many: their sums are computed as migration 0004 does
    from charter.storage.txn_moments import rebuild

    with reg.store.engine.begin() as conn:
        rebuild(conn)
    if reg.store.dialect == "postgresql":
        with reg.store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE transactions")
            conn.exec_driver_sql("ANALYZE txn_moments")
    return time.perf_counter() - began


@contextmanager
def _server(settings: Any, clock: Any) -> Iterator[str]:
    import uvicorn

    from charter.api.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _pages(versions: int, txn: str) -> list[tuple[str, str]]:
    deep = max(versions - 30, 0)
    return [
        ("overview", "/"),
        ("models list", "/models"),
        (f"model versions, first page of {versions:,}", "/models/m"),
        (f"model versions, page at offset {deep:,}", f"/models/m?offset={deep}"),
        ("model version", "/models/m/1.0.5"),
        ("prompts list", "/prompts"),
        (f"prompt versions, first page of {versions:,}", "/prompts/greet"),
        (f"prompt versions, page at offset {deep:,}", f"/prompts/greet?offset={deep}"),
        ("prompt version", f"/prompts/greet/{versions}"),
        ("prompt diff", f"/prompts/greet/diff?a=1&b={versions}"),
        (f"dataset versions, first page of {versions // 2:,}", "/datasets/events"),
        ("rollout page (gate now + charts over every record)", f"/slots/{SLOT}"),
        ("audit, newest page", "/audit"),
        ("audit, page before event 100", "/audit?before=100"),
        ("audit, filtered by action", "/audit?action=model.*"),
        ("trace", f"/trace?id={txn}"),
        ("state now", f"/state?slot={SLOT}"),
    ]


def _measure(
    base: str, token: str, pages: list[tuple[str, str]], runs: int, clock: Any
) -> list[dict[str, Any]]:
    import httpx

    from charter.web.site import LIVE_SECONDS

    client = httpx.Client(base_url=base, timeout=120)
    assert client.get("/signin", params={"token": token}).status_code in (200, 303)
    client.get("/")  # imports, compiled templates
    rows = []
    for name, path in pages:
        clock.advance(timedelta(seconds=LIVE_SECONDS))  # nothing reused: the first fetch is cold
        began = time.perf_counter()
        response = client.get(path)
        first = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            client.get(path)
            samples.append(time.perf_counter() - began)
        ordered = sorted(samples)
        rows.append(
            {
                "name": name,
                "median_s": statistics.median(ordered),
                "p99_s": _percentile(ordered, 0.99),
                "runs": runs,
                "first_s": first,
                "bytes": len(response.content),
            }
        )
    return rows


def _backend(workdir: Path, backend: str, quick: bool) -> list[dict[str, Any]]:
    versions, records, runs = (60, 20_000, 3) if quick else (2_000, 1_000_000, 15)
    with _store(workdir, backend, folder="web", clock=ManualClock(START)) as admin:
        sizes = _setup(admin, workdir, versions, records)
        with admin.transaction(SLOT, key="traced") as txn:
            txn.record(quality=0.8)
        admin.flush()
        token = admin.tokens.create_signin_link("vic").secret  # /signin takes a one-time link
        with _server(admin.settings, admin.clock) as base:
            rows = _measure(base, token, _pages(versions, txn.id), runs, admin.clock)
    note = f"{versions:,} model and prompt versions, {records:,} records, {sizes['events']:,} audit events"
    for row in rows:
        row["name"] = f"{backend}: {row['name']}"
    rows[0].update(store=note, setup_s=sizes["setup_s"], fill_s=sizes["fill_s"])
    return rows


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    rows = _backend(workdir, "sqlite", quick)
    try:
        import psycopg

        psycopg.connect(POSTGRES.replace("postgresql+psycopg://", "postgresql://")).close()
    except Exception as exc:
        rows.append({"name": "postgresql", "skipped": f"not reachable: {exc}"})
        return rows
    rows.extend(_backend(workdir, "postgresql", quick))
    return rows


if __name__ == "__main__":
    for row in run(Path(__file__).resolve().parent / ".work", "--quick" in sys.argv):
        print(json.dumps(row, default=str))
