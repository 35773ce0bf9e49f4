"""The charter server under HTTP load, against an MLflow tracking server in the same run.

    .venv/bin/python -m bench.bench_server [--quick]

Targets (issue 6): resolving a production pointer over HTTP at ≥ 1,000 requests/s with a p99
≤ 10 ms, the load generator on the same machine; batched transaction ingest over HTTP at
≥ 30,000 records/s.

Set-up per backend (SQLite in a temporary CHARTER_HOME; PostgreSQL in a database of our own on
postgresql://postgres@127.0.0.1:5432, dropped afterwards): `support-llm@1.0.0` promoted to
production through the gate (as in bench_models), a slot with a bootstrapped release for ingest,
and an API token of the admin user. Each server is `charter server --port P --workers N
--no-jobs` in its own process group, stopped (the whole group) when its measurement ends.

- **Pointer resolution**: `GET /api/v1/model-versions/support-llm@production` with a bearer
  token, 16 keep-alive connections from 2 wrk threads; a 5 s warm-up, then 3 runs of 15 s, each
  figure the median over the runs. Closed loop: each connection sends its next request when the
  previous answer is in, so this finds the throughput at that concurrency (and a latency that is
  mostly queueing: 16 connections at R requests/s wait about 16/R s each).
- **Paced at 1,000 requests/s**: the same 16 connections, but requests leave on a schedule of
  1,000 per second (wrk's `delay()` hook hands out send times; a free connection waits for the
  next one), which is the target as stated: the latency while serving 1,000 requests/s. Latency
  is timed from the actual send, so a request that waited for a free connection does not count
  its wait (with 16 connections that matters only once the server falls behind). 3 runs of 10 s.
- **MLflow**: `mlflow server` (its own virtualenv, `bench/.work/mlflow-venv`) on a SQLite backend
  with the same number of workers, a registered model version with the alias `production`, and
  `GET /api/2.0/mlflow/registered-models/alias?name=support-llm&alias=production` under the same
  closed-loop load. Like charter's `--no-jobs`, MLflow's background job processes are off
  (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: otherwise its huey consumers poll the database and
  take CPU from the server), and neither server writes an access log.
- **Ingest**: 200,000 records (JSON Lines as `charter txn ingest` reads them, generated here)
  sent with `RemoteRegistry(url, token).ingest(slot, path)` to a 1-worker server; 3 runs, the
  median rate, and the embedded `reg.ingest` of the same file into the same store for reference.

`server_cpu_ms_per_request` is the CPU time (user + system, every server process) divided by the
requests answered — steadier than throughput on a shared machine. `--quick` is a smoke test:
short runs, one worker, 20,000 records, no MLflow.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bench_models import MLFLOW_REQUIREMENT, _postgres_database, _promote_one
from bench.httpload import Load, Probe, free_port, generate, generator, group_cpu_s, load_average, serving

MODEL, ALIAS, SLOT = "support-llm", "production", "agent"
CONNECTIONS, THREADS = 16, 2
PACED_RATE = 1_000
POINTER_TARGET = "≥ 1,000 requests/s with p99 ≤ 10 ms"
INGEST_TARGET = "≥ 30,000 records/s"


@dataclass(frozen=True)
class Plan:
    warmup_s: float
    run_s: float
    paced_s: float
    runs: int
    workers: tuple[int, ...]
    records: int

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(1, 3, 2, 1, (1,), 20_000)
        return cls(5, 15, 10, 3, (1, 2), 200_000)


@dataclass(frozen=True)
class Store:
    backend: str
    env: dict[str, str]
    token: str
    release: str


def _charter_store(folder: Path, backend: str, database_url: str | None) -> Store:
    from charter.config import Settings
    from charter.service.setup import init_store, open_registry

    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings.for_home(folder / "home", user="bench", database_url=database_url)
    init_store(settings)
    with open_registry(settings) as registry:
        _promote_one(registry, folder)
        registry.slots.create(SLOT)
        release = registry.releases.create(SLOT, model=f"{MODEL}@1.0.0").digest
        registry.slots.bootstrap(SLOT, release=release)
        token = registry.tokens.create("bench", name="benchmark").secret
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update(CHARTER_HOME=str(folder / "home"), CHARTER_USER="bench")
    if database_url is not None:
        env["CHARTER_DATABASE_URL"] = database_url
    return Store(backend, env, token, release)


@contextmanager
def _charter_server(store: Store, workers: int, folder: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "charter", "server", "--port", str(port), "--workers", str(workers)]
    command += ["--no-jobs", "--log-level", "warning"]
    probe = Probe(_pointer_url(base), {"Authorization": f"Bearer {store.token}"}, f'"{MODEL}@1.0.0"')
    log = folder / f"server-{store.backend}-{workers}.log"
    with serving(command, store.env, probe, log) as group:
        yield base, group


def _pointer_url(base: str) -> str:
    return f"{base}/api/v1/model-versions/{MODEL}@{ALIAS}"


def _measure(url: str, token: str | None, group: int, plan: Plan, *, paced: bool = False) -> dict[str, Any]:
    """Medians over `plan.runs` runs after a warm-up; CPU of the server's process group per request."""
    rate = PACED_RATE if paced else 0.0
    seconds = plan.paced_s if paced else plan.run_s
    generate(url, token, plan.warmup_s, connections=CONNECTIONS, threads=THREADS, rate=rate)
    loads: list[Load] = []
    cpu: list[float] = []
    for _ in range(plan.runs):
        before = group_cpu_s(group)
        load = generate(url, token, seconds, connections=CONNECTIONS, threads=THREADS, rate=rate)
        cpu.append((group_cpu_s(group) - before) / max(load.requests, 1))
        loads.append(load)
    return {
        "requests_per_s": statistics.median(x.per_s for x in loads),
        "p50_s": statistics.median(x.p50_s for x in loads),
        "p99_s": statistics.median(x.p99_s for x in loads),
        "requests_per_s_runs": "/".join(f"{x.per_s:.0f}" for x in loads),
        "server_cpu_ms_per_request": statistics.median(cpu) * 1000,
        "errors": sum(x.errors for x in loads),
        "runs": plan.runs,
        "run_s": seconds,
        "load_avg_1m_5m": load_average(),
    }


