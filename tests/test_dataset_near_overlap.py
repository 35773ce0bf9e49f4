"""Near-duplicate overlap: MinHash/LSH finds planted near-duplicates, verified by exact Jaccard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.data import minhash
from charter.errors import InvalidInput
from charter.service.registry import Registry
from tests.cli_runner import Cli
from tests.intel_fixtures import cli  # noqa: F401  (fixture)

VOCAB = [f"w{i}" for i in range(3000)]


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB, 24)) for _ in range(n)]


def _planted(n: int = 600) -> tuple[list[str], list[str]]:
    """B gets 20 near-duplicates of A (the last word changed: Jaccard 21/23) and 10 exact copies."""
    a, b = _texts(n, 1), _texts(n, 2)
    for k in range(20):
        words = a[k].split()
        words[-1] = "changed"
        b[5 * k] = " ".join(words)
    for k in range(20, 30):
        b[5 * k + 1] = a[k]
    return a, b


def test_planted_near_and_exact_duplicates_are_found_and_verified() -> None:
    a, b = _planted()
    found = minhash.near_pairs(pa.array(a), pa.array(b), 0.8)
    assert found.a_rows() == set(range(30))
    for i, j, score in found.pairs:
        truth = len(set(_shingles(a[i])) & set(_shingles(b[j]))) / len(
            set(_shingles(a[i])) | set(_shingles(b[j]))
        )
        assert score == pytest.approx(truth) and score >= 0.8


def _shingles(text: str) -> list[tuple[str, ...]]:
    words = text.lower().split()
    return [tuple(words[i : i + 3]) for i in range(len(words) - 2)]


def test_disjoint_texts_give_no_pairs() -> None:
    found = minhash.near_pairs(pa.array(_texts(800, 3)), pa.array(_texts(800, 4)), 0.5)
    assert found.pairs == []


def test_short_texts_empty_texts_and_nulls() -> None:
    found = minhash.near_pairs(
        pa.array(["hello world", "", None, "a b c d"]), pa.array(["Hello  World", ""]), 0.9
    )
    assert [(i, j) for i, j, _ in found.pairs] == [(0, 0)]


def test_bands_put_the_lsh_threshold_below_the_requested_one() -> None:
    for threshold in (0.5, 0.8, 0.95):
        bands, rows = minhash.bands_for(threshold)
        assert bands * rows <= minhash.PERMUTATIONS and (1 / bands) ** (1 / rows) < threshold


def _add(registry: Registry, tmp_path: Path, name: str, texts: list[str], role: str) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), path)
    return registry.datasets.add(name, path, role=role).version.ref


def test_service_reports_exact_and_near_overlap_with_a_sample(registry: Registry, tmp_path: Path) -> None:
    a, b = _planted(300)
    ra = _add(registry, tmp_path, "evalset", a, "eval")
    rb = _add(registry, tmp_path, "trainset", b, "train")
    result = registry.datasets.near_overlap(ra, rb, threshold=0.8)
    d = result.as_dict()
    assert result.near_rows == 30 and result.ratio == pytest.approx(0.1)
    assert d["near_duplicates"]["columns"] == ["text"] and len(d["near_duplicates"]["sample"]) == 10
    assert d["exact"]["method"] == "rows" and d["exact"]["overlapping"] == 0  # ids differ
    with pytest.raises(InvalidInput, match="not a text column"):
        registry.datasets.near_overlap(ra, rb, column="id")
    with pytest.raises(InvalidInput, match="threshold"):
        registry.datasets.near_overlap(ra, rb, threshold=1.5)


def test_cli_overlap_near(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    a, b = _planted(200)
    for name, texts, role in (("ev", a, "eval"), ("tr", b, "train")):
        pq.write_table(pa.table({"text": texts}), tmp_path / f"{name}.parquet")
        assert cli("dataset", "add", name, str(tmp_path / f"{name}.parquet"), "--role", role).code == 0
    run = cli("dataset", "overlap", "ev@1", "tr@1", "--near", "--threshold", "0.8", "--json")
    assert run.code == 0
    body = run.json()
    assert body["exact"]["overlapping"] == 10 and body["near_duplicates"]["near_rows"] == 30
    human = cli("dataset", "overlap", "ev@1", "tr@1", "--near", "--column", "text")
    assert human.code == 0 and "near-duplicates" in human.out
    assert cli("dataset", "overlap", "ev@1", "tr@1", "--column", "nope").code == 1


def test_tables_without_text_columns_are_refused_clearly(registry: Registry, tmp_path: Path) -> None:
    for name in ("x", "y"):
        pq.write_table(pa.table({"v": [1.0, 2.0]}), tmp_path / f"{name}.parquet")
        registry.datasets.add(name, tmp_path / f"{name}.parquet", role="train")
    with pytest.raises(InvalidInput, match="share no text column"):
        registry.datasets.near_overlap("x@1", "y@1")


def test_a_shared_short_label_does_not_make_rows_near_duplicates(registry: Registry, tmp_path: Path) -> None:
    """Rows are compared as a whole: distinct texts that share a category label are not duplicates."""
    train = tmp_path / "train.csv"
    train.write_text("ticket,label\nprinter jams,hardware\nvpn drops,network\nreset password,account\n")
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("ticket,label\nlaptop will not boot,hardware\nwifi is slow,network\n")
    registry.datasets.add("train", train, role="train")
    registry.datasets.add("holdout", holdout, role="holdout")
    near = registry.datasets.near_overlap("holdout@1", "train@1")
    assert near.near_rows == 0
