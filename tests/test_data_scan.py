"""One pass for profile and fingerprints: the results do not depend on how the rows are cut into
batches or how many threads work on them, and equal those of the separate entry points."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from charter.data import profile as profiles
from charter.data.fingerprints import fingerprint_table
from charter.data.profile import profile_batches, profile_table
from charter.data.scan import TableScanner, scan_table
from charter.data.tabular import TableInfo, type_name
from tests.intel_pins import mixed_table


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


@pytest.fixture
def table_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, TableInfo]:
    monkeypatch.setattr(profiles, "SAMPLE", 1500)  # sampled path on small data
    monkeypatch.setattr(profiles, "TEXT_SAMPLE", 400)
    table = mixed_table(4000, seed=5)
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=900)
    schema = sorted(
        ({"name": f.name, "type": type_name(f.type)} for f in table.schema), key=lambda c: c["name"]
    )
    return tmp_path, TableInfo(schema, table.num_rows, ("t.parquet",))


def test_one_pass_equals_the_two_separate_passes(table_file: tuple[Path, TableInfo]) -> None:
    root, info = table_file
    both = scan_table(root, info)
    assert both.fingerprints is not None and both.profile is not None
    assert np.array_equal(both.fingerprints, fingerprint_table(root, info))
    assert _close(json.loads(json.dumps(both.profile)), json.loads(json.dumps(profile_table(root, info))))


@pytest.mark.parametrize(("batch_rows", "workers"), [(1, 1), (333, 3), (4000, 2)])
def test_batch_sizes_and_threads_do_not_change_the_results(
    table_file: tuple[Path, TableInfo], batch_rows: int, workers: int
) -> None:
    root, info = table_file
    reference = scan_table(root, info, workers=1)
    table = pq.read_table(root / "t.parquet").select(info.columns)
    schema = {c["name"]: c["type"] for c in info.schema}
    rows = table.slice(0, 300) if batch_rows == 1 else table  # one row at a time: keep it short
    with TableScanner(schema, rows=rows.num_rows, workers=workers) as scanner:
        for batch in rows.to_batches(max_chunksize=batch_rows):
            scanner.add(batch)
        streamed_fps, streamed_profile = scanner.fingerprints(), scanner.profile()
    if batch_rows == 1:
        short = TableInfo(info.schema, 300, info.files)
        pq.write_table(rows, root / "t.parquet")
        reference = scan_table(root, short, workers=1)
    assert reference.fingerprints is not None
    assert np.array_equal(streamed_fps, reference.fingerprints)
    assert _close(json.loads(json.dumps(streamed_profile)), json.loads(json.dumps(reference.profile)))


def test_profile_batches_is_the_streaming_profile(table_file: tuple[Path, TableInfo]) -> None:
    root, _ = table_file
    table = pq.read_table(root / "t.parquet")
    schema = {f.name: type_name(f.type) for f in table.schema}  # file order, not name order
    batches = table.to_batches(max_chunksize=500)
    profile = profile_batches(batches, schema)
    assert list(profile["columns"]) == list(schema)
    with TableScanner(schema, rows=table.num_rows, fingerprints=False) as scanner:
        for batch in batches:
            scanner.add(batch)
        assert _close(json.loads(json.dumps(scanner.profile())), json.loads(json.dumps(profile)))
        with pytest.raises(ValueError):
            scanner.fingerprints()
