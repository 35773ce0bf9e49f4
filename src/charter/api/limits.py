"""Request size limits, enforced while the body streams in (a missing Content-Length is no way round)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.api.problems import PROBLEM_JSON


class BodySizeLimit:
    """Refuses request bodies over `max_body` bytes with 413 before the handler sees them."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body and not refused:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}  # the handler stops reading; we answered
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # once refused, whatever the handler says is dropped
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        body: dict[str, Any] = {
            "type": "https://charter.dev/problems/invalid-input",
            "title": "BodyTooLarge",
            "status": 413,
            "error": "BodyTooLarge",
            "message": f"the request body is larger than the server accepts ({self.max_body} bytes); "
            "upload datasets and weights with the chunked transfer (`charter dataset add` does it)",
            "limit": self.max_body,
        }
        body["detail"] = body["message"]
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
