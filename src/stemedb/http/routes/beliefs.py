"""GET /v1/beliefs and /v1/disputes: the aggregated view (see docs/beliefs.md).

An answer already computed for the LSN it would be given at is served on the event loop
(one indexed read and a dictionary look-up); computing one (milliseconds of Python) runs
in the thread pool, so it never holds up the loop's other requests.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...errors import ValidationFailed
from ...index import beliefs as q
from ...model import parse_time
from ..deps import db, json_response
from .fast import FastRoute, plain_query

router = APIRouter(tags=["reads"])

SUBJECT_MAX, PREDICATE_MAX, CONTEXT_MAX = 512, 256, 128

Limit = Annotated[int, Query(ge=1, le=1000)]


def _as_of_lsn(request: Request, as_of: str | None) -> int | None:
    """None for "now"; otherwise the LSN the database stood at (422 for a bad value)."""
    if as_of is None or as_of == "":
        return None
    return db(request).resolve_as_of(as_of)


def _reference_us(as_of: str | None) -> int | None:
    """The moment ``open_for_seconds`` is measured to: now, the ``as_of`` time, or (for
    ``lsn:N``) None, meaning the time LSN N was recorded."""
    if as_of is None or as_of == "":
        return int(time.time() * 1_000_000)
    if as_of.startswith("lsn:"):
        return None
    return int(parse_time(as_of).timestamp() * 1_000_000)


def _text(name: str, value: str | None, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required or value is not None:
            raise ValidationFailed([{"field": name, "message": "must not be empty"}])
        return None
    return value


@router.get("/v1/beliefs")
async def get_beliefs(
    request: Request,
    subject: Annotated[str, Query(max_length=SUBJECT_MAX)],
    predicate: Annotated[str | None, Query(max_length=PREDICATE_MAX)] = None,
    context: Annotated[str | None, Query(max_length=CONTEXT_MAX)] = None,
    as_of: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Response:
    """Each distinct object with its trust-weighted score and the assertions behind it.

    Without ``predicate``, every predicate of the subject (paged with ``limit``/``cursor``).
    Without ``context``, claims in every context are pooled; ``context=`` (empty) means
    claims made without one.
    """
    return await _beliefs(request, subject, predicate, context, as_of, limit, cursor)


async def _beliefs(request: Request, subject: str, predicate: str | None, context: str | None,
                   as_of: str | None, limit: int = 100, cursor: str | None = None) -> Response:
    s = _text("subject", subject, required=True)
    assert s is not None
    if as_of and not as_of.startswith("lsn:"):
        # Finding the LSN of a time can walk back through many records: not on the loop.
        lsn = await run_in_threadpool(_as_of_lsn, request, as_of)
    else:
        lsn = _as_of_lsn(request, as_of)
    p = _text("predicate", predicate)
    index = db(request).index
    if p is None:
        return json_response(
            await run_in_threadpool(q.subject_beliefs, index, s, context, lsn, limit, cursor)
        )
    body = q.cached_belief_json(index, s, p, context, lsn)
    if body is None:
        body = await run_in_threadpool(q.belief_json, index, s, p, context, lsn)
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


@router.get("/v1/disputes")
def get_disputes(
    request: Request,
    limit: Limit = 100,
    cursor: str | None = None,
    as_of: str | None = None,
    subject: Annotated[str | None, Query(max_length=512)] = None,
    predicate: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """Contested subject/predicate/context keys, most contested first."""
    lsn = _as_of_lsn(request, as_of)
    return json_response(
        q.disputes(
            db(request).index,
            lsn,
            limit,
            cursor,
            reference_us=_reference_us(as_of),
            subject=_text("subject", subject),
            predicate=_text("predicate", predicate),
        )
    )
