"""Per-address rate limiting, before anything else reads the request (pure ASGI).

Every non-admin endpoint counts against the ``query`` class; admin requests without the
right bearer token count against ``admin`` (so guessing the token is slow, and an
operator's scripted bulk review is never throttled), keyed by the client address (``X-Forwarded-For`` believed only from trusted
proxies). Health and metrics endpoints are never limited. Signed writes are further
limited per agent inside the engine, after the signature proves the agent.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import bearer, token_matches
from ..engine import Database, problem_of
from ..errors import RateLimited
from ..guards import retry_after_header

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_KEYS_CACHED = 4096


class AddressLimitMiddleware:
    def __init__(self, app: ASGIApp, database: Database, admin_token: str) -> None:
        self.app = app
        self.db = database
        self.admin_token = admin_token
        self._keys: dict[tuple[str | None, str | None], str] = {}  # (peer, forwarded) -> key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        guards = self.db.guards
        cls = "admin" if scope["path"].startswith("/v1/admin") else "query"
        if cls not in guards.limiters:
            await self.app(scope, receive, send)
            return
        forwarded = authorization = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        if cls == "admin" and token_matches(self.admin_token, bearer(authorization)):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        key = self._keys.get((peer, forwarded))
        if key is None:  # parsing addresses costs more than the limiter itself
            key = guards.address(peer, forwarded)
            if len(self._keys) >= _KEYS_CACHED:
                self._keys.clear()
            self._keys[(peer, forwarded)] = key
        decision = guards.limiters[cls].check(key)
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        self.db.events.observe_rate_limited(cls)
        err = RateLimited(f"client {key} is over the {cls} rate limit",
                          retry_after=retry_after_header(decision.retry_after),
                          limit_headers=decision.headers())
        rid = scope.get("state", {}).get("request_id", "")
        body = orjson.dumps(problem_of(err, rid))
        headers = [(b"content-type", b"application/problem+json"),
                   (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in err.headers().items()]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
