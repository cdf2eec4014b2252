"""The dashboard's pages (GET). Reads run in the thread pool, off the event loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..defense import REASONS
from ..errors import AmbiguousId, NotFound, StemeError
from ..severity import SEVERITIES
from . import data
from .chart import line_chart
from .sessions import Session
from .web import db_of, namespaces_of, page, renderer, safe_next

PER_PAGE = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
GROUPS_PER_PAGE = 10
GROUP_PREVIEW = 5
STATUSES = ("pending", "approved", "rejected", "all")
BREAKER_DURATIONS = (
    (900, "15 minutes"),
    (3600, "1 hour"),
    (6 * 3600, "6 hours"),
    (86400, "24 hours"),
    (7 * 86400, "7 days"),
)


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        n = int(value or default)
    except ValueError:
        return default
    return min(max(n, lo), hi)


def _url(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return path + ("?" + urlencode(clean) if clean else "")


# -- overview ------------------------------------------------------------------------------


def _overview_context(request: Request) -> dict[str, Any]:
    ov = data.overview(db_of(request), namespaces=namespaces_of(request))
    chart = line_chart(
        ov.series, title="Pending quarantine items over the last hour", chart_id="pending-chart"
    )
    return {"ov": ov, "chart": chart, "nav_pending": ov.pending}


@page
async def overview(request: Request, session: Session) -> Response:
    ctx = await run_in_threadpool(_overview_context, request)
    return renderer(request).page(request, "overview.html", active="overview", **ctx)


@page
async def overview_live(request: Request, session: Session) -> Response:
    """The live part of the overview, for the page's refresh script."""
    ctx = await run_in_threadpool(_overview_context, request)
    return renderer(request).page(request, "_overview_live.html", fragment=True, **ctx)


@page
async def overview_json(request: Request, session: Session) -> Response:
    ov = await run_in_threadpool(data.overview, db_of(request), None, 10,
                                 namespaces_of(request))
    return JSONResponse(ov.to_dict(), headers={"Cache-Control": "no-store"})


# -- quarantine ----------------------------------------------------------------------------


