"""The overview: every slot with its production release and active rollout, the latest changes."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response

from charter.service.catalog import Page
from charter.web import charts
from charter.web.site import PAGE_SIZE, Site, integer, page_links

CHANGES = 15


def add(router: APIRouter, site: Site) -> None:
    @router.get("/")
    def overview(request: Request, offset: str = "") -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        start = integer(offset, "offset", 0)
        slots = reg.slots.list()
        shown = Page(tuple(slots[start : start + PAGE_SIZE]), start, PAGE_SIZE, len(slots))
        rows: list[dict[str, Any]] = []
        for slot in shown.items:
            production = None if slot.production is None else reg.releases.get(slot.production)
            status = (
                None
                if slot.rollout is None
                else site.live(reg, ("status", slot.name), partial(reg.rollouts.status, slot.name))
            )
            candidate = None if slot.rollout is None else reg.releases.get(slot.rollout["candidate"])
            traffic = (slot.rollout or {}).get("traffic") or {}
            rows.append(
                {
                    "slot": slot,
                    "production": production,
                    "status": status,
                    "candidate": candidate,
                    "split": charts.split_bar(
                        traffic.get("candidate", 0.0), traffic.get("shadow_sample", 0.0)
                    )
                    if slot.rollout
                    else None,
                }
            )
        totals = {
            "models": reg.catalog.models(limit=1).total,
            "prompts": reg.catalog.prompts(limit=1).total,
            "datasets": reg.catalog.datasets(limit=1).total,
            "slots": len(slots),
        }
        return site.render(
            request,
            "overview.html",
            section="overview",
            title="Overview",
            rows=rows,
            links=page_links(request, shown),
            totals=totals,
            changes=reg.audit.page(limit=CHANGES).events,
        )
