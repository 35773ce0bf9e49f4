"""Investigation: the full chain of a transaction, a slot's state at an instant (and what changed
between two), and evidence packs to download."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response

from charter.domain.times import parse_time
from charter.errors import InvalidInput
from charter.web.site import Site


def evidence_filename(target: str, at: str) -> str:
    """`evidence-support-llm_1.2.0.html`: the target with anything but [A-Za-z0-9._-] replaced."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", target.strip())[:120] or "target"
    suffix = "-at-" + re.sub(r"[^0-9T]+", "", at)[:15] if at else ""
    return f"evidence-{stem}{suffix}.html"


def add(router: APIRouter, site: Site) -> None:
    @router.get("/trace")
    def trace(request: Request, id: str = "") -> Response:
        viewer = site.viewer(request)
        found = viewer.registry.trace(id.strip()) if id.strip() else None
        return site.render(request, "trace.html", section="trace", title="Trace", txn=id.strip(), trace=found)

    @router.get("/state")
    def state(request: Request, slot: str = "", at: str = "", to: str = "") -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        when = parse_time(at) if at.strip() else None
        result = diff = None
        if slot:
            if to.strip():
                if when is None:
                    raise InvalidInput("give the first instant (at) to compare it with the second (to)")
                diff = reg.state_diff(slot, when, parse_time(to))
            else:
                result = reg.state(slot, when)
        return site.render(
            request,
            "state.html",
            section="state",
            title="State",
            slots=[s.name for s in reg.slots.list()],
            slot=slot,
            at=at,
            to=to,
            state=result,
            diff=diff,
            now=site.now(),
        )

    @router.get("/evidence")
    def evidence(request: Request, target: str = "", at: str = "") -> Response:
        viewer = site.viewer(request)
        if not target.strip():
            raise InvalidInput("say what the evidence pack is about: MODEL@VERSION, PROMPT-vN or SLOT")
        pack = viewer.registry.reports.evidence(target.strip(), at=parse_time(at) if at.strip() else None)
        filename = evidence_filename(target, at)
        return Response(
            pack.html,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )
