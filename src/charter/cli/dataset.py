"""`charter dataset …`: versioned, deduplicated snapshots of files and tables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, say, table

dataset_app = typer.Typer(
    help="The dataset registry: immutable, deduplicated, time-travelling snapshots.", no_args_is_help=True
)

PROGRESS_THRESHOLD = 64 * 1024 * 1024  # draw a progress bar for inputs larger than this


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


@contextmanager
def _progress(path: Path, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    total = _size(path) if path.exists() else 0
    if quiet or total < PROGRESS_THRESHOLD:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(f"snapshot {path.name}", total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def _row_progress(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over the rows of a lake table being scanned (None: draw nothing)."""
    if quiet or not _embedded():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("scan rows", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _embedded() -> bool:
    """Whether commands run on the embedded store (a server scans lake tables on its side)."""
    from charter.config import Settings

    return not Settings.from_env().remote


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@dataset_app.command("add")
def add(
    name: str,
    path: Path = typer.Argument(None, help="A file or folder to snapshot (not with --iceberg/--delta)."),
    role: str = typer.Option(..., "--role", help="train | eval | holdout | production-sample"),
    source: list[str] = typer.Option([], "--source", help="Where the data came from (URI); repeatable."),
    derived_from: str = typer.Option(None, "--derived-from", help="Parent version, DS@N."),
    message: str = typer.Option("", "--message", "-m", help="What changed."),
    iceberg: str = typer.Option(
        None,
        "--iceberg",
        help="An Iceberg table by reference: CATALOG_URI#NAMESPACE.TABLE (needs charter[lake]).",
    ),
    snapshot: int = typer.Option(
        None, "--snapshot", help="With --iceberg: the snapshot id (default: current)."
    ),
    delta: str = typer.Option(
        None, "--delta", help="A Delta Lake table by reference: its path or URI (needs charter[lake])."
    ),
    table_version: int = typer.Option(
        None, "--table-version", help="With --delta: the table version (default: latest)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Snapshot a file or folder as the next version of NAME (unchanged content adds no version),
    or register an Iceberg or Delta table at one snapshot by reference (no copy)."""
    if iceberg is not None or delta is not None or snapshot is not None or table_version is not None:
        if path is not None:
            raise typer.BadParameter("give either PATH or --iceberg/--delta, not both", param_hint="PATH")
        with _row_progress(json_out) as rows:
            result = registry().datasets.add_table(
                name,
                iceberg=iceberg,
                delta=delta,
                snapshot=snapshot,
                table_version=table_version,
                role=role,
                sources=source,
                derived_from=derived_from,
                message=message,
                **({"progress": rows} if rows is not None else {}),
            )
    else:
        if path is None:
            raise typer.BadParameter(
                "give a file or folder, or --iceberg/--delta for a table", param_hint="PATH"
            )
        with _progress(path, json_out) as progress:
            result = registry().datasets.add(
                name,
                path,
                role=role,
                sources=source,
                derived_from=derived_from,
                message=message,
                progress=progress,
            )
    v = result.version

    def human() -> None:
        lake = v.kind in ("iceberg", "delta")
        if result.created and lake:
            say(f"added [bold]{v.ref}[/] ({v.kind} table by reference, {v.row_count} rows): {v.sources[0]}")
        elif result.created:
            say(
                f"added [bold]{v.ref}[/] ({v.kind}, {v.files} files, {_human_bytes(v.bytes_total)}"
                + (f", {v.row_count} rows" if v.row_count is not None else "")
                + ")"
            )
        else:
            say(f"unchanged: the content equals {v.ref}; no new version")
        say(
            ("scanned the table" if lake else f"read {_human_bytes(result.bytes_read)}")
            + f", newly stored {_human_bytes(result.bytes_new)} in {result.seconds:.2f} s"
        )

    emit(result, json_out, human)


@dataset_app.command("list")
def list_(json_out: bool = JsonFlag) -> None:
    """Every dataset with its latest version."""
    versions = registry().datasets.list()
    emit(
        versions,
        json_out,
        lambda: table(
            "datasets",
            ["dataset", "latest", "role", "kind", "files", "size", "rows"],
            [
                (v.name, v.ref, v.role, v.kind, v.files, _human_bytes(v.bytes_total), v.row_count)
                for v in versions
            ],
        ),
    )


@dataset_app.command("versions")
def versions(name: str, json_out: bool = JsonFlag) -> None:
    """Every version of a dataset, oldest first."""
    found = registry().datasets.versions(name)
    emit(
        found,
        json_out,
        lambda: table(
            f"versions of {name}",
            ["version", "created", "by", "role", "files", "size", "new", "rows", "message"],
            [
                (
                    v.version,
                    v.created_at.isoformat(timespec="seconds"),
                    v.created_by,
                    v.role,
                    v.files,
                    _human_bytes(v.bytes_total),
                    _human_bytes(v.bytes_new),
                    v.row_count,
                    v.message,
                )
                for v in found
            ],
        ),
    )


@dataset_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@N, or NAME for the latest version."),
    as_of: str = typer.Option(None, "--as-of", help="The version current at this time (ISO 8601)."),
    files: bool = typer.Option(False, "--files", help="Also list the files."),
    json_out: bool = JsonFlag,
) -> None:
    """One dataset version: digest, role, lineage, schema, size."""
    from charter.domain.times import parse_time

    reg = registry()
    v = reg.datasets.get(ref, as_of=parse_time(as_of) if as_of else None)
    listing = reg.datasets.files(v.ref) if files else None
    body = v.as_dict() | ({"file_list": listing} if listing is not None else {})

    def human() -> None:
        fields(
            [
                ("version", v.ref),
                ("digest", v.digest),
                ("kind", v.kind),
                ("role", v.role),
                ("files", v.files),
                ("size", _human_bytes(v.bytes_total)),
                ("rows", v.row_count),
                ("sources", ", ".join(v.sources)),
                ("derived from", v.derived_from),
                ("message", v.message),
                ("created", f"{v.created_at.isoformat()} by {v.created_by}"),
            ]
        )
        if v.schema:
            table("schema", ["column", "type"], [(c["name"], c["type"]) for c in v.schema])
        if listing is not None:
            table(
                "files",
                ["path", "size", "digest"],
                [(f["path"], _human_bytes(f["size"]), f["digest"][:16]) for f in listing],
            )

    emit(body, json_out, human)


@dataset_app.command("diff")
def diff(a: str, b: str, json_out: bool = JsonFlag) -> None:
    """What changed from version A to version B: files, bytes, rows, schema."""
    d = registry().datasets.diff(a, b)

    def human() -> None:
        say(
            f"{d.a} → {d.b}: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
            f"{d.unchanged} unchanged; size {d.bytes_delta:+d} bytes"
            + (f"; rows {d.rows_delta:+d}" if d.rows_delta is not None else "")
        )
        for label, paths in (("+", d.added), ("-", d.removed), ("~", d.changed)):
            for p in paths:
                say(f"  {label} {p}")
        for change in d.schema_changes:
            say(f"  schema {change}")

    emit(d, json_out, human)


@dataset_app.command("checkout")
def checkout(
    ref: str,
    target: Path = typer.Argument(..., help="Folder to write the files into."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder."),
    json_out: bool = JsonFlag,
) -> None:
    """Write a version's files to a folder, byte for byte, verified against their digests. A lake-table
    version (Iceberg, Delta) is read at its pinned snapshot into table.parquet and verified by row
    count and row fingerprints."""
    r = registry().datasets.checkout(ref, target, force=force)
    emit(
        r,
        json_out,
        lambda: say(
            f"checked out {r.ref} to {r.target}: {r.files} files, {_human_bytes(r.bytes_written)}, verified"
        ),
    )


@dataset_app.command("overlap")
def overlap(
    a: str,
    b: str,
    near: bool = typer.Option(False, "--near", help="Also find near-duplicate texts (MinHash/LSH)."),
    column: str = typer.Option(None, "--column", help="The text column to compare (default: all shared)."),
    threshold: float = typer.Option(
        None, "--threshold", help="Word-shingle Jaccard that counts as near-duplicate (default: policy)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Exact overlap: rows of A found in B (with multiplicity), from canonical row fingerprints;
    with --near, also rows of A with a near-duplicate text in B (verified by exact Jaccard)."""
    if not near and (column is not None or threshold is not None):
        near = True
    if near:
        n = registry().datasets.near_overlap(a, b, column=column, threshold=threshold)

        def human() -> None:
            e = n.exact
            say(f"exact: {e.overlapping} of {e.a_total} {e.method} of {e.a} occur in {e.b} ({e.ratio:.2%})")
            say(
                f"near-duplicates (Jaccard ≥ {n.threshold}, columns {', '.join(n.columns)}): "
                f"{n.near_rows} of {n.a_rows} rows ({n.ratio:.2%})"
            )
            if n.sample:
                table(
                    "sample of matched pairs",
                    ["column", "A row", "B row", "jaccard", "A text", "B text"],
                    [
                        (s["column"], s["a_row"], s["b_row"], s["jaccard"], s["a_text"], s["b_text"])
                        for s in n.sample
                    ],
                )

        emit(n, json_out, human)
        return
    o = registry().datasets.overlap(a, b)
    emit(
        o,
        json_out,
        lambda: say(f"{o.overlapping} of {o.a_total} {o.method} of {o.a} occur in {o.b} ({o.ratio:.2%})"),
    )


@dataset_app.command("gc")
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed; remove nothing."),
    grace: str = typer.Option(
        "1h", "--grace", help="Keep unreferenced blobs younger than this (30m, 1h, 2d)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Remove blobs no dataset or model version can reach (admin only)."""
    from charter.domain.times import parse_duration

    r = registry().datasets.gc(dry_run=dry_run, grace_seconds=parse_duration(grace).total_seconds())
    emit(
        r,
        json_out,
        lambda: say(
            ("would remove" if r.dry_run else "removed")
            + f" {r.removed} blobs ({_human_bytes(r.bytes_removed)}); "
            f"{r.reachable} reachable, {r.kept_recent} recent kept"
        ),
    )


@dataset_app.command("profile")
def profile(ref: str, json_out: bool = JsonFlag) -> None:
    """The statistical profile stored with a table version: per column type, nulls, distinct values
    and a distribution summary (deciles and histogram, top values, or text length and tokens)."""
    p = registry().datasets.profile(ref)

    def human() -> None:
        rows = [
            (name, c["type"], c.get("kind"), c["nulls"], c["distinct"], _profile_detail(c))
            for name, c in p.profile["columns"].items()
        ]
        table(f"{p.ref}: {p.rows} rows", ["column", "type", "kind", "nulls", "distinct", "summary"], rows)

    emit(p, json_out, human)


def _profile_detail(c: dict[str, Any]) -> str:
    kind = c.get("kind")
    if kind == "number" and c["min"] is not None:
        return f"min {c['min']:.4g}  mean {c['mean']:.4g}  max {c['max']:.4g}"
    if kind == "category":
        top = ", ".join(f"{v} ({n})" for v, n in c["top"][:5])
        return top + (f", other ({c['other']})" if c["other"] else "")
    if kind == "text":
        return f"length mean {c['length']['mean'] or 0:.1f}, tokens mean {c['tokens']['mean'] or 0:.1f}"
    return ""


@dataset_app.command("drift")
def drift(
    ref: str = typer.Argument(..., help="The training version, NAME@N (its stored profile is used)."),
    against: str = typer.Option(
        ..., "--against", help="Production inputs: a file or folder, DS@M, or slot:NAME (recorded inputs)."
    ),
    since: str = typer.Option(None, "--since", help="With slot:NAME, only inputs recorded since this time."),
    report: Path = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    json_out: bool = JsonFlag,
) -> None:
    """Per-column drift of production inputs against a training version's profile (PSI, KS,
    chi-square, Jensen–Shannon); verdicts from the drift policy's PSI thresholds."""
    from charter.domain.times import parse_time

    r = registry().datasets.drift(ref, against, report=report, since=parse_time(since) if since else None)

    def human() -> None:
        table(
            f"drift of {r.against} against {r.training}: {r.verdict}",
            ["column", "kind", "verdict", "PSI", "adjusted p"],
            [
                (
                    c.column,
                    c.kind,
                    c.verdict,
                    f"{c.psi:.4f}",
                    ", ".join(f"{k} {v:.3g}" for k, v in c.adjusted_p_values.items()),
                )
                for c in r.columns
            ],
        )
        if report is not None:
            say(f"report written to {report}")

    emit(r, json_out, human)
