"""RFC 9457 problem+json answers for every error path. Never a stack trace or a path."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..engine import problem_of
from ..errors import PROBLEM_BASE, StemeError

log = logging.getLogger("stemedb.http")

PROBLEM_TYPE = "application/problem+json"

_HTTP_TITLES = {404: "Not found", 405: "Method not allowed", 400: "Bad request"}


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=int(body["status"]), headers=headers,
                    media_type=PROBLEM_TYPE)


def error_response(request: Request, e: StemeError) -> Response:
    return problem_response(problem_of(e, request_id(request)), e.headers())


def install(app: FastAPI) -> None:
    @app.exception_handler(StemeError)
    async def _steme(request: Request, e: StemeError) -> Response:
        return error_response(request, e)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> Response:
        errors = []
        for err in e.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body")]
            errors.append({"field": ".".join(loc) or "request", "message": str(err.get("msg"))})
        body = {"type": PROBLEM_BASE + "validation-failed", "title": "Request failed validation",
                "status": 422, "detail": "; ".join(f"{x['field']}: {x['message']}" for x in errors),
                "instance": request_id(request), "errors": errors}
        return problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> Response:
        title = _HTTP_TITLES.get(e.status_code, "HTTP error")
        detail = e.detail if isinstance(e.detail, str) and e.status_code != 404 else title
        if e.status_code == 404:
            detail = "no such resource"
        body = {"type": PROBLEM_BASE + title.lower().replace(" ", "-"), "title": title,
                "status": e.status_code, "detail": detail, "instance": request_id(request)}
        return problem_response(body, dict(e.headers or {}))

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        body = {"type": PROBLEM_BASE + "internal", "title": "Internal error", "status": 500,
                "detail": "the server failed to answer this request; see the server log",
                "instance": request_id(request)}
        return problem_response(body)
