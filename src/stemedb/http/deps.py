"""Shared helpers of the routes: the database, bodies within limits, JSON answers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from ..access import principal_of, visible_namespaces
from ..engine import Database
from ..errors import PayloadTooLarge, UnsupportedMediaType


def db(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def namespaces(request: Request) -> tuple[str, ...] | None:
    """What this request may read: None (everything), or the namespaces its principal
    was granted (possibly none). See ``access.visible_namespaces``."""
    return visible_namespaces(principal_of(request.scope))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    if mime != "application/json":
        raise UnsupportedMediaType(f"Content-Type is {mime or 'missing'}; send application/json")
    for param in ctype.split(";")[1:]:
        k, _, v = param.partition("=")
        if k.strip().lower() == "charset" and v.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("the body must be UTF-8 (charset=utf-8)")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; at most {limit} are allowed")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
