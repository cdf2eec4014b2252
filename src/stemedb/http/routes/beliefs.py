"""GET /v1/beliefs and /v1/disputes: the aggregated view (see docs/beliefs.md). The
engine decides what is served from its cache and what is computed off the event loop
(``Database.beliefs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ...errors import ValidationFailed
from ..deps import db, json_response, namespaces
from ..openapi import api
from ..routing import StrictQueryRoute
from ..schemas import ref
from .fast import FastRoute, plain_query
from .reads import valid_at_us

router = APIRouter(route_class=StrictQueryRoute, tags=["reads"])

SUBJECT_MAX, PREDICATE_MAX, CONTEXT_MAX = 512, 256, 128

Limit = Annotated[int, Query(ge=1, le=1000)]


def _text(name: str, value: str | None, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required or value is not None:
            raise ValidationFailed([{"field": name, "message": "must not be empty"}])
        return None
    return value


@router.get("/v1/beliefs", **api(answer={"anyOf": [ref("Belief"), ref("SubjectBeliefs")]}))
async def get_beliefs(
    request: Request,
    subject: Annotated[str, Query(max_length=SUBJECT_MAX)],
    predicate: Annotated[str | None, Query(max_length=PREDICATE_MAX)] = None,
    context: Annotated[str | None, Query(max_length=CONTEXT_MAX)] = None,
    as_of: str | None = None,
    valid_at: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Response:
    """Each distinct object with its trust-weighted score and the assertions behind it.

    Without ``predicate``, every predicate of the subject (paged with ``limit``/``cursor``).
    Without ``context``, claims in every context are pooled; ``context=`` (empty) means
    claims made without one. ``valid_at``: only claims that hold at that time in the world
    count (``valid_from <= valid_at < valid_until``); combinable with ``as_of``.
    """
    return await _beliefs(request, subject, predicate, context, as_of, limit, cursor,
                          valid_at_us(valid_at))


async def _beliefs(request: Request, subject: str, predicate: str | None, context: str | None,
                   as_of: str | None, limit: int = 100, cursor: str | None = None,
                   valid_at: int | None = None) -> Response:
    s = _text("subject", subject, required=True)
    assert s is not None
    body = await db(request).beliefs(s, _text("predicate", predicate), context, as_of, limit,
                                     cursor, namespaces(request), valid_at)
    return Response(body, media_type="application/json")


async def _beliefs_fast(request: Request) -> Response:
    params = request.query_params
    return await _beliefs(request, params["subject"], params.get("predicate"),
                          params.get("context"), params.get("as_of"))


_FAST_QUERY = {"subject": SUBJECT_MAX, "predicate": PREDICATE_MAX, "context": CONTEXT_MAX,
               "as_of": 64}

fast_routes = [
    FastRoute("/v1/beliefs", _beliefs_fast,
              lambda params: plain_query(params, _FAST_QUERY, required=("subject",))),
]


@router.get("/v1/disputes", **api(answer="DisputePage"))
def get_disputes(
    request: Request,
    limit: Limit = 100,
    cursor: str | None = None,
    as_of: str | None = None,
    subject: Annotated[str | None, Query(max_length=512)] = None,
    predicate: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """Contested subject/predicate/context keys, most contested first."""
    return json_response(db(request).disputes(as_of, limit, cursor,
                                              subject=_text("subject", subject),
                                              predicate=_text("predicate", predicate),
                                              namespaces=namespaces(request)))
