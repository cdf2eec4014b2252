"""GET /v1/beliefs and /v1/disputes: the aggregated view (see docs/beliefs.md)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ...errors import ValidationFailed
from ...index import beliefs as q
from ...model import parse_time
from ..deps import db, json_response

router = APIRouter(tags=["reads"])

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
def get_beliefs(
    request: Request,
    subject: Annotated[str, Query(max_length=512)],
    predicate: Annotated[str | None, Query(max_length=256)] = None,
    context: Annotated[str | None, Query(max_length=128)] = None,
    as_of: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Response:
    """Each distinct object with its trust-weighted score and the assertions behind it.

    Without ``predicate``, every predicate of the subject (paged with ``limit``/``cursor``).
    Without ``context``, claims in every context are pooled; ``context=`` (empty) means
    claims made without one.
    """
    s = _text("subject", subject, required=True)
    assert s is not None
    lsn = _as_of_lsn(request, as_of)
    index = db(request).index
    p = _text("predicate", predicate)
    if p is None:
        return json_response(q.subject_beliefs(index, s, context, lsn, limit, cursor))
    return json_response(q.belief(index, s, p, context, lsn))


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
