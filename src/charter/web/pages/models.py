"""Models: the list, a model with its versions and alias history, a version with its evidence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from charter.domain.semver import Version
from charter.errors import CharterError, InvalidReference
from charter.web.site import PAGE_SIZE, Site, integer, page_links

HISTORY = 50


def add(router: APIRouter, site: Site) -> None:
    @router.get("/models")
    def models(request: Request, offset: str = "") -> Response:
        viewer = site.viewer(request)
        page = viewer.registry.catalog.models(offset=integer(offset, "offset", 0), limit=PAGE_SIZE)
        return site.render(
            request,
            "models.html",
            section="models",
            title="Models",
            page=page,
            links=page_links(request, page),
        )

    @router.get("/models/{name}")
    def model(request: Request, name: str, offset: str = "") -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        summary = reg.models.model(name)
        versions = reg.catalog.model_versions(name, offset=integer(offset, "offset", 0), limit=PAGE_SIZE)
        history = reg.models.history(name)[-HISTORY:][::-1]
        return site.render(
            request,
            "model.html",
            section="models",
            title=f"Model {name}",
            model=summary,
            versions=versions,
            links=page_links(request, versions),
            history=history,
        )

    @router.get("/models/{name}/{version}")
    def model_version(request: Request, name: str, version: str) -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        try:
            Version.parse(version)
        except (CharterError, ValueError):
            raise InvalidReference(f"{name}@{version}", "a model version such as name@1.2.0") from None
        ref = f"{name}@{version}"
        details = reg.models.describe(ref)
        training = [_dataset(reg, r) for r in details.version.spec.training.datasets]
        evaluated = {e.dataset: _dataset(reg, e.dataset) for e in details.evaluations}
        moves = [m for m in reg.models.history(name) if version in (m.from_version, m.to_version)]
        periods = [p for p in reg.provenance.production_periods(name) if p["version"] == version]
        return site.render(
            request,
            "model_version.html",
            section="models",
            title=ref,
            ref=ref,
            details=details,
            spec=details.version.spec.canonical(),
            training=training,
            evaluated=evaluated,
            evaluations=[e.as_dict() for e in details.evaluations],
            moves=moves[::-1],
            periods=periods,
        )


def _dataset(reg: Any, ref: str) -> dict[str, Any]:
    """A dataset version named by a spec or an evaluation: its facts, or that it is missing."""
    try:
        found = reg.datasets.get(ref)
    except CharterError as missing:
        return {"ref": ref, "missing": missing.message}
    return {"ref": found.ref, "role": found.role, "rows": found.row_count, "bytes": found.bytes_total,
            "digest": found.digest, "created_at": found.created_at, "missing": None}  # fmt: skip
