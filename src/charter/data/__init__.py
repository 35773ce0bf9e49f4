"""The dataset engine: files in, blobs and numbers out.

A pure library with no database, CLI or service code:

- `chunking`: content-defined chunking (FastCDC) and BLAKE3 digests;
- `manifest`: the canonical, content-addressed list of a snapshot's files and chunks;
- `sources`: which files a path contributes and under which validated relative names;
- `snapshot`: storing a file or folder in the deduplicating blob store (durable on return);
- `checkout`: writing a manifest back to files, and verifying a stored snapshot;
- `tabular`: schema and row count of Parquet, CSV and JSON Lines snapshots;
- `fingerprints`: canonical per-row fingerprints, equal across those formats (built on
  `hashing`, bulk 64-bit hashing of numpy arrays and Arrow buffers, and `isotext`, ISO-8601 text
  of dates and timestamps);
- `overlap`: exact row overlap between fingerprint arrays, and file overlap between manifests;
- `profile`: per-column statistical profiles of tables (stored with each table version);
- `minhash`: near-duplicate texts between two collections (MinHash, LSH banding, exact Jaccard);
- `drift`: per-column drift of production inputs against a stored profile, and `drift_report`,
  its self-contained HTML report.

Heavy libraries (pyarrow, numpy) are imported by the modules that need them, not here.
"""
