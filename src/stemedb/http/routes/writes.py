"""POST /v1/assert, /v1/assert/batch, /v1/retract."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ... import records
from ...engine import parse_batch
from ...errors import UnsupportedMediaType
from ...signing import SIGNATURE_HEADER
from ..deps import db, json_response, read_body, require_json
from ..middleware import access_log
from ..openapi import api
from .fast import FastRoute

router = APIRouter(tags=["writes"])

SIGNATURE_WHY = f"{SIGNATURE_HEADER} missing, malformed, or not valid for the body."


def agent_noter(request: Request) -> Callable[[str], None] | None:
    """What keeps the agent id prefix (as the body claims it, once the engine parsed it)
    for the access log; None when the log is off."""
    if not access_log.isEnabledFor(logging.INFO):
        return None
    state = request.scope.setdefault("state", {})

    def note(agent_id: str) -> None:
        state["agent_id"] = agent_id[:16]

    return note


async def _signed_write(request: Request, kind: str) -> Response:
    database = db(request)
    body = await read_body(request, database.settings.server.max_body_bytes)
    signature = request.headers.get(SIGNATURE_HEADER)
    note = agent_noter(request)
    try:
        require_json(request)
    except UnsupportedMediaType:
        database.refuse_if_banned(kind, body, signature, note)
        raise
    result = await database.write(kind, body, signature, note)
    return json_response(result.body, result.status)


@router.post("/v1/assert", status_code=201, **api(
    body="AssertionBody", signed=True, answer="WriteOutcome", status=201,
    answers={200: "WriteOutcome", 202: "WriteOutcome"},
    errors={401: SIGNATURE_WHY, 415: "", 503: "",
            403: "Superseding another agent's assertion.",
            409: "Nonce reused with another body, or the superseded assertion is not active."}))
async def post_assert(request: Request) -> Response:
    """Store one signed assertion (201), quarantine it (202), or answer a retry (200)."""
    return await _signed_write(request, records.ASSERT)


@router.post("/v1/retract", status_code=201, **api(
    body="RetractionBody", signed=True, answer="WriteOutcome", status=201,
    answers={200: "WriteOutcome"},
    errors={401: SIGNATURE_WHY, 415: "", 503: "",
            403: "The assertion is another agent's.", 404: "No such assertion.",
            409: "Nonce reused, or the assertion is no longer active."}))
async def post_retract(request: Request) -> Response:
    """Retract one of the signing agent's own assertions."""
    return await _signed_write(request, records.RETRACT)


@router.post("/v1/assert/batch", **api(
    body="BatchBody", answer="BatchResults", errors=(415, 503)))
async def post_batch(request: Request) -> Response:
    """Up to 1000 signed assertions; each item answered on its own."""
    database = db(request)
    require_json(request)
    body = await read_body(request, database.settings.server.max_batch_bytes)
    items = parse_batch(body, database.settings.server.max_batch_items)
    return json_response({"results": await database.write_batch(items)})


def any_query(_: object) -> bool:
    """The write routes read no query parameters; FastAPI's would ignore any given."""
    return True


# Single writes ahead of FastAPI's routing (see routes/fast.py): the same functions
# answer, FastAPI's routes stay in the OpenAPI schema.
fast_routes = [FastRoute(path, endpoint, any_query, method="POST")
               for path, endpoint in (("/v1/assert", post_assert), ("/v1/retract", post_retract),
                                      ("/v1/assert/batch", post_batch))]
