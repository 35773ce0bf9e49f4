"""The registry over HTTP: the same services, methods and result types as the embedded `Registry`.

`RemoteRegistry(url, token)` has `.models`, `.datasets`, `.prompts`, … whose methods take the
same arguments as the service methods and return the same result types, so the CLI and SDK code
above them run unchanged against a server (`CHARTER_URL` + `CHARTER_TOKEN`). Ordinary operations
are generated from the API's operation table (`charter.api.operations`); those that read or write
the caller's files run their local half here (`charter.client.transfer`). Errors come back as the
same `CharterError` subclasses the server raised, with the same message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from charter.client.errors import error_from_response, unreachable
from charter.wire import FIELDS_MEDIA_TYPE, to_jsonable

if TYPE_CHECKING:
    import httpx

    from charter.client.routing import RemoteRecorder, RemoteRouter

API_PREFIX = "/api/v1"
PAGE_SIZE = 1000

# Operations whose remote half runs here: service method → "module:function" under charter.client
# (the function takes the RemoteRegistry first, then the service method's own arguments).
LOCAL_HALVES: dict[tuple[str, str], str] = {
    ("datasets", "add"): "transfer:dataset_add",
    ("datasets", "checkout"): "transfer:dataset_checkout",
    ("datasets", "drift"): "transfer:dataset_drift",
    ("models", "register"): "transfer:model_register",
    ("models", "reproduce"): "transfer:model_reproduce",
    ("prompts", "sync"): "transfer:prompt_sync",
    ("prompts", "check"): "transfer:prompt_check",
    ("prompts", "export"): "transfer:prompt_export",
    ("prompts", "validate"): "transfer:prompt_validate",
    ("slots", "create"): "transfer:slot_create",
    ("reports", "evidence"): "reports:evidence",
    ("checkpoints", "verify"): "ledger:verify_checkpoints",
}


class ServiceProxy:
    """`remote.models` and friends: attribute access yields the operation's callable."""

    def __init__(self, remote: RemoteRegistry, service: str) -> None:
        self._remote, self._service = remote, service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        local = LOCAL_HALVES.get((self._service, method))
        if local is not None:
            import importlib

            module, _, function = local.partition(":")
            half = getattr(importlib.import_module(f"charter.client.{module}"), function)
            return functools.partial(half, self._remote)
        from charter.api.operations import BY_NAME

        name = f"{self._service}.{method}"
        if name not in BY_NAME:
            raise AttributeError(f"{name} is not available over the API")
        return functools.partial(self._remote.call, name)

    def __repr__(self) -> str:
        return f"<remote {self._service} at {self._remote.url}>"