def _quarantine_context(request: Request) -> dict[str, Any]:
    db = db_of(request)
    ns = namespaces_of(request)
    p = request.query_params
    errors: list[str] = []
    reason = p.get("reason") or None
    if reason is not None and reason not in REASONS:
        errors.append(f"Unknown reason {reason!r}: showing every reason.")
        reason = None
    severity = p.get("severity") or None
    if severity is not None and severity not in SEVERITIES:
        errors.append(f"Unknown severity {severity!r}: showing every severity.")
        severity = None
    agent_raw = (p.get("agent") or "").strip()
    agent_id: str | None = None
    if agent_raw:
        try:
            agent_id = (db.admin.resolve_agent(agent_raw) if ns is None
                        else db.admin.agent(agent_raw, ns)["agent_id"])
        except StemeError as e:
            errors.append(f"Agent filter: {e.detail}")
    view = "items" if agent_id or severity or p.get("view") == "items" else "agents"
    sort = p.get("sort") if p.get("sort") in ("count", "agent") else "count"
    status = p.get("status") if p.get("status") in STATUSES else "pending"
    per = _int(p.get("per"), DEFAULT_PER_PAGE, PER_PAGE[0], PER_PAGE[-1])
    if per not in PER_PAGE:
        per = DEFAULT_PER_PAGE
    reason_counts = data.reason_counts(db, ns)
    pending_total = sum(reason_counts.values())
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    ctx: dict[str, Any] = {
        "errors": errors,
        "reason": reason,
        "agent_raw": agent_raw,
        "agent_id": agent_id,
        "view": view,
        "sort": sort,
        "status": status,
        "per": per,
        "per_choices": PER_PAGE,
        "reasons": REASONS,
        "reason_counts": reason_counts,
        "severity": severity,
        "severities": SEVERITIES[::-1],
        "statuses": STATUSES,
        "pending_total": pending_total,
        "nav_pending": pending_total,
        "here": here,
        "next_q": urlencode({"next": here}),
    }
    if view == "agents":
        counts = data.agent_counts(db, reason, ns)
        if sort == "agent":
            counts.sort()
        pages = max(1, -(-len(counts) // GROUPS_PER_PAGE))
        gpage = _int(p.get("gpage"), 1, 1, pages)
        groups = []
        for aid, n in counts[(gpage - 1) * GROUPS_PER_PAGE : gpage * GROUPS_PER_PAGE]:
            groups.append(
                {
                    "agent_id": aid,
                    "count": n,
                    "agent": data.agent_brief(db, aid, ns),
                    "items": data.newest_pending(db, aid, reason, GROUP_PREVIEW, ns),
                }
            )
        ctx.update(
            groups=groups,
            agents_total=len(counts),
            gpage=gpage,
            gpages=pages,
            filtered_total=sum(n for _, n in counts),
            prev_url=_url("/quarantine", reason=reason, sort=sort, gpage=gpage - 1)
            if gpage > 1
            else None,
            next_url=_url("/quarantine", reason=reason, sort=sort, gpage=gpage + 1)
            if gpage < pages
            else None,
        )
        return ctx
    cursor = p.get("cursor") or None
    page_no = _int(p.get("page"), 1, 1, 10**9) if cursor else 1
    try:
        listing = db.admin.list_quarantine(
            agent_id=agent_id, reason=reason, status=status, limit=per, cursor=cursor,
            namespaces=ns,
            severity=severity,
        )
    except StemeError as e:
        errors.append(e.detail)
        listing = {"items": [], "total": 0, "next_cursor": None}
    base = {
        "view": "items",
        "agent": agent_id,
        "reason": reason,
        "severity": severity,
        "status": None if status == "pending" else status,
        "per": None if per == DEFAULT_PER_PAGE else per,
    }
    ctx.update(
        items=listing["items"],
        total=listing["total"],
        page_no=page_no,
        first_index=(page_no - 1) * per + 1,
        first_url=_url("/quarantine", **base) if cursor else None,
        next_url=_url("/quarantine", **base, cursor=listing["next_cursor"], page=page_no + 1)
        if listing["next_cursor"]
        else None,
        agent=data.agent_brief(db, agent_id, ns) if agent_id else None,
    )
    return ctx


@page
async def quarantine(request: Request, session: Session) -> Response:
    ctx = await run_in_threadpool(_quarantine_context, request)
    return renderer(request).page(request, "quarantine.html", active="quarantine", **ctx)


def _item_context(request: Request, qid: str) -> dict[str, Any]:
    db = db_of(request)
    ns = namespaces_of(request)
    item = db.admin.item(qid, ns)
    try:
        agent: dict[str, Any] | None = data.agent_summary(db, item["agent_id"], ns)
    except NotFound:
        agent = None
    default_back = _url("/quarantine", agent=item["agent_id"])
    back = request.query_params.get("next") or default_back
    return {
        "item": item,
        "agent": agent,
        "nav_pending": db.reads.pending_count(None, ns),
        "history": db.admin.audit(item["id"], 50)["items"],
        "agent_history": db.admin.audit(item["agent_id"], 20)["items"],
        "next": safe_next(back, default_back),
    }


@page
async def quarantine_item(request: Request, session: Session) -> Response:
    qid = request.path_params["qid"]
    try:
        ctx = await run_in_threadpool(_item_context, request, qid)
    except NotFound:
        return renderer(request).page(
            request,
            "error.html",
            status_code=404,
            title="Item not found",
            message=f"There is no quarantine item {qid}. It may have been purged after "
            "its retention period.",
            back="/quarantine",
        )
    except AmbiguousId as e:
        return renderer(request).page(
            request,
            "error.html",
            status_code=409,
            title="Several items match",
            message=f"{qid} is the start of several quarantine item ids "
            f"({', '.join(e.matches)}); give more of it.",
            back="/quarantine",
        )
    return renderer(request).page(request, "item.html", active="quarantine", **ctx)


def _agent_context(request: Request, agent: str) -> dict[str, Any]:
    db = db_of(request)
    ns = namespaces_of(request)
    summary = db.admin.agent(agent, ns)
    aid = summary["agent_id"]
    return {
        "agent": summary,
        "nav_pending": db.reads.pending_count(None, ns),
        "history": db.admin.audit(aid, 50)["items"],
        "items": db.admin.list_quarantine(
            agent_id=aid, reason=None, status="all", limit=20, cursor=None, namespaces=ns
        ),
    }


@page
async def agent_page(request: Request, session: Session) -> Response:
    agent = request.path_params["agent_id"]
    try:
        ctx = await run_in_threadpool(_agent_context, request, agent)
    except StemeError as e:
        return renderer(request).page(
            request,
            "error.html",
            status_code=e.status,
            title="Agent not found",
            message=e.detail,
            back="/quarantine",
        )
    return renderer(request).page(request, "agent.html", active="quarantine", **ctx)


# -- breakers ------------------------------------------------------------------------------


def _breakers_context(request: Request) -> dict[str, Any]:
    db = db_of(request)
    order = {"OPEN": 0, "HALF_OPEN": 1, "CLOSED": 2}
    items = sorted(
        db.admin.breakers()["circuit_breakers"],
        key=lambda b: (order.get(b["state"], 3), -b["failure_rate"], b["agent_id"]),
    )
    return {
        "breakers": items,
        "nav_pending": db.reads.pending_count(None, namespaces_of(request)),
        "prefill_agent": request.query_params.get("agent", "")[:64],
        "durations": BREAKER_DURATIONS,
        "open_count": sum(1 for b in items if b["state"] != "CLOSED"),
    }


@page
async def breakers(request: Request, session: Session) -> Response:
    ctx = await run_in_threadpool(_breakers_context, request)
    return renderer(request).page(request, "breakers.html", active="breakers", **ctx)


# -- content defense -----------------------------------------------------------------------

THRESHOLD_FIELDS = (
    (
        "quality_threshold",
        "Quality threshold",
        "0.01",
        "0",
        "1",
        "A write whose quality score is below this is quarantined as LowQuality.",
    ),
    (
        "confidence_threshold",
        "Confidence threshold",
        "0.01",
        "0",
        "1",
        "Above this confidence, a claim is expected to carry evidence.",
    ),
    (
        "duplicate_lookback_hours",
        "Duplicate look-back (hours)",
        "any",
        "0.001",
        "8760",
        "The same agent repeating the same claim within this window is a Duplicate.",
    ),
    (
        "untrusted_confidence_threshold",
        "Untrusted confidence threshold",
        "0.01",
        "0",
        "1",
        "At or above this confidence, a not-yet-trusted agent's claim is quarantined.",
    ),
)


def default_expiry() -> str:
    t = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    return t.strftime("%Y-%m-%dT%H:%M")


def _defense_context(request: Request) -> dict[str, Any]:
    db = db_of(request)
    return {
        "thresholds": db.admin.thresholds(),
        "fields": THRESHOLD_FIELDS,
        "allowlist": db.admin.allowlist()["allowlist"],
        "nav_pending": db.reads.pending_count(None, namespaces_of(request)),
        "prefill_agent": request.query_params.get("agent", "")[:64],
        "default_expiry": default_expiry(),
        "changes": [
            a
            for a in db.admin.audit(None, 200)["items"]
            if a["action"].startswith(("thresholds.", "allowlist."))
        ][:10],
    }


@page
async def defense(request: Request, session: Session) -> Response:
    ctx = await run_in_threadpool(_defense_context, request)
    return renderer(request).page(request, "defense.html", active="defense", **ctx)
