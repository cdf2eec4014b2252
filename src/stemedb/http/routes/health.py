"""GET /healthz (alive) and /readyz (journal writable and index caught up)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...errors import StemeError
from ..deps import db, json_response
from ..openapi import api
from .fast import FastRoute

router = APIRouter(tags=["health"])


@router.get("/healthz", **api(answer="Health"))
async def healthz() -> Response:  # on the event loop: no hop to the thread pool
    return json_response({"status": "ok"})


@router.get("/readyz", **api(answer="Readiness", answers={503: "Readiness"}))
def readyz(request: Request) -> Response:
    database = db(request)
    ok, reason = database.readiness()
    try:
        applied: int | None = database.reads.applied_lsn
    except StemeError as e:  # the database went away since: not ready, and why
        ok, reason, applied = False, e.detail, None
    body = {"status": "ready" if ok else "not_ready", "reason": reason,
            "applied_lsn": applied, "journal_lsn": database.store.last_lsn}
    return json_response(body, 200 if ok else 503, None if ok else {"Retry-After": "5"})


async def _healthz_fast(_: Request) -> Response:
    return await healthz()


# Load balancers probe often: ahead of FastAPI's routing (see routes/fast.py).
fast_routes = [FastRoute("/healthz", _healthz_fast)]
