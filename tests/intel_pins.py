"""Seeded inputs for the pinned results of profiles, fingerprints, drift and near-duplicates.

The values in tests/data/intel_pins.json were computed from these inputs by the implementation
before the single-pass, multi-threaded rewrite (`python -m tests.intel_pins` writes them again);
tests/test_data_intel_pins.py checks that the current code still gives them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PINS = Path(__file__).parent / "data" / "intel_pins.json"
WORDS = [f"w{i}" for i in range(400)] + ["Élan", "naïve", "café", "東京", "x" * 37]


def mixed_table(n: int = 5000, seed: int = 11) -> pa.Table:
    """Every vectorised kind, with nulls, short and long strings, and repeated strings."""
    rng = np.random.default_rng(seed)
    missing = rng.random(n) < 0.05
    ints = rng.integers(-(10**6), 10**6, n)
    floats = np.round(rng.normal(0.0, 50.0, n) * 10.0 ** rng.integers(0, 4, n)) / 10.0 ** rng.integers(
        0, 4, n
    )
    floats[rng.random(n) < 0.02] = np.nan
    words = np.array(WORDS, dtype=object)
    short = [" ".join(words[rng.integers(0, len(words), rng.integers(0, 4))]) for _ in range(n)]
    long = [" ".join(words[rng.integers(0, len(words), rng.integers(4, 14))]) for _ in range(n)]
    base = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    stamps = [
        base + dt.timedelta(seconds=int(s), microseconds=int(u))
        for s, u in zip(
            rng.integers(0, 10**7, n), rng.integers(0, 2, n) * rng.integers(0, 10**6, n), strict=True
        )
    ]
    return pa.table(
        {
            "amount": pa.array(floats, mask=missing),
            "count": pa.array(ints, mask=rng.random(n) < 0.03),
            "small": pa.array(rng.integers(0, 100, n).astype(np.int16)),
            "ratio": pa.array(rng.random(n).astype(np.float32)),
            "city": pa.array(rng.choice(["berlin", "paris", "rome", None], n).tolist()),
            "flag": pa.array(rng.random(n) < 0.3, mask=rng.random(n) < 0.1),
            "note": pa.array(long, mask=missing),
            "tag": pa.array(short),
            "day": pa.array([s.date() for s in stamps]),
            "at": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "blob": pa.array([s.encode() for s in short], pa.binary()),
        }
    )


def drift_tables(n: int = 6000) -> tuple[pa.Table, pa.Table]:
    """Training and production tables; production has a shifted number, a new category and longer texts."""

    def frame(seed: int, shift: bool) -> pa.Table:
        rng = np.random.default_rng(seed)
        city = rng.choice(["berlin", "paris", "rome", "madrid"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
        if shift:
            city[rng.random(n) < 0.2] = "lisbon"
        length = 16 if shift else 10
        return pa.table(
            {
                "amount": rng.normal(105.0 if shift else 100.0, 15.0, n),
                "age": pa.array(rng.integers(18, 80, n), mask=rng.random(n) < 0.05),
                "city": pa.array(city.tolist()),
                "channel": rng.choice(["web", "app"], n),
                "note": [
                    " ".join(rng.choice(WORDS[:300], rng.integers(length - 3, length + 3))) for _ in range(n)
                ],
            }
        )

    return frame(1, False), frame(2, True)


def near_texts(n: int = 800) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(5)
    vocab = [f"v{i}" for i in range(2000)]
    a = [" ".join(rng.choice(vocab, 22)) for _ in range(n)]
    b = [" ".join(rng.choice(vocab, 22)) for _ in range(n)]
    for k in range(0, n, 20):
        words = a[k].split()
        words[rng.integers(0, 22)] = "changed"
        b[(k * 7 + 3) % n] = " ".join(words)
    return a, b


def compute(folder: Path) -> dict[str, Any]:
    """Every pinned result, computed by the code under test."""
    from charter.data import drift, minhash, profile
    from charter.data.fingerprints import RowHasher, fingerprint_batch, fingerprint_table
    from charter.data.tabular import TableInfo, type_name

    table = mixed_table()
    pq.write_table(table, folder / "mixed.parquet", row_group_size=1500)
    schema = [{"name": f.name, "type": type_name(f.type)} for f in table.schema]
    info = TableInfo(sorted(schema, key=lambda c: c["name"]), table.num_rows, ("mixed.parquet",))
    fps = fingerprint_table(folder, info)
    batch = table.to_batches()[0]
    row = fingerprint_batch(batch, sorted(table.column_names))
    hasher = RowHasher(sorted(table.column_names))
    repeated = pa.record_batch({"tag": pa.array(["a", "bb", "a", None] * 600), "n": pa.array(range(2400))})
    saved = (profile.SAMPLE, profile.TEXT_SAMPLE)
    profile.SAMPLE, profile.TEXT_SAMPLE = 2000, 700  # exercise the sampled path on small data
    try:
        mixed_profile = profile.profile_table(folder, info)
        train, prod = drift_tables()
        pq.write_table(train, folder / "train.parquet", row_group_size=2500)
        train_info = TableInfo(
            sorted(
                ({"name": f.name, "type": type_name(f.type)} for f in train.schema), key=lambda c: c["name"]
            ),
            train.num_rows,
            ("train.parquet",),
        )
        train_profile = profile.profile_table(folder, train_info)
        prod_schema = {f.name: type_name(f.type) for f in prod.schema}
        batches_profile = profile.profile_batches(prod.to_batches(max_chunksize=1000), prod_schema)
    finally:
        profile.SAMPLE, profile.TEXT_SAMPLE = saved
    saved_vocab = drift.VOCABULARY_SAMPLE
    drift.VOCABULARY_SAMPLE = 1500
    try:
        report = drift.compare(
            train_profile, prod_schema, prod.to_batches(max_chunksize=1000), training="t", against="p"
        ).as_dict()
    finally:
        drift.VOCABULARY_SAMPLE = saved_vocab
    a, b = near_texts()
    near = minhash.near_pairs(pa.array(a), pa.array(b), 0.75)
    return {
        "fingerprints": {
            "count": len(fps),
            "first": [int(v) for v in fps[:5]],
            "last": [int(v) for v in fps[-5:]],
            "xor": int(np.bitwise_xor.reduce(fps)),
            "sum": int(np.sum(fps, dtype=np.uint64)),
            "batch_head": [int(v) for v in row[:8]],
            "repeated": [int(v) for v in hasher.hash_batch(table.to_batches()[0])[:4]]
            + [int(v) for v in RowHasher(["n", "tag"]).hash_batch(repeated)[:6]],
        },
        "profile_mixed": mixed_profile,
        "profile_train": train_profile,
        "profile_batches": batches_profile,
        "drift": report,
        "near": {
            "pairs": [[i, j, s] for i, j, s in sorted(near.pairs)],
            "bands_rows": [near.bands, near.rows],
        },
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        pins = compute(Path(folder))
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS}", file=sys.stderr)