class RemoteRegistry:
    """The SDK's remote mode: `charter.open(url=..., token=...)`."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        lib = _import_httpx()
        self.url = url.rstrip("/")
        self.http: httpx.Client = lib.Client(
            base_url=self.url + API_PREFIX,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": "charter-client",
                "Accept": f"{FIELDS_MEDIA_TYPE}, application/json;q=0.9, application/problem+json",
            },
            timeout=lib.Timeout(timeout, connect=10.0),
            transport=transport,
        )
        self._router: RemoteRouter | None = None
        self._recorder: RemoteRecorder | None = None
        for service in (
            "users",
            "tokens",
            "audit",
            "checkpoints",
            "policies",
            "webhooks",
            "models",
            "datasets",
            "prompts",
            "slots",
            "releases",
            "rollouts",
            "provenance",
            "reports",
        ):
            setattr(self, service, ServiceProxy(self, service))
        from charter.client.prompts import RemotePrompts

        self.prompts = RemotePrompts(ServiceProxy(self, "prompts"))  # `get` cached, with a fallback

    # --- the wire -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request; a problem response raises the error the server raised."""
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Perform the operation `name` ("models.promote") with the service method's arguments."""
        from charter.client.decode import decode
        from charter.client.signatures import client_signature

        signature = client_signature(name)
        arguments = _bind(name, signature.positional, args, kwargs)
        for key, value in list(arguments.items()):
            if key not in signature.accepted:
                if value is not None:
                    from charter.errors import InvalidInput

                    raise InvalidInput(f"{name}: {key!r} cannot be given to a remote server")
                del arguments[key]
        path = signature.operation.path.format(
            **{p: quote(str(arguments.pop(p)), safe="@") for p in signature.path}
        )
        verb = signature.operation.verb
        if verb == "GET":
            params = _query(arguments)
            if signature.operation.paged:
                data: Any = self._all_pages(path, params)
            else:
                data = self.request(verb, path, params=params).json()
        else:
            body = to_jsonable(arguments) if arguments else None
            data = self.request(verb, path, json=body).json()
        return decode(signature.returns, data)

    def _all_pages(self, path: str, params: list[tuple[str, str]]) -> list[Any]:
        items: list[Any] = []
        offset = 0
        while True:
            page_params = [*params, ("offset", str(offset)), ("page_size", str(PAGE_SIZE))]
            response = self.request("GET", path, params=page_params)
            page = response.json()
            if not isinstance(page, list):
                return page  # type: ignore[no-any-return]
            items.extend(page)
            if "next" not in response.links or not page:
                return items
            offset += len(page)

    # --- the registry-level conveniences of the embedded Registry -------------------------------

    @property
    def router(self) -> RemoteRouter:
        if self._router is None:
            from charter.client.routing import RemoteRouter

            self._router = RemoteRouter(self)
        return self._router

    @property
    def recorder(self) -> RemoteRecorder:
        if self._recorder is None:
            from charter.client.routing import RemoteRecorder

            self._recorder = RemoteRecorder(self)
        return self._recorder

    def route(self, slot: str, key: str | None = None) -> Any:
        return self.router.route(slot, key)

    def transaction(self, slot: str, key: str | None = None) -> Any:
        return self.recorder.transaction(slot, key)

    def flush(self) -> Any:
        return self.recorder.flush()

    def ingest(self, slot: str, source: str | Path | Iterable[str]) -> Any:
        from charter.client import transfer

        return transfer.ingest(self, slot, source)

    def routing_changed(self) -> None:
        if self._router is not None:
            self._router.invalidate()

    def trace(self, txn_id: str) -> Any:
        return self.call("provenance.trace", txn_id)

    def state(self, slot: str, at: datetime | None = None) -> Any:
        return self.call("provenance.state", slot, at)

    def state_diff(self, slot: str, t1: datetime, t2: datetime) -> Any:
        return self.call("provenance.state_diff", slot, t1, t2)

    def changes(self, since: datetime, until: datetime | None = None, *, slot: str | None = None) -> Any:
        return self.call("provenance.changes", since, until, slot=slot)

    def as_user(self, name: str) -> RemoteRegistry:
        from charter.errors import InvalidInput

        raise InvalidInput(
            f"a remote registry acts as its token's user; to act as {name!r}, use a token of {name!r}"
        )

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
        self.http.close()

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<charter remote registry at {self.url}>"


def _import_httpx() -> Any:
    """httpx, without its own command line: when click, rich and pygments are installed (they are:
    the CLI uses Typer and Rich), `import httpx` also imports `httpx._main` and with it all three,
    two thirds of the import's cost; a client never runs httpx's CLI. Hiding that one module during
    the import makes httpx take its fallback for a missing CLI; afterwards it imports as usual."""
    import sys

    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        import httpx

        return httpx
    sys.modules["httpx._main"] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        import httpx
    finally:
        del sys.modules["httpx._main"]
    return httpx


def _bind(
    name: str, positional: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    if len(args) > len(positional):
        raise TypeError(f"{name}() takes {len(positional)} positional arguments but {len(args)} were given")
    bound = dict(zip(positional, args, strict=False))
    for key, value in kwargs.items():
        if key in bound:
            raise TypeError(f"{name}() got multiple values for argument {key!r}")
        bound[key] = value
    return bound


def _query(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for key, value in arguments.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            params.append((key, _text(item)))
    return params


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
