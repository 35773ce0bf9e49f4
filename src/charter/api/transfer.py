"""Routes for the operations that move the caller's files, which the operation table leaves out.

Their remote halves run in `charter.client.transfer`; these routes are the server's halves:

- chunks (`/blobs/...`): which ones the server lacks, sending one (checked against its digest, at
  most one chunk long), reading one back — for dataset uploads, model weights and checkouts;
- datasets and models: committing an upload, a version's manifest, a model's training data,
  drift against uploaded files (`charter.api.transfer_data`);
- prompt files, validation plans, routing tables with entity tags and batched transaction records
  (`charter.api.transfer_apps`).

Every route authenticates with the caller's token (`charter.api.auth.caller`) and leaves
authorisation to the service layer, so the roles are those of embedded mode. Inputs are checked
here for shape and size and in the service for meaning; every refusal is problem+json.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from charter.api.problems import problem
from charter.api.routes import respond
from charter.errors import InvalidInput


class Strict(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def build_transfer_router() -> APIRouter:
    from charter.api.transfer_apps import build_apps_router
    from charter.api.transfer_data import build_data_router

    router = APIRouter()
    router.include_router(build_data_router())
    router.include_router(build_apps_router())
    return router


class BodyTooLarge(InvalidInput):
    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"{what} is larger than {limit} bytes; {what} may have at most {limit}", limit=limit)


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused (`BodyTooLarge`) as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, what)
    parts: list[bytes] = []
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise BodyTooLarge(limit, what)
        parts.append(piece)
    return b"".join(parts)


def too_large(error: BodyTooLarge) -> Response:
    return problem(413, error.as_dict())


def json_result(result: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return respond(result, status, headers)
