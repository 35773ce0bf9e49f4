"""Profiles of table versions: computed at add, stored, shown by the SDK and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.data.profile import profile_table
from charter.data.tabular import TableInfo
from charter.errors import InvalidInput
from charter.service.registry import Registry
from tests.cli_runner import Cli
from tests.intel_fixtures import cli  # noqa: F401  (fixture)


def _table(n: int = 2000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    amounts = rng.normal(100.0, 15.0, n)
    amounts[::10] = np.nan
    return pa.table(
        {
            "amount": pa.array(amounts, from_pandas=True),
            "count": rng.integers(0, 50, n),
            "country": rng.choice(["de", "fr", "it"], n, p=[0.5, 0.3, 0.2]),
            "note": [f"ticket {i} about printer {rng.integers(0, 10**6)} failing again" for i in range(n)],
        }
    )


def test_a_profile_summarises_each_column_by_kind(tmp_path: Path) -> None:
    pq.write_table(_table(), tmp_path / "t.parquet")
    info = TableInfo(
        [
            {"name": "amount", "type": "float"},
            {"name": "count", "type": "integer"},
            {"name": "country", "type": "string"},
            {"name": "note", "type": "string"},
        ],
        2000,
        ("t.parquet",),
    )
    p = profile_table(tmp_path, info)
    amount, count = p["columns"]["amount"], p["columns"]["count"]
    assert amount["kind"] == "number" and amount["nulls"] == 200 and abs(amount["mean"] - 100) < 2
    assert len(amount["deciles"]) == 9 and abs(sum(amount["bins"]) - 1) < 1e-9
    assert sum(amount["histogram"]["counts"]) == pytest.approx(1800, abs=20)
    assert count["distinct"] == 50 and count["min"] == 0 and count["max"] == 49
    country = p["columns"]["country"]
    assert country["kind"] == "category" and country["top"][0][0] == "de" and country["other"] == 0
    note = p["columns"]["note"]
    assert note["kind"] == "text" and note["tokens"]["p50"] == 7 and note["vocabulary"]["top"][0][1] == 2000
    assert 1800 < note["distinct"] < 2200  # KMV estimate, about 3 % error


def test_add_stores_the_profile_and_it_is_shown(registry: Registry, tmp_path: Path) -> None:
    pq.write_table(_table(), tmp_path / "t.parquet")
    registry.datasets.add("tickets", tmp_path / "t.parquet", role="train")
    p = registry.datasets.profile("tickets@1")
    assert p.rows == 2000 and set(p.profile["columns"]) == {"amount", "count", "country", "note"}
    assert p.as_dict()["columns"]["country"]["kind"] == "category"


def test_a_files_version_has_no_profile(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    registry.datasets.add("blobs", tmp_path / "a.txt", role="train")
    with pytest.raises(InvalidInput, match="no profile"):
        registry.datasets.profile("blobs@1")


def test_cli_profile(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    pq.write_table(_table(200), tmp_path / "t.parquet")
    assert cli("dataset", "add", "tickets", str(tmp_path / "t.parquet"), "--role", "train").code == 0
    run = cli("dataset", "profile", "tickets@1", "--json")
    assert run.code == 0 and run.json()["columns"]["amount"]["kind"] == "number"
    human = cli("dataset", "profile", "tickets@1")
    assert human.code == 0 and "country" in human.out
    assert cli("dataset", "profile", "nothing@1").code == 3
