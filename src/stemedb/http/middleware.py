"""Pure ASGI middleware (cheap on the hot path): request ids and access logs."""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics_middleware import route_template

access_log = logging.getLogger("stemedb.http.access")

# Request ids need to be unique, not unpredictable: 128 bits from a generator seeded once
# from the OS. ``uuid4`` reads ``os.urandom`` on every request, and that call releases the
# GIL: under load the event loop then waits for the journal thread to hand it back.
_ids = random.Random(int.from_bytes(os.urandom(32), "big"))


def new_request_id() -> str:
    """32 lowercase hex characters, like ``uuid4().hex``."""
    return f"{_ids.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Gives every request an id (kept from a sane incoming ``x-request-id``), puts it
    in ``scope["state"]`` and on every response as ``x-request-id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                extra: dict[str, Any] = {
                    "request_id": rid,
                    "method": scope.get("method"),
                    "route": route_template(scope) or "unmatched",
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                }
                agent = scope["state"].get("agent_id")
                if agent:
                    extra["agent"] = agent[:16]
                access_log.info("request", extra=extra)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            v = value.decode("latin-1")
            if 0 < len(v) <= 64 and all(c.isalnum() or c in "-_." for c in v):
                return v
    return None
