"""The dashboard's actions (POST): the same admin service calls as the admin API, with
``by`` the signed-in token's name (``dashboard`` for the bootstrap admin token). Each
needs a session and its CSRF token (see ``web.action``); quarantine decisions need the
review scope, the others (breakers, thresholds, allowlist) admin."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..errors import StemeError, ValidationFailed
from ..model import format_time, parse_time
from .sessions import Session
from .views import THRESHOLD_FIELDS
from .web import (
    Form,
    action,
    actor,
    db_of,
    done,
    failed,
    namespaces_of,
    require_admin_scope,
    safe_next,
)

MAX_TEXT = 4096
MAX_REASON = 1024


def _text(form: Form, name: str, limit: int = MAX_TEXT) -> str:
    return form.get(name)[:limit]


# -- quarantine ----------------------------------------------------------------------------


async def _decide(request: Request, session: Session, form: Form, verb: str) -> Response:
    qid = request.path_params["qid"]
    back = safe_next(form.get("next"), "/quarantine")
    note = _text(form, "note")
    if verb == "note" and not note:
        return done(
            request,
            session,
            kind="error",
            message="Write a note first.",
            to=f"/quarantine/{qid}?" + _next_query(back),
            status=422,
        )
    try:
        by = actor(request, session)
        item = await db_of(request).admin.decide(qid, verb, note or None, by,
                                                 namespaces_of(request))
    except StemeError as e:
        return failed(request, session, e, f"/quarantine/{qid}?" + _next_query(back))
    words = {"approve": "Approved", "reject": "Rejected", "note": "Added a note to"}
    to = back if verb != "note" else f"/quarantine/{qid}?" + _next_query(back)
    return done(
        request, session, kind="ok", message=f"{words[verb]} item {qid[:12]}…", to=to, body=item
    )


def _next_query(back: str) -> str:
    return urlencode({"next": back})


@action
async def approve(request: Request, session: Session, form: Form) -> Response:
    return await _decide(request, session, form, "approve")


@action
async def reject(request: Request, session: Session, form: Form) -> Response:
    return await _decide(request, session, form, "reject")


@action
async def note(request: Request, session: Session, form: Form) -> Response:
    return await _decide(request, session, form, "note")


@action
async def batch(request: Request, session: Session, form: Form) -> Response:
    """Approve or reject the selected items (``ids``), or every pending item of
    ``agent_id``."""
    back = safe_next(form.get("next"), "/quarantine")
    verb = form.get("action")
    ids = form.getlist("ids")
    agent = form.get("agent_id")
    if verb not in ("approve", "reject"):
        return done(
            request, session, kind="error", message="Choose approve or reject.", to=back, status=422
        )
    if not ids and not agent:
        return done(
            request,
            session,
            kind="error",
            message="Select at least one item first.",
            to=back,
            status=422,
        )
    try:
        result = await db_of(request).admin.batch(
            verb, None if agent else ids, agent or None, _text(form, "note") or None,
            actor(request, session), namespaces_of(request),
        )
    except StemeError as e:
        return failed(request, session, e, back)
    n = result["processed"]
    what = "approved" if verb == "approve" else "rejected"
    message = f"{n:,} item{'s' if n != 1 else ''} {what}"
    if agent:
        message += f" for agent {agent[:12]}"
    if result["skipped"]:
        message += f"; {len(result['skipped'])} skipped (already decided or gone)"
    return done(request, session, kind="ok", message=message + ".", to=back, body=result)


# -- breakers ------------------------------------------------------------------------------


def _duration(form: Form) -> float:
    raw = form.get("duration_seconds")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= 366 * 86400:
        raise ValidationFailed(
            [
                {
                    "field": "duration_seconds",
                    "message": "must be more than 0 seconds and at most 366 days",
                }
            ]
        )
    return value


@action
async def open_breaker(request: Request, session: Session, form: Form) -> Response:
    agent = form.get("agent_id")
    reason = _text(form, "reason", MAX_REASON)
    back = "/breakers"
    try:
        if not agent:
            raise ValidationFailed([{"field": "agent_id", "message": "give an agent id"}])
        if not reason:
            raise ValidationFailed([{"field": "reason", "message": "give a reason"}])
        by = require_admin_scope(request, session)
        result = await db_of(request).admin.open_breaker(agent, reason, _duration(form), by)
    except StemeError as e:
        return failed(request, session, e, back + ("?agent=" + agent[:64] if agent else ""))
    return done(
        request,
        session,
        kind="ok",
        message=f"Opened the breaker of {result['agent_id'][:12]}… until {result['until']}.",
        to=safe_next(form.get("next"), back),
        body=result,
    )


@action
async def reset_breaker(request: Request, session: Session, form: Form) -> Response:
    agent = request.path_params["agent_id"]
    reason = _text(form, "reason", MAX_REASON) or "reset from the dashboard"
    back = safe_next(form.get("next"), "/breakers")
    try:
        by = require_admin_scope(request, session)
        result = await db_of(request).admin.reset_breaker(agent, reason, by)
    except StemeError as e:
        return failed(request, session, e, back)
    return done(
        request,
        session,
        kind="ok",
        message=f"Reset the breaker of {result['agent_id'][:12]}… (CLOSED).",
        to=back,
        body=result,
    )


# -- content defense -----------------------------------------------------------------------


@action
async def set_thresholds(request: Request, session: Session, form: Form) -> Response:
    db = db_of(request)
    current = db.admin.thresholds()
    values: dict[str, Any] = {}
    errors = []
    for name, label, *_ in THRESHOLD_FIELDS:
        raw = form.get(name)
        if raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            errors.append(f"{label}: not a number")
            continue
        if value != current.get(name):
            values[name] = value
    if errors:
        return done(
            request, session, kind="error", message="; ".join(errors), to="/defense", status=422
        )
    if not values:
        return done(
            request,
            session,
            kind="info",
            message="No threshold changed.",
            to="/defense",
            body={"thresholds": current},
        )
    try:
        by = require_admin_scope(request, session)
        result = await db.admin.set_thresholds(values, by)
    except StemeError as e:
        return failed(request, session, e, "/defense")
    changed = ", ".join(f"{k} = {v:g}" for k, v in values.items())
    return done(
        request,
        session,
        kind="ok",
        message=f"Thresholds changed: {changed}.",
        to="/defense",
        body=result,
    )


def _expiry(raw: str) -> str:
    """An RFC 3339 time from the form: a full timestamp, or a ``datetime-local`` value
    (``YYYY-MM-DDTHH:MM``), read as UTC."""
    if not raw:
        raise ValidationFailed([{"field": "expires_at", "message": "give an expiry time"}])
    try:
        return format_time(parse_time(raw))
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return format_time(datetime.strptime(raw, fmt).replace(tzinfo=UTC))
        except ValueError:
            continue
    raise ValidationFailed(
        [{"field": "expires_at", "message": "use YYYY-MM-DDTHH:MM (UTC) or an RFC 3339 time"}]
    )


@action
async def allow(request: Request, session: Session, form: Form) -> Response:
    agent = form.get("agent_id")
    reason = _text(form, "reason", MAX_REASON)
    try:
        if not agent:
            raise ValidationFailed([{"field": "agent_id", "message": "give an agent id"}])
        if not reason:
            raise ValidationFailed([{"field": "reason", "message": "give a reason"}])
        result = await db_of(request).admin.allow(
            agent, _expiry(form.get("expires_at")), reason, require_admin_scope(request, session)
        )
    except StemeError as e:
        return failed(request, session, e, "/defense" + ("?agent=" + agent[:64] if agent else ""))
    return done(
        request,
        session,
        kind="ok",
        message=f"Allowlisted {result['agent_id'][:12]}… until {result['expires_at']}.",
        to="/defense",
        body=result,
    )


@action
async def disallow(request: Request, session: Session, form: Form) -> Response:
    agent = request.path_params["agent_id"]
    reason = _text(form, "reason", MAX_REASON) or "removed from the dashboard"
    try:
        by = require_admin_scope(request, session)
        result = await db_of(request).admin.disallow(agent, reason, by)
    except StemeError as e:
        return failed(request, session, e, "/defense")
    return done(
        request,
        session,
        kind="ok",
        message=f"Removed {result['agent_id'][:12]}… from the allowlist.",
        to="/defense",
        body=result,
    )
