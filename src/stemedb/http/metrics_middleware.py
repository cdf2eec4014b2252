"""Pure ASGI middleware timing every HTTP request for the Prometheus metrics.

Labels: method, route *template* (``/v1/assertions/{assertion_id}``, never the raw path,
so ids cannot blow up the series count) and status. Routing records the matched route
on the scope, and the scope dict is shared down the stack, so the template is there when
the request finishes: FastAPI's ``scope["fastapi"]["effective_route_context"].path_format``
(the full template, ``include_router`` prefixes included), else Starlette's
``scope["route"].path``. A response sent before routing (e.g. a 429 from a rate-limit
middleware) is matched against the app's path templates instead; a request that no route
matches is ``unmatched``. ``GET /metrics`` is recorded like any other route.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import UNMATCHED, Metrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        in_flight = self.metrics.http_in_flight

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            in_flight.dec()
            route = route_template(scope)
            if route is None:
                route = UNMATCHED if status == 404 else self._match(scope)
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )

    def _match(self, scope: Scope) -> str:
        """The template of a request answered before routing (rare, off the hot path)."""
        if self._templates is None:
            self._templates = path_templates(scope.get("app"))
        path = scope.get("path", "")
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        return UNMATCHED


def route_template(scope: Scope) -> str | None:
    """The path template of the route that served ``scope``; None if it was not routed."""
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        path = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
        if isinstance(path, str) and path:
            return path
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", UNMATCHED))
    return None


def path_templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """Path templates of an app with their regexes: the OpenAPI paths (full templates)
    and the app's top-level routes."""
    paths: list[str] = []
    with contextlib.suppress(Exception):  # not a FastAPI app, or no schema
        paths += list(app.openapi().get("paths", {}))
    for r in getattr(app, "routes", ()):
        path = getattr(r, "path", None)
        if isinstance(path, str):
            paths.append(path)
    out = []
    for path in dict.fromkeys(paths):
        try:
            out.append((compile_path(path)[0], path))
        except Exception:
            continue
    return out
