"""Who is asking and how often, before anything else reads the request (pure ASGI).

One pass over the headers serves both checks:

- **Access**: a bearer token is resolved to a :class:`~stemedb.access.Principal` (the
  bootstrap admin token, compared in constant time, or a scoped token, looked up by its
  SHA-256) and put in the ASGI scope under ``PRINCIPAL_KEY``. Each route needs a scope:
  ``/v1/admin/quarantine*`` review, the rest of ``/v1/admin`` admin, reads (every other
  non-POST ``/v1`` route) read when ``[auth] read = "token"``. Signed writes (the POSTs
  outside ``/v1/admin``) are proven by the agent's signature and need no token. A token
  presented where none is needed is still checked, and its principal applies (so its
  namespaces restrict what it sees). Missing, unknown, expired or revoked: 401 with
  ``WWW-Authenticate: Bearer``; a token without the scope: 403.
- **Rate limits** per client address: every non-admin endpoint counts against the
  ``query`` class; admin requests count against ``admin`` unless they carry a valid
  token with the review scope (so guessing a token is slow, and an operator's scripted
  bulk review is never throttled), keyed by the client address (``X-Forwarded-For``
  believed only from trusted proxies). Health and metrics endpoints are never limited.
  Signed writes are further limited per agent inside the engine.

An anonymous request on a server whose reads are open costs nothing more than before:
no token, no lookup.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..access import PRINCIPAL_KEY, Principal
from ..auth import bearer, token_matches
from ..engine import Database, problem_of
from ..errors import Forbidden, RateLimited, StemeError, Unauthorized
from ..guards import retry_after_header
from ..settings import read_mode

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_KEYS_CACHED = 4096
BOOTSTRAP = Principal(name="admin", scope="admin", namespaces=("*",))

# What a route needs: nothing checked, a token checked if one is presented, or a scope.
NONE = ""
OPTIONAL = "optional"
ANY = "any"  # any valid token (``[auth] metrics = "token"``)


def needed_scope(method: str, path: str, reads_need_token: bool) -> str:
    """What a request to ``path`` needs: NONE, OPTIONAL, ANY or a scope (read, review,
    admin). Health checks and signed writes need nothing."""
    if not path.startswith("/v1/"):
        return NONE
    if path.startswith("/v1/admin"):
        if path == "/v1/admin/quarantine" or path.startswith("/v1/admin/quarantine/"):
            return "review"
        return "admin"
    if method == "POST":
        return NONE  # signed writes: the signature proves the agent
    return "read" if reads_need_token else OPTIONAL


class Credentials:
    """Turns an ``Authorization`` header into a principal (or refuses it)."""

    def __init__(self, database: Database, admin_token: str) -> None:
        self.admin_token = admin_token
        self.tokens = database.tokens

    def resolve(self, authorization: str | None) -> Principal | None:
        """The principal of a bearer token, None without one; ``Unauthorized`` for a
        token that is unknown, expired or revoked."""
        presented = bearer(authorization)
        if presented is None:
            if authorization:
                raise Unauthorized("send Authorization: Bearer <token>")
            return None
        if token_matches(self.admin_token, presented):
            return BOOTSTRAP
        return self.tokens.check(presented)


class AddressLimitMiddleware:
    def __init__(self, app: ASGIApp, database: Database, admin_token: str) -> None:
        self.app = app
        self.db = database
        self.credentials = Credentials(database, admin_token)
        auth = database.settings.auth
        self.reads_need_token = read_mode(database.settings) == "token"
        self.metrics_need_token = auth.metrics == "token"
        self._keys: dict[tuple[str | None, str | None], str] = {}  # (peer, forwarded) -> key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in EXEMPT:
            if path == "/metrics" and self.metrics_need_token:
                try:
                    if self.credentials.resolve(_header(scope, b"authorization")) is None:
                        raise Unauthorized("/metrics needs a token: send Authorization: "
                                           "Bearer <token>")
                except StemeError as e:
                    await _refuse(scope, send, e)
                    return
            await self.app(scope, receive, send)
            return
        need = needed_scope(scope["method"], path, self.reads_need_token)
        guards = self.db.guards
        cls = "admin" if path.startswith("/v1/admin") else "query"
        limited = cls in guards.limiters
        if need == NONE and not limited:
            await self.app(scope, receive, send)
            return
        forwarded = authorization = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        principal: Principal | None = None
        refused: StemeError | None = None
        if need != NONE and authorization is not None:
            try:
                principal = self.credentials.resolve(authorization)
            except Unauthorized as e:
                refused = e
        if limited and not (cls == "admin" and principal is not None
                            and principal.allows("review")):
            key = self._address(scope, forwarded)
            decision = guards.limiters[cls].check(key)
            if not decision.allowed:
                self.db.events.observe_rate_limited(cls)
                await _refuse(scope, send, RateLimited(
                    f"client {key} is over the {cls} rate limit",
                    retry_after=retry_after_header(decision.retry_after),
                    limit_headers=decision.headers()))
                return
        if need != NONE:
            if refused is None and principal is None and need != OPTIONAL:
                refused = Unauthorized(f"this route needs a token with the {need} scope: "
                                       "send Authorization: Bearer <token>")
            if refused is None and principal is not None and need not in (OPTIONAL, ANY) \
                    and not principal.allows(need):
                refused = Forbidden(f"token {principal.name!r} has the {principal.scope} "
                                    f"scope; this route needs {need}")
            if refused is not None:
                await _refuse(scope, send, refused)
                return
            if principal is not None:  # one an embedding layer set first stays (access.py)
                scope.setdefault(PRINCIPAL_KEY, principal)
        await self.app(scope, receive, send)

    def _address(self, scope: Scope, forwarded: str | None) -> str:
        client = scope.get("client")
        peer = client[0] if client else None
        key = self._keys.get((peer, forwarded))
        if key is None:  # parsing addresses costs more than the limiter itself
            key = self.db.guards.address(peer, forwarded)
            if len(self._keys) >= _KEYS_CACHED:
                self._keys.clear()
            self._keys[(peer, forwarded)] = key
        return key


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


async def _refuse(scope: Scope, send: Send, err: StemeError) -> None:
    """The problem+json answer of ``err``, before the app saw the request."""
    rid = scope.get("state", {}).get("request_id", "")
    body = orjson.dumps(problem_of(err, rid))
    headers = [(b"content-type", b"application/problem+json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers().items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
