"""Checkpoint verification over the API: the caller's exported checkpoints and public key, checked
against the server's ledger (what `charter audit verify --checkpoints F --public-key K` sends)."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from charter.api.auth import caller
from charter.api.routes import JsonResponse, respond
from charter.service.registry import Registry


class VerifyCheckpoints(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    checkpoints: list[dict[str, Any]] = pydantic.Field(
        description="Checkpoints as `charter audit checkpoints --export` writes them"
    )
    public_key: str = pydantic.Field(description="The Ed25519 public key: 64 hex digits (raw key)")


def build_ledger_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/audit/checkpoints/verify",
        name="checkpoints.verify",
        operation_id="checkpoints_verify",
        summary="Prove the ledger still extends every signed checkpoint",
        tags=["checkpoints"],
        response_class=JsonResponse,
    )
    def verify(
        registry: Annotated[Registry, Depends(caller)],
        body: Annotated[VerifyCheckpoints, Body()],
    ) -> Response:
        from charter.domain.checkpoints import parse_checkpoints
        from charter.service.checkpoints import public_key_from_hex

        report = registry.checkpoints.verify(
            parse_checkpoints(body.checkpoints), public_key_from_hex(body.public_key)
        )
        return respond(report)

    return router
