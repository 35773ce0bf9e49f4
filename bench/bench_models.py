"""Registry reads: `reg.models.get("m@production")` in-process, against MLflow resolving an alias.

    python -m bench.bench_models [--quick]

charter is measured on SQLite (the embedded default) and, when it is reachable, on PostgreSQL
(postgresql://postgres@127.0.0.1:5432/test is used only to create and drop a database of our own).
The model gets to production the real way: a dataset snapshot, an evaluation, a sign-off by a
second user, the promotion gate. Besides the median of repeated reads (the serving path), the
first read after a change is reported too: each change moves the ledger head and empties the
read cache.

MLflow 3.x is installed into its own virtualenv (`bench/.work/mlflow-venv`, never a project
dependency) and resolves a registered model's alias with `MlflowClient.get_model_version_by_alias`
on a SQLite tracking store, in the same run. `--quick` skips MLflow and reads fewer times.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POSTGRES = os.environ.get("CHARTER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MLFLOW_REQUIREMENT = "mlflow>=3,<4"
SPEC = {
    "family": "gpt-4o",
    "provider": "openai",
    "provider_model": "gpt-4o-2024-08-06",
    "serving": {"temperature": 0.2, "max_tokens": 512},
    "primary_metrics": {"accuracy": "higher"},
}


def _timings(call: Callable[[], object], runs: int) -> list[float]:
    samples = []
    clock = time.perf_counter
    for _ in range(runs):
        started = clock()
        call()
        samples.append(clock() - started)
    return samples


def _row(name: str, samples: list[float], **notes: Any) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "name": name,
        "median_s": statistics.median(ordered),
        "p99_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "runs": len(samples),
        **notes,
    }


def _promote_one(registry: Any, folder: Path) -> None:
    """support-llm@1.0.0 into production through the gate, as a team would."""
    golden = folder / "golden.csv"
    golden.write_text("id,question,answer\n" + "".join(f"{i},q{i},a{i}\n" for i in range(200)))
    registry.users.add("reviewer", ["reviewer"])
    dataset = registry.datasets.add("golden", golden, role="holdout").version.ref
    version = registry.models.register("support-llm", SPEC).ref
    registry.models.eval(version, dataset=dataset, metrics={"accuracy": 0.91})
    registry.as_user("reviewer").models.signoff(version, note="benchmark")
    registry.models.promote(version, rollback_plan="serve the previous release")


def _charter(folder: Path, database_url: str | None, runs: int, backend: str) -> list[dict[str, Any]]:
    from charter.config import Settings
    from charter.service.setup import init_store, open_registry

    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings.for_home(folder / "home", user="bench", database_url=database_url)
    init_store(settings)
    with open_registry(settings) as registry:
        _promote_one(registry, folder)
        get = registry.models.get
        assert get("support-llm@production").ref == "support-llm@1.0.0"
        _timings(lambda: get("support-llm@production"), 200)  # warm up
        steady = _timings(lambda: get("support-llm@production"), runs)
        after_change = []
        for i in range(max(20, runs // 500)):
            registry.models.set_primary_metrics("support-llm", {"accuracy": "higher", f"m{i % 2}": "lower"})
            after_change += _timings(lambda: get("support-llm@production"), 1)
    target = {"target": "≤ 100 µs"} if backend == "SQLite" else {}
    return [
        _row(f"models: get(name@production), {backend}", steady, **target),
        _row(
            f"models: first get after a change, {backend}",
            after_change,
            note="a change moves the ledger head, so this read goes to the database",
        ),
    ]


@contextmanager
def _postgres_database() -> Iterator[str | None]:
    """A database of our own on the PostgreSQL server, dropped afterwards; None if unreachable."""
    try:
        import psycopg

        admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
        name = f"charter_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception:
        yield None
        return
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_MLFLOW_SCRIPT = """
import json, statistics, sys, time
import mlflow
from mlflow import MlflowClient
uri, runs = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
client = MlflowClient()
client.create_registered_model("support-llm")
version = client.create_model_version("support-llm", source="s3://models/support-llm/1", run_id=None)
client.set_registered_model_alias("support-llm", "production", version.version)
for _ in range(50):
    client.get_model_version_by_alias("support-llm", "production")
samples = []
for _ in range(runs):
    started = time.perf_counter()
    client.get_model_version_by_alias("support-llm", "production")
    samples.append(time.perf_counter() - started)
print(json.dumps({"version": mlflow.__version__, "samples": samples}))
"""


def _mlflow(workdir: Path, runs: int) -> dict[str, Any]:
    venv = workdir / "mlflow-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", MLFLOW_REQUIREMENT], check=True)
    folder = workdir / f"mlflow-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    script = folder / "resolve_alias.py"
    script.write_text(_MLFLOW_SCRIPT)
    env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "GIT_PYTHON_REFRESH": "quiet"}
    try:
        done = subprocess.run(
            [str(python), str(script), f"sqlite:///{folder / 'mlflow.db'}", str(runs)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return _row(
        f"mlflow {result['version']}: get_model_version_by_alias, SQLite",
        result["samples"],
        note="separate virtualenv bench/.work/mlflow-venv",
    )


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    runs = 2_000 if quick else 50_000
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = uuid.uuid4().hex[:8]
    folder = workdir / f"models-{stamp}"
    try:
        rows = _charter(folder / "sqlite", None, runs, "SQLite")
        with _postgres_database() as url:
            if url is not None:
                rows += _charter(folder / "postgresql", url, max(1_000, runs // 10), "PostgreSQL")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not quick:
        mlflow = _mlflow(workdir, 2_000)
        mlflow["charter_speedup"] = round(mlflow["median_s"] / rows[0]["median_s"], 1)
        rows.append(mlflow)
    return rows


if __name__ == "__main__":
    for row in run(Path(__file__).resolve().parent / ".work", "--quick" in sys.argv):
        print(json.dumps(row, default=str))
