"""Evidently's data-drift report on two Parquet files, timed (run by bench_intel in its own virtualenv).

    python bench/evidently_drift.py REFERENCE.parquet CURRENT.parquet

Prints one JSON object: the seconds the report took, wall and CPU (building the datasets from
pandas included, reading the files not), Evidently's version, and the columns it flags as
drifted. Numeric columns are declared numerical, dictionary-encoded ones categorical, other
strings text. Evidently is not a dependency of charter, and charter never imports this file.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
from evidently import DataDefinition, Dataset, Report
from evidently import __version__ as version
from evidently.presets import DataDriftPreset


def main(reference_path: str, current_path: str) -> None:
    schema = pq.read_schema(reference_path)
    numerical = [f.name for f in schema if str(f.type) in ("double", "float", "int64", "int32")]
    categorical = [f.name for f in schema if str(f.type).startswith("dictionary")]
    text = [f.name for f in schema if f.name not in numerical and f.name not in categorical]
    reference = pq.read_table(reference_path).to_pandas()
    current = pq.read_table(current_path).to_pandas()
    for name in categorical:
        reference[name] = reference[name].astype(str)
        current[name] = current[name].astype(str)
    definition = DataDefinition(
        numerical_columns=numerical, categorical_columns=categorical, text_columns=text
    )
    started, cpu = time.perf_counter(), time.process_time()
    ref = Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition)
    cur = Dataset.from_pandas(pd.DataFrame(current), data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    result = snapshot.dict()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    drifted = []
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            threshold = config.get("threshold")
            method = str(config.get("method", ""))
            value = metric.get("value")
            if value is None or threshold is None:
                continue
            # p-value tests drift below the threshold; distances drift at or above it
            is_p_value = "p_value" in method or "test" in method.lower()
            if (value < threshold) if is_p_value else (value >= threshold):
                drifted.append(config.get("column"))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "version": version,
                "drifted": sorted(drifted),
                "raw": result,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
