"""Drift of production inputs against a stored training profile: planted drift is flagged,
unshifted columns are not; bad inputs get clear errors; HTML report and CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.data import drift
from charter.errors import InvalidInput
from charter.service.registry import Registry
from tests.cli_runner import Cli
from tests.intel_fixtures import cli  # noqa: F401  (fixture)

WORDS = [f"w{i}" for i in range(300)]


def _frame(n: int, seed: int, *, shift: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    cities = ["berlin", "paris", "rome", "madrid"]
    city = rng.choice(cities, n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    words = 30 if shift else 12
    if shift:
        city[rng.random(n) < 0.3] = "lisbon"  # a new category
    return pa.table(
        {
            "amount": rng.normal(110.0 if shift else 100.0, 15.0, n),  # shifted by 2/3 sd
            "age": rng.integers(18, 80, n),  # never shifted
            "city": pa.array(city.tolist()),
            "channel": rng.choice(["web", "app"], n),  # never shifted
            "note": [" ".join(rng.choice(WORDS, rng.integers(words - 3, words + 3))) for _ in range(n)],
        }
    )


def _training(registry: Registry, tmp_path: Path) -> str:
    pq.write_table(_frame(3000, 1), tmp_path / "train.parquet")
    return registry.datasets.add("claims", tmp_path / "train.parquet", role="train").version.ref


def test_planted_drift_is_flagged_and_unshifted_columns_are_not(registry: Registry, tmp_path: Path) -> None:
    ref = _training(registry, tmp_path)
    pq.write_table(_frame(3000, 2, shift=True), tmp_path / "prod.parquet")
    report = registry.datasets.drift(ref, tmp_path / "prod.parquet", report=tmp_path / "drift.html")
    verdicts = {c.column: c.verdict for c in report.columns}
    assert (
        verdicts["amount"] != "none"
        and verdicts["city"] == "significant"
        and verdicts["note"] == "significant"
    )
    assert verdicts["age"] == "none" and verdicts["channel"] == "none"
    assert report.verdict == "significant" and sorted(report.drifted) == ["amount", "city", "note"]
    by = {c.column: c for c in report.columns}
    assert by["amount"].statistics["ks"] > 0.2 and by["amount"].adjusted_p_values["ks"] < 1e-6
    assert 0 < by["city"].statistics["jensen_shannon"] <= 1 and by["city"].plot["labels"][-1] == "other"
    assert by["age"].adjusted_p_values["ks"] >= by["age"].p_values["ks"]  # Holm never lowers a p-value
    html = (tmp_path / "drift.html").read_text()
    assert html.count("<svg") == 3 and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert report.as_dict()["correction"] == "holm"


def test_the_same_distribution_shows_no_drift(registry: Registry, tmp_path: Path) -> None:
    ref = _training(registry, tmp_path)
    pq.write_table(_frame(3000, 5), tmp_path / "prod.parquet")
    report = registry.datasets.drift(ref, tmp_path / "prod.parquet")
    assert report.verdict == "none", [(c.column, c.psi) for c in report.columns]


def test_a_production_sample_dataset_version_is_a_source(registry: Registry, tmp_path: Path) -> None:
    ref = _training(registry, tmp_path)
    (tmp_path / "prod").mkdir()
    pq.write_table(_frame(1500, 3, shift=True), tmp_path / "prod" / "a.parquet")
    pq.write_table(_frame(1500, 4, shift=True), tmp_path / "prod" / "b.parquet")
    sample = registry.datasets.add("claims-prod", tmp_path / "prod", role="production-sample").version.ref
    report = registry.datasets.drift(ref, sample)
    assert report.against == sample and report.rows == 3000 and "city" in report.drifted


def test_bad_inputs_get_clear_errors(registry: Registry, tmp_path: Path) -> None:
    ref = _training(registry, tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="cannot be read"):
        registry.datasets.drift(ref, bad)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"amount": [1.0]}), mixed / "a.parquet")
    pq.write_table(pa.table({"other": [1.0]}), mixed / "b.parquet")
    with pytest.raises(InvalidInput, match="schema mismatch"):
        registry.datasets.drift(ref, mixed)
    pq.write_table(_frame(3, 1).slice(0, 0), tmp_path / "empty.parquet")
    with pytest.raises(InvalidInput, match="no rows"):
        registry.datasets.drift(ref, tmp_path / "empty.parquet")
    with pytest.raises(InvalidInput, match="neither an existing file"):
        registry.datasets.drift(ref, tmp_path / "missing.csv")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "x.parquet")
    with pytest.raises(InvalidInput, match="shares no column"):
        registry.datasets.drift(ref, tmp_path / "x.parquet")


def test_psi_and_holm_by_hand() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert drift.psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(
        (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5), rel=1e-2
    )
    assert drift.psi([1.0, 0.0], [0.5, 0.5]) < 10  # smoothed: finite with an empty bin
    assert drift.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert drift.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_cli_drift(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    pq.write_table(_frame(1000, 1), tmp_path / "train.parquet")
    pq.write_table(_frame(1000, 2, shift=True), tmp_path / "prod.parquet")
    assert cli("dataset", "add", "claims", str(tmp_path / "train.parquet"), "--role", "train").code == 0
    run = cli("dataset", "drift", "claims@1", "--against", str(tmp_path / "prod.parquet"), "--json")
    assert run.code == 0 and run.json()["verdict"] == "significant"
    human = cli("dataset", "drift", "claims@1", "--against", "prod.parquet", "--report", "r.html")
    assert human.code == 0 and (tmp_path / "r.html").exists() and "city" in human.out
    assert cli("dataset", "drift", "claims@1", "--against", "nowhere.csv").code == 1
    assert cli("dataset", "drift", "claims@9", "--against", "prod.parquet").code == 3
