"""The evidence-pack route: the pack's facts (as `charter report --json` prints them) plus its HTML."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from charter.api.auth import caller
from charter.api.routes import JsonResponse, respond
from charter.service.registry import Registry
from charter.wire import FIELDS_MEDIA_TYPE


def build_reports_router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/reports/evidence",
        name="reports.evidence",
        operation_id="reports_evidence",
        summary="The evidence pack of a model version, prompt version or slot (with its HTML)",
        tags=["reports"],
        response_class=JsonResponse,
    )
    def evidence(
        request: Request,
        registry: Annotated[Registry, Depends(caller)],
        target: Annotated[str, Query(description="MODEL@X.Y.Z, PROMPT-vN or a slot name")],
        at: Annotated[datetime | None, Query(description="the instant to show (default: now)")] = None,
    ) -> Response:
        pack = registry.reports.evidence(target, at=at)
        if FIELDS_MEDIA_TYPE in request.headers.get("accept", ""):
            return respond(pack)  # every field, the HTML included
        return JsonResponse({**pack.as_dict(), "html": pack.html})

    return router
