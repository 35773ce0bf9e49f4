"""Datasets: the list, a dataset's versions (size, rows, deduplication), a version with its profile
charts, and a drift report against production inputs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from charter.domain.refs import check_name, parse_dataset_ref
from charter.domain.times import parse_time
from charter.errors import CharterError, InvalidInput
from charter.web import charts
from charter.web.site import PAGE_SIZE, Site, integer, page_links

COLUMNS_SHOWN = 40
TOP_SHOWN = 15
DRIFT_BARS = 16


def drift_target(text: str) -> str:
    """What the web accepts to compare with: a slot's recorded inputs or a dataset version — never a
    path on the server's disk (the command line may read files; a browser may not)."""
    value = text.strip()
    if value.startswith("slot:"):
        check_name(value.removeprefix("slot:"), "slot")
        return value
    parsed = parse_dataset_ref(value)
    if parsed.version is None:
        raise InvalidInput(f"{value!r}: name a dataset version (DATASET@N) or a slot's inputs (slot:NAME)")
    return str(parsed)


def profile_chart(column: str, summary: dict[str, Any]) -> Any:
    """The chart a column's profile gets: histogram, top values or text lengths (None: none)."""
    kind = summary.get("kind")
    if kind == "number" and summary.get("histogram"):
        edges, counts = summary["histogram"]["edges"], summary["histogram"]["counts"]
        labels = [f"{charts.number(edges[i])} – {charts.number(edges[i + 1])}" for i in range(len(counts))]
        return charts.bars(labels, [float(c) for c in counts], label=f"{column}: histogram", fmt=_count)
    if kind == "category" and summary.get("top"):
        top = summary["top"][:TOP_SHOWN]
        labels = [str(v) for v, _ in top]
        values = [float(n) for _, n in top]
        other = sum(n for _, n in summary["top"][TOP_SHOWN:]) + int(summary.get("other", 0))
        if other:
            labels, values = [*labels, "(other)"], [*values, float(other)]
        return charts.bars(labels, values, label=f"{column}: most frequent values", fmt=_count)
    if kind == "text" and summary.get("vocabulary", {}).get("top"):
        top = summary["vocabulary"]["top"][:TOP_SHOWN]
        return charts.bars(
            [str(v) for v, _ in top],
            [float(n) for _, n in top],
            label=f"{column}: frequent tokens",
            fmt=_count,
        )
    return None


def drift_chart(column: str, plot: dict[str, Any]) -> Any:
    """Training against production shares per bin or value; beyond `DRIFT_BARS` values, the ones
    with the largest shares are kept (in order) and the rest summed as "(rest)"."""
    labels = [str(x) for x in plot["labels"]]
    expected = [float(x) for x in plot["expected"]]
    actual = [float(x) for x in plot["actual"]]
    if len(labels) > DRIFT_BARS:
        ranked = sorted(range(len(labels)), key=lambda i: -max(expected[i], actual[i]))
        kept = sorted(ranked[: DRIFT_BARS - 1])
        rest = [i for i in range(len(labels)) if i not in set(kept)]
        labels = [labels[i] for i in kept] + ["(rest)"]
        expected = [expected[i] for i in kept] + [sum(expected[i] for i in rest)]
        actual = [actual[i] for i in kept] + [sum(actual[i] for i in rest)]
    return charts.paired_bars(
        labels,
        expected,
        actual,
        names=("training", "production"),
        label=f"{column}: training and production shares",
    )


def _count(value: float) -> str:
    return f"{value:,.0f}"


def add(router: APIRouter, site: Site) -> None:
    @router.get("/datasets")
    def datasets(request: Request, offset: str = "") -> Response:
        viewer = site.viewer(request)
        page = viewer.registry.catalog.datasets(offset=integer(offset, "offset", 0), limit=PAGE_SIZE)
        return site.render(
            request,
            "datasets.html",
            section="datasets",
            title="Datasets",
            page=page,
            links=page_links(request, page),
        )

    @router.get("/datasets/{name}")
    def dataset(request: Request, name: str, offset: str = "") -> Response:
        viewer = site.viewer(request)
        page = viewer.registry.catalog.dataset_versions(
            name, offset=integer(offset, "offset", 0), limit=PAGE_SIZE
        )
        return site.render(
            request,
            "dataset.html",
            section="datasets",
            title=f"Dataset {name}",
            name=name,
            page=page,
            links=page_links(request, page),
        )

    @router.get("/datasets/{name}/{number}")
    def dataset_version(request: Request, name: str, number: str) -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        ref = f"{name}@{integer(number, 'version', 1, low=1)}"
        version = reg.datasets.get(ref)
        profile: dict[str, Any] | None = None
        try:
            profile = reg.datasets.profile(ref).profile if version.schema is not None else None
        except CharterError:
            profile = None
        columns = []
        for column, summary in list((profile or {}).get("columns", {}).items())[:COLUMNS_SHOWN]:
            columns.append({"name": column, "summary": summary, "chart": profile_chart(column, summary)})
        return site.render(
            request,
            "dataset_version.html",
            section="datasets",
            title=ref,
            ref=ref,
            version=version,
            columns=columns,
            column_total=len((profile or {}).get("columns", {})),
            profile=profile,
        )

    @router.get("/datasets/{name}/{number}/drift")
    def drift(request: Request, name: str, number: str, against: str = "", since: str = "") -> Response:
        viewer = site.viewer(request)
        ref = f"{name}@{integer(number, 'version', 1, low=1)}"
        if not against.strip():
            raise InvalidInput("say what to compare with: a dataset version (DATASET@N) or slot:NAME")
        target = drift_target(against)
        report = viewer.registry.datasets.drift(
            ref, target, since=parse_time(since) if since.strip() else None
        )
        plots = [
            (c, drift_chart(c.column, c.plot)) for c in report.columns[:COLUMNS_SHOWN] if c.plot.get("labels")
        ]
        return site.render(
            request,
            "drift.html",
            section="datasets",
            title=f"Drift of {ref}",
            ref=ref,
            report=report,
            plots=plots,
            against=target,
        )