def _met(row: dict[str, Any]) -> bool:
    return bool(row["requests_per_s"] >= 1000 * 0.98 and row["p99_s"] <= 0.010 and not row["errors"])


def _pointer_rows(store: Store, plan: Plan, folder: Path, load_by: str) -> list[dict[str, Any]]:
    rows = []
    for workers in plan.workers:
        with _charter_server(store, workers, folder) as (base, group):
            url = _pointer_url(base)
            closed = _measure(url, store.token, group, plan)
            paced = _measure(url, store.token, group, plan, paced=True)
        setting = f"{store.backend}, {workers} worker{'s' if workers > 1 else ''}"
        load = {"connections": CONNECTIONS, "threads": THREADS, "generator": load_by}
        rows.append({"name": f"server: GET model-versions/NAME@production, {setting}", **closed, **load})
        rows.append(
            {
                "name": f"server: the same, paced at {PACED_RATE:,} requests/s offered, {setting}",
                **paced,
                **load,
                "target": POINTER_TARGET,
                "target_met": _met(paced),
            }
        )
    return rows


def _ingest_file(path: Path, release: str, count: int) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1)
    rng = random.Random(11)
    with path.open("w") as out:
        for i in range(count):
            record = {
                "time": (start + timedelta(microseconds=i * 10)).isoformat(),
                "release": release[:12],
                "key": f"k{i}",
                "latency_ms": round(rng.uniform(50, 900), 1),
                "metrics": {"quality": round(rng.gauss(0.8, 0.05), 4), "format_ok": 1, "cost": 0.01},
            }
            out.write(json.dumps(record) + "\n")


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def _ingest_rows(store: Store, plan: Plan, folder: Path) -> list[dict[str, Any]]:
    from charter.client.remote import RemoteRegistry

    path = folder / f"ingest-{store.backend}.jsonl"
    _ingest_file(path, store.release, plan.records)
    size_mb = path.stat().st_size / 1e6
    remote_s = []
    with _charter_server(store, 1, folder) as (base, _group):
        for _ in range(plan.runs):
            with RemoteRegistry(base, store.token) as remote:
                seconds, report = _timed(lambda: remote.ingest(SLOT, path))
            _check_loaded(report, plan.records)
            remote_s.append(seconds)
    from charter.config import Settings
    from charter.service.setup import open_registry

    settings = Settings.from_env(store.env)
    with open_registry(settings) as registry:
        embedded_s, report = _timed(lambda: registry.ingest(SLOT, path))
        _check_loaded(report, plan.records)
    path.unlink()
    median = statistics.median(remote_s)
    return [
        {
            "name": f"server: batched ingest over HTTP (RemoteRegistry.ingest), {store.backend}",
            "records_per_s": plan.records / median,
            "median_s": median,
            "records": plan.records,
            "file_mb": round(size_mb, 1),
            "runs": plan.runs,
            "records_per_s_runs": "/".join(f"{plan.records / s:.0f}" for s in remote_s),
            "embedded_records_per_s": plan.records / embedded_s,
            "target": INGEST_TARGET,
            "target_met": plan.records / median >= 30_000,
            "load_avg_1m_5m": load_average(),
        }
    ]


