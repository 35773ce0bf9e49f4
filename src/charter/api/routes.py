"""FastAPI routes generated from the operation table: parse, authenticate, call the service, render.

Each route is a synchronous function, so FastAPI runs it in its worker thread pool: a long dataset
upload or drift computation occupies one thread while the others keep serving reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from charter.api.auth import caller
from charter.api.guards import GUARDS
from charter.api.operations import OPERATIONS, Operation
from charter.api.signatures import Param, Signature, signature_of
from charter.service.registry import Registry
from charter.wire import FIELDS_MEDIA_TYPE, dumps, to_fields

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


# Whether the request being handled asked for the field encoding (set by `WireFormat`; context
# variables follow the request into the worker thread that runs a synchronous route).
_WANTS_FIELDS: ContextVar[bool] = ContextVar("charter_wants_fields", default=False)


class WireFormat:
    """ASGI middleware: notes whether the caller accepts the field encoding of results."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = dict(scope.get("headers") or []).get(b"accept", b"")
        token = _WANTS_FIELDS.set(FIELDS_MEDIA_TYPE.encode() in accept)
        try:
            await self.app(scope, receive, send)
        finally:
            _WANTS_FIELDS.reset(token)


def respond(result: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The result as the API's public JSON (`as_dict()`, what `--json` prints) or, when the caller
    asks for it (the remote client does), as the lossless field encoding."""
    if _WANTS_FIELDS.get():
        response = JsonResponse(to_fields(result), status_code=status, headers=headers)
        response.headers["content-type"] = FIELDS_MEDIA_TYPE
        return response
    return JsonResponse(result, status_code=status, headers=headers)


def build_router() -> APIRouter:
    router = APIRouter()
    for operation in OPERATIONS:
        signature = signature_of(operation)
        router.add_api_route(
            operation.path,
            _endpoint(signature),
            methods=[operation.verb],
            summary=operation.summary,
            name=operation.name,
            operation_id=operation.name.replace(".", "_"),
            status_code=operation.status,
            tags=[operation.service],
            response_class=JsonResponse,
        )
    return router


def _endpoint(signature: Signature) -> Callable[..., Response]:
    operation = signature.operation
    body_model = _body_model(signature) if operation.verb != "GET" and signature.other else None

    def endpoint(request: Request, registry: Registry, **arguments: Any) -> Response:
        body = arguments.pop("body", None)
        offset = arguments.pop("offset", 0)
        page_size = arguments.pop("page_size", DEFAULT_PAGE_SIZE)
        if body is not None:
            arguments.update(_fields(body))
        if operation.guard is not None:
            GUARDS[operation.guard](arguments, registry.settings)
        service = getattr(registry, operation.service)
        result = getattr(service, operation.method)(**arguments)
        if operation.paged and isinstance(result, list):
            return _page(request, result, offset, page_size, operation.status)
        return respond(result, operation.status)

    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(
            "registry", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Registry, Depends(caller)]
        ),
    ]
    for param in signature.path:
        parameters.append(_parameter(param, Path(description=param.name)))
    if operation.verb == "GET":
        for param in signature.other:
            parameters.append(_parameter(param, Query()))
    elif body_model is not None:
        parameters.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[body_model, Body()],
                default=inspect.Parameter.empty if _body_required(signature) else None,
            )
        )
    if operation.paged:
        parameters.append(
            inspect.Parameter(
                "offset", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[int, Query(ge=0)], default=0
            )
        )
        parameters.append(
            inspect.Parameter(
                "page_size",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)],
                default=DEFAULT_PAGE_SIZE,
            )
        )
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = operation.name.replace(".", "_")
    return endpoint


def _parameter(param: Param, source: Any) -> inspect.Parameter:
    return inspect.Parameter(
        param.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[param.annotation, source],
        default=inspect.Parameter.empty if param.required else param.default,
    )


def _body_required(signature: Signature) -> bool:
    return any(p.required for p in signature.other)


def _body_model(signature: Signature) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    for param in signature.other:
        default = ... if param.required else _json_default(param.default)
        fields[param.name] = (param.annotation, default)
    name = "".join(part.title() for part in signature.operation.name.replace(".", "_").split("_"))
    return pydantic.create_model(
        f"{name}Request",
        __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


def _json_default(value: Any) -> Any:
    """Defaults such as `()` become their JSON form in the schema."""
    return list(value) if isinstance(value, tuple) else value


def _fields(body: pydantic.BaseModel) -> dict[str, Any]:
    """The body's fields as the service expects them (defaults are the service's own)."""
    return {name: getattr(body, name) for name in type(body).model_fields}


def _page(request: Request, items: list[Any], offset: int, size: int, status: int) -> Response:
    page = items[offset : offset + size]
    headers = {"X-Total-Count": str(len(items))}
    if offset + size < len(items):
        following = request.url.include_query_params(offset=offset + size, page_size=size)
        headers["Link"] = f'<{following}>; rel="next"'
    return respond(page, status, headers)


def operation_for(name: str) -> Operation:
    from charter.api.operations import BY_NAME

    return BY_NAME[name]
