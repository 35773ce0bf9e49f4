"""The audit ledger: filterable, paged by sequence, with the chain's verification."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from charter.domain.times import parse_time
from charter.web.site import Site, integer

PAGE = 50
FILTERS = ("subject", "actor", "action", "since", "until")


def add(router: APIRouter, site: Site) -> None:
    @router.get("/audit")
    def audit(
        request: Request,
        subject: str = "",
        actor: str = "",
        action: str = "",
        since: str = "",
        until: str = "",
        before: str = "",
        after: str = "",
        verify: str = "",
    ) -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        page = reg.audit.page(
            subject=subject.strip() or None,
            actor=actor.strip() or None,
            action=action.strip() or None,
            since=parse_time(since) if since.strip() else None,
            until=parse_time(until) if until.strip() else None,
            before=integer(before, "before", 0, low=1) if before else None,
            after=integer(after, "after", 0) if after else None,
            limit=PAGE,
        )
        kept = {k: v for k, v in request.query_params.items() if k in FILTERS and v}

        def link(**extra: int) -> str:
            return "/audit?" + urlencode({**kept, **{k: str(v) for k, v in extra.items()}})

        result, checked_at, events = site.verification(reg, force=verify == "1")
        return site.render(
            request,
            "audit.html",
            section="audit",
            title="Audit ledger",
            page=page,
            filters={k: request.query_params.get(k, "") for k in FILTERS},
            newer=None if page.newer is None else link(after=page.newer),
            older=None if page.older is None else link(before=page.older),
            verification=result,
            checked_at=checked_at,
            ledger_events=events,
            verify_link=link() + ("&" if kept else "") + "verify=1",
        )
