"""The busiest GET routes, served ahead of FastAPI's per-request machinery.

FastAPI's routing through included routers, its dependency solving and its response
wrapping cost about 150 µs of CPU per request on the benchmark machine: several times a
point read in SQLite (~20 µs). So ``GET /v1/assertions/{id}`` and ``GET /v1/beliefs``
are also registered as plain Starlette routes at the front of the app's routing table
(``create_app``). A fast route matches only the requests it answers exactly as the
FastAPI route would — the same function answers behind both — and declines everything
else (another method, a parameter it does not expect, a value the FastAPI route would
refuse), which then falls through to the FastAPI route: it validates and answers as
before, and it is the one in the OpenAPI schema.

A fast endpoint reads the request's principal from the scope exactly as the FastAPI
route does (``deps.namespaces``): a reader restricted to namespaces gets the same
filtered answer on either path, never a cached answer computed over everything.

Errors raised by a fast endpoint go through the app's exception handlers like any
other (problem+json with the request id); the route template is put in the scope, so
metrics and access logs label the request as the FastAPI route would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

Accepts = Callable[[QueryParams], bool]


class FastRoute(Route):
    """A route for one method (GET unless told) that matches only when ``accepts`` says
    its query is one it answers (``None``: only requests without a query string)."""

    def __init__(self, path: str, endpoint: Callable[[Request], Awaitable[Response]],
                 accepts: Accepts | None = None, method: str = "GET") -> None:
        super().__init__(path, endpoint, methods=[method], include_in_schema=False)
        self.accepts = accepts
        self.method = method

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != self.method:
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        query = scope.get("query_string", b"")
        if not (self.accepts(QueryParams(query)) if self.accepts else not query):
            return Match.NONE, {}
        child["route"] = self
        return match, child


def plain_query(params: QueryParams, limits: Mapping[str, int], required: tuple[str, ...] = ()
                ) -> bool:
    """True when every parameter is one of ``limits`` (name -> most characters), given
    once, not empty and within its length, and every ``required`` one is there."""
    seen = set()
    for name, value in params.multi_items():
        most = limits.get(name)
        if most is None or name in seen or not value or len(value) > most:
            return False
        seen.add(name)
    return all(name in seen for name in required)
