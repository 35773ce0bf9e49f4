"""Transfer routes for prompt files, validation plans, routing tables and transaction records."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from charter.api.auth import caller
from charter.api.transfer import BodyTooLarge, Strict, json_result, read_body, too_large
from charter.errors import InvalidInput
from charter.service.prompt_upload import MAX_FILES, PromptUpload
from charter.service.registry import Registry

Caller = Annotated[Registry, Depends(caller)]
Slot = Annotated[str, Path(description="a slot name", min_length=1, max_length=200)]
Ref = Annotated[str, Path(description="a prompt reference", min_length=1, max_length=300)]
MAX_INGEST_BODY = 48 * 1024 * 1024


class PromptFileBody(Strict):
    path: str = Field(min_length=1, max_length=4096)
    content: str  # base64 of the file's bytes
    git: dict[str, Any] | None = None


class PromptFiles(Strict):
    folder: str = Field(min_length=1, max_length=4096)
    files: list[PromptFileBody] = Field(max_length=MAX_FILES)


class PromptSync(PromptFiles):
    commit: str | None = None


class ValidationPlanRequest(Strict):
    sample: str = Field(min_length=1, max_length=300)
    min_pass_rate: int | float | None = None  # an integer stays one, as in the embedded messages
    min_samples: int | None = None


def build_apps_router() -> APIRouter:
    router = APIRouter(tags=["transfer"])

    @router.post("/prompt-files/sync", summary="Sync prompt files read from the client's folder")
    def sync_prompt_files(body: PromptSync, registry: Caller) -> Response:
        from charter.service.prompt_upload import sync_uploaded

        return json_result(sync_uploaded(registry, body.folder, _uploads(body), body.commit))

    @router.post("/prompt-files/check", summary="Lint prompt files read from the client's folder")
    def check_prompt_files(body: PromptFiles, registry: Caller) -> Response:
        from charter.service.prompt_upload import check_uploaded

        return json_result(check_uploaded(registry, body.folder, _uploads(body)))

    @router.get("/prompt-files/export", summary="The prompt files an export writes (path → text)")
    def export_prompt_files(
        registry: Caller, environment: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        from charter.service.prompt_sync import export_plan

        return json_result({"environment": environment, "files": export_plan(registry, environment)})

    @router.post(
        "/prompt-versions/{ref}/validation-plan",
        summary="What a validation run by the client will check, with the thresholds in force",
    )
    def validation_plan(ref: Ref, body: ValidationPlanRequest, registry: Caller) -> Response:
        from charter.service.validation_plan import plan_validation

        plan = plan_validation(registry, ref, body.sample, body.min_pass_rate, body.min_samples)
        return json_result(plan)

    @router.get(
        "/slots/{slot}/routing-table",
        summary="A slot's routing table and releases, for routing in the application's process",
        responses={304: {"description": "the table is unchanged since the entity tag sent"}},
    )
    def routing_table(
        slot: Slot,
        registry: Caller,
        if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
    ) -> Response:
        from charter.service.routing_table import routing_snapshot

        known = [tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",") if tag.strip()]
        tag, document = routing_snapshot(registry, slot, known)
        if document is None or "*" in known:
            return Response(status_code=304, headers={"ETag": tag})
        return json_result(document, headers={"ETag": tag, "Cache-Control": "no-cache"})

    @router.post(
        "/slots/{slot}/transactions",
        summary="Store a batch of transaction records (JSON Lines, as `charter txn ingest` reads)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "JSON Lines, one record per line (sent as application/x-ndjson or text/plain)",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def ingest(
        slot: Slot,
        request: Request,
        registry: Caller,
        first_line: Annotated[int, Query(ge=1, le=2**53)] = 1,
        loaded: Annotated[int, Query(ge=0, le=2**53)] = 0,
    ) -> Response:
        from charter.service.routing_table import ingest_batch

        try:
            body = await read_body(request, MAX_INGEST_BODY, "a batch of transaction records")
        except BodyTooLarge as exc:
            return too_large(exc)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"the records are not UTF-8 text (byte {exc.start}); send JSON Lines"
            ) from None
        counts = await run_in_threadpool(
            ingest_batch, registry, slot, text.split("\n"), first_line=first_line, loaded=loaded
        )
        return json_result(counts)

    return router


def _uploads(body: PromptFiles) -> list[PromptUpload]:
    uploads = []
    for item in body.files:
        try:
            content = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{item.path}: content must be the file's bytes in base64") from None
        uploads.append(PromptUpload(item.path, content, item.git))
    return uploads