def _check_loaded(report: Any, expected: int) -> None:
    counts = report.as_dict() if hasattr(report, "as_dict") else dict(report)
    loaded = counts.get("inserted", counts.get("lines"))
    if loaded != expected:
        raise RuntimeError(f"ingest loaded {loaded} records, expected {expected}: {counts}")


_MLFLOW_SETUP = """
import sys, mlflow
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
client.create_registered_model(sys.argv[2])
version = client.create_model_version(sys.argv[2], source="s3://models/support-llm/1", run_id=None)
client.set_registered_model_alias(sys.argv[2], sys.argv[3], version.version)
print(mlflow.__version__)
"""


def _mlflow_venv(workdir: Path) -> Path:
    venv = workdir.resolve() / "mlflow-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", MLFLOW_REQUIREMENT], check=True)
    return venv


def _mlflow_rows(workdir: Path, plan: Plan, folder: Path, load_by: str) -> list[dict[str, Any]]:
    venv = _mlflow_venv(workdir)
    home = folder.resolve() / "mlflow"
    home.mkdir(parents=True)
    database = f"sqlite:///{home / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "GIT_PYTHON_REFRESH": "quiet"}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # like charter's --no-jobs: no job processes
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _MLFLOW_SETUP, database, MODEL, ALIAS],
        cwd=home, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()[-1]  # fmt: skip
    rows = []
    for workers in plan.workers:
        port = free_port()
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias={ALIAS}"
        command = [str(venv / "bin" / "mlflow"), "server", "--backend-store-uri", database]
        command += ["--default-artifact-root", str(home / "artifacts"), "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers)]
        command += ["--uvicorn-opts", "--log-level warning --no-access-log"]  # as quiet as charter's
        probe = Probe(url, {}, '"production"')
        with serving(command, env, probe, folder / f"mlflow-{workers}.log") as group:
            measured = _measure(url, None, group, plan)
        rows.append(
            {
                "name": f"mlflow {version}: GET registered-models/alias, SQLite, {workers} "
                f"worker{'s' if workers > 1 else ''}",
                **measured,
                "connections": CONNECTIONS,
                "threads": THREADS,
                "generator": load_by,
            }
        )
    return rows


def _compare(rows: list[dict[str, Any]]) -> None:
    """charter/MLflow ratios on the MLflow rows (same workers, both on SQLite)."""
    for row in rows:
        if not row["name"].startswith("mlflow"):
            continue
        workers = row["name"].rpartition(", ")[2]
        ours = next(
            r for r in rows if r["name"] == f"server: GET model-versions/NAME@production, SQLite, {workers}"
        )
        row["charter_throughput_ratio"] = round(ours["requests_per_s"] / row["requests_per_s"], 1)
        row["charter_p99_ratio"] = round(row["p99_s"] / ours["p99_s"], 1)


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    plan = Plan.of(quick)
    load_by = generator()
    folder = workdir.resolve() / f"server-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    try:
        store = _charter_store(folder / "sqlite", "SQLite", None)
        rows += _pointer_rows(store, plan, folder, load_by)
        rows += _ingest_rows(store, plan, folder)
        with _postgres_database() as url:
            if url is not None:
                store = _charter_store(folder / "postgresql", "PostgreSQL", url)
                rows += _pointer_rows(store, plan, folder, load_by)
                rows += _ingest_rows(store, plan, folder)
        if not quick:
            rows += _mlflow_rows(workdir, plan, folder, load_by)
            _compare(rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(Path(__file__).resolve().parent / ".work", "--quick" in sys.argv):
        print(json.dumps(row, default=str), flush=True)
