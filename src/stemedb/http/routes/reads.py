"""GET /v1/assertions/{id}, /v1/assertions, /v1/search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ...errors import ValidationFailed
from ...model import instant_us, parse_time
from ...store import AssertionFilter
from ..deps import db, json_response, namespaces
from ..openapi import api
from ..routing import StrictQueryRoute
from .fast import FastRoute

router = APIRouter(route_class=StrictQueryRoute, tags=["reads"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def _time_us(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(parse_time(value).timestamp() * 1_000_000)
    except ValueError as e:
        raise ValidationFailed([{"field": name, "message": str(e)}]) from None


def valid_at_us(value: str | None) -> int | None:
    """A ``valid_at`` parameter (RFC 3339) as the instant valid times are compared at
    (unix microseconds, exactly as the stored bounds are: ``model.instant_us``)."""
    if value is None:
        return None
    try:
        return instant_us(value)
    except (ValueError, OverflowError) as e:
        raise ValidationFailed([{"field": "valid_at", "message": str(e)}]) from None


@router.get("/v1/assertions/{assertion_id}", **api(answer="Assertion", errors=(404,)))
async def get_assertion(request: Request, assertion_id: str) -> Response:
    """One assertion with its status, LSN, signature and exact signed body."""
    return _assertion(request, assertion_id)


def _assertion(request: Request, assertion_id: str) -> Response:
    # On the event loop: a read by primary key is ~20 µs of SQLite, much less than a
    # sync route's hop to the thread pool and back (~170 µs of CPU).
    return json_response(db(request).get_assertion(assertion_id, namespaces(request)))


async def _assertion_fast(request: Request) -> Response:
    return _assertion(request, request.path_params["assertion_id"])


fast_routes = [FastRoute("/v1/assertions/{assertion_id}", _assertion_fast)]


@router.get("/v1/assertions", **api(answer="AssertionPage"))
def list_assertions(
    request: Request,
    subject: str | None = None,
    predicate: str | None = None,
    object: str | None = None,
    agent_id: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
    context: str | None = None,
    since: str | None = None,
    until: str | None = None,
    as_of: str | None = None,
    valid_at: str | None = None,
    include_inactive: bool = False,
    limit: Limit = 100,
    cursor: str | None = None,
    id_prefix: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{8,64}$")] = None,
) -> Response:
    """Assertions newest first, filtered; ``as_of`` answers as the database stood then
    (transaction time), ``valid_at`` keeps the claims that hold at that time in the world
    (valid time: ``valid_from <= valid_at < valid_until``, open ends allowed).
    ``id_prefix`` (8 to 64 hex characters) keeps the ids that start with it: how a client
    turns the short id a table shows into the full one."""
    f = AssertionFilter(subject=subject, predicate=predicate, object=object, agent_id=agent_id,
                        context=context, since_us=_time_us("since", since),
                        until_us=_time_us("until", until), include_inactive=include_inactive,
                        limit=limit, valid_at_us=valid_at_us(valid_at),
                        id_prefix=id_prefix.lower() if id_prefix else None)
    return json_response(db(request).list_assertions(f, as_of, cursor, namespaces(request)))


@router.get("/v1/search", **api(answer="AssertionPage"))
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=1024)],
    limit: Limit = 20,
    as_of: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Full-text search over subject, predicate and object; plain words, best match first."""
    return json_response(db(request).search(q, limit, as_of, cursor, namespaces(request)))
