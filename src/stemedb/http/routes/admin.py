"""/v1/admin/*: quarantine review, retractions, breakers, allowlist, thresholds, API tokens,
agent enrollment, audit — bearer token required (the review scope for quarantine, admin
for the rest; the middleware checks it, see ``guard_middleware``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from ...access import principal_of
from ...errors import Forbidden, Unauthorized, ValidationFailed
from ...model import _field_errors, load_json
from ..deps import db, json_response, namespaces, read_body
from ..guard_middleware import BOOTSTRAP
from ..openapi import AGENT_ERRORS, api
from ..routing import StrictQueryRoute

ADMIN_BODY_LIMIT = 1024 * 1024
ACTOR_HEADER = "x-admin-actor"


def require_admin(request: Request) -> str:
    """Who acts, as the audit log records it: a scoped token's name, or for the bootstrap
    admin token ``admin:`` + ``X-Admin-Actor`` (default ``admin``). The middleware has
    checked the token and its scope; without a principal nothing is allowed."""
    p = principal_of(request.scope)
    if p is None:
        raise Unauthorized("send Authorization: Bearer <token>; see docs/security.md#tokens")
    if not p.allows("review"):
        raise Forbidden(f"token {p.name!r} has the {p.scope} scope; this route needs review")
    if p is not BOOTSTRAP:
        return p.name
    actor = request.headers.get(ACTOR_HEADER, "admin").strip()[:64] or "admin"
    return "admin:" + "".join(ch for ch in actor if ch.isprintable())


router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/admin", tags=["admin"],
                   dependencies=[Depends(require_admin)])
Actor = Annotated[str, Depends(require_admin)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoteBody(_Body):
    note: Annotated[str, Field(max_length=4096)] = ""


class RejectBody(_Body):
    reason: Annotated[str, Field(max_length=4096)] = ""


class RequiredNote(_Body):
    note: Annotated[str, Field(min_length=1, max_length=4096)]


class BatchBody(_Body):
    action: str
    ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100_000)] | None = None
    agent_id: str | None = None
    reason: Annotated[str, Field(max_length=4096)] = ""
    note: Annotated[str, Field(max_length=4096)] = ""


class RetractBody(_Body):
    reason: Annotated[str, Field(min_length=1, max_length=4096)]


class OpenBody(_Body):
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    duration_seconds: Annotated[float, Field(gt=0, le=366 * 86400)]


class ResetBody(_Body):
    reason: Annotated[str, Field(max_length=1024)] = ""


class AllowBody(_Body):
    agent_id: str
    expires_at: str
    reason: Annotated[str, Field(min_length=1, max_length=1024)]


class TokenBody(_Body):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    scope: str
    namespaces: Annotated[list[Annotated[str, Field(max_length=256)]],
                          Field(max_length=256)] | None = None
    expires: Annotated[str, Field(max_length=64)] | None = None


class RevokeTokenBody(_Body):
    reason: Annotated[str, Field(max_length=1024)] = ""


class ThresholdsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quality_threshold: float | None = None
    confidence_threshold: float | None = None
    duplicate_lookback_hours: float | None = None
    untrusted_confidence_threshold: float | None = None


async def parse(request: Request, model: type[_Body] | type[ThresholdsBody],
                optional: bool = False) -> Any:
    raw = await read_body(request, ADMIN_BODY_LIMIT)
    if not raw.strip():
        if optional:
            return model()
        raise ValidationFailed([{"field": "body", "message": "a JSON body is required"}])
    data = load_json(raw)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ValidationFailed(_field_errors(e)) from None


@router.get("/quarantine", **api(answer="QuarantinePage"))
def list_quarantine(request: Request, agent_id: str | None = None, reason: str | None = None,
                    status: str = "pending", limit: Annotated[int, Query()] = 1000,
                    cursor: str | None = None, severity: str | None = None) -> Response:
    """Quarantine items, newest first: ``{"items", "total", "next_cursor"}``."""
    return json_response(db(request).admin.list_quarantine(
        agent_id=agent_id, reason=reason, status=status, limit=limit, cursor=cursor,
        namespaces=namespaces(request), severity=severity))


@router.get("/quarantine/{qid}", **api(answer="QuarantineItem", errors=(404,)))
def get_item(request: Request, qid: str) -> Response:
    return json_response(db(request).admin.item(qid, namespaces(request)))


@router.post("/quarantine/batch", **api(
    body="QuarantineBatch", answer="BatchDecision", errors=AGENT_ERRORS))
async def batch(request: Request, actor: Actor) -> Response:
    b: BatchBody = await parse(request, BatchBody)
    why = b.reason if b.action == "reject" else b.note
    return json_response(await db(request).admin.batch(b.action, b.ids, b.agent_id, why, actor,
                                                       namespaces(request)))


@router.post("/quarantine/{qid}/approve", **api(
    body=NoteBody, body_required=False, answer="QuarantineItem",
    errors={404: "", 409: "The item is already decided (`current`)."}))
async def approve(request: Request, qid: str, actor: Actor) -> Response:
    b: NoteBody = await parse(request, NoteBody, optional=True)
    return json_response(await db(request).admin.decide(qid, "approve", b.note, actor,
                                                        namespaces(request)))


@router.post("/quarantine/{qid}/reject", **api(
    body=RejectBody, body_required=False, answer="QuarantineItem",
    errors={404: "", 409: "The item is already decided (`current`)."}))
async def reject(request: Request, qid: str, actor: Actor) -> Response:
    b: RejectBody = await parse(request, RejectBody, optional=True)
    return json_response(await db(request).admin.decide(qid, "reject", b.reason, actor,
                                                        namespaces(request)))


@router.post("/quarantine/{qid}/notes", status_code=201, **api(
    body=RequiredNote, answer="QuarantineItem", status=201, errors={404: ""}))
async def add_note(request: Request, qid: str, actor: Actor) -> Response:
    b: RequiredNote = await parse(request, RequiredNote)
    return json_response(await db(request).admin.decide(qid, "note", b.note, actor,
                                                        namespaces(request)), 201)


@router.post("/assertions/{aid}/retract", **api(
    body=RetractBody, answer="AdminRetraction",
    errors={404: "No such assertion.", 409: "The assertion is not active."}))
async def retract(request: Request, aid: str, actor: Actor) -> Response:
    """Retract any agent's active assertion (journaled with who and why)."""
    b: RetractBody = await parse(request, RetractBody)
    return json_response(await db(request).admin.retract(aid, b.reason, actor,
                                                         namespaces(request)))


@router.get("/circuit_breakers", **api(answer="BreakerList"))
def list_breakers(request: Request) -> Response:
    """Every tracked agent's breaker: OPEN first, then HALF_OPEN, then by failure rate."""
    return json_response(db(request).admin.breakers())


@router.get("/circuit_breakers/{agent_id}", **api(answer="Breaker", errors=AGENT_ERRORS))
def get_breaker(request: Request, agent_id: str) -> Response:
    return json_response(db(request).admin.breaker(agent_id))


@router.post("/circuit_breakers/{agent_id}/open", **api(
    body=OpenBody, answer="BreakerOpened", errors=AGENT_ERRORS))
async def open_breaker(request: Request, agent_id: str, actor: Actor) -> Response:
    """Ban an agent by hand for ``duration_seconds`` (journaled; survives restarts)."""
    b: OpenBody = await parse(request, OpenBody)
    return json_response(await db(request).admin.open_breaker(agent_id, b.reason,
                                                              b.duration_seconds, actor))


@router.post("/circuit_breakers/{agent_id}/reset", **api(
    body=ResetBody, body_required=False, answer="BreakerReset",
    errors=AGENT_ERRORS))
async def reset_breaker(request: Request, agent_id: str, actor: Actor) -> Response:
    b: ResetBody = await parse(request, ResetBody, optional=True)
    return json_response(await db(request).admin.reset_breaker(agent_id, b.reason, actor))


@router.get("/content_defense/thresholds", **api(answer="Thresholds"))
def get_thresholds(request: Request) -> Response:
    return json_response(db(request).admin.thresholds())


@router.put("/content_defense/thresholds", **api(
    body="ThresholdsChange", answer="Thresholds"))
async def put_thresholds(request: Request, actor: Actor) -> Response:
    b: ThresholdsBody = await parse(request, ThresholdsBody)
    values = {k: getattr(b, k) for k in b.model_fields_set}
    nulls = [{"field": k, "message": "must be a number, not null"}
             for k, v in values.items() if v is None]
    if nulls:
        raise ValidationFailed(nulls)
    return json_response(await db(request).admin.set_thresholds(values, actor))


@router.get("/content_defense/allowlist", **api(answer="Allowlist"))
def get_allowlist(request: Request) -> Response:
    return json_response(db(request).admin.allowlist())


@router.post("/content_defense/allowlist", status_code=201, **api(
    body="AllowlistAdd", answer="AllowlistEntry", status=201, errors=AGENT_ERRORS))
async def add_allowlist(request: Request, actor: Actor) -> Response:
    b: AllowBody = await parse(request, AllowBody)
    return json_response(await db(request).admin.allow(b.agent_id, b.expires_at, b.reason, actor),
                         201)


@router.delete("/content_defense/allowlist/{agent_id}", **api(
    answer="AllowlistRemoved", errors={404: "The agent is not on the allowlist."}))
async def remove_allowlist(request: Request, agent_id: str, actor: Actor) -> Response:
    return json_response(await db(request).admin.disallow(agent_id, "removed", actor))


@router.get("/tokens", **api(answer="TokenList"))
def list_tokens(request: Request) -> Response:
    """Every API token, newest first: name, scope, namespaces, status, expiry, last use
    (never the secret nor its hash)."""
    return json_response(db(request).tokens.listing())


@router.post("/tokens", status_code=201, **api(
    body=TokenBody, answer="Token", status=201,
    errors={409: "A live token already has the name."}))
async def create_token(request: Request, actor: Actor) -> Response:
    """A new scoped token; the answer carries its secret, this once."""
    b: TokenBody = await parse(request, TokenBody)
    return json_response(await db(request).tokens.create(b.name, b.scope, b.namespaces,
                                                          b.expires, actor), 201)


@router.post("/tokens/{name}/revoke", **api(
    body=RevokeTokenBody, body_required=False, answer="TokenRevoked",
    errors={404: "No live token has the name."}))
async def revoke_token(request: Request, name: str, actor: Actor) -> Response:
    b: RevokeTokenBody = await parse(request, RevokeTokenBody, optional=True)
    return json_response(await db(request).tokens.revoke(name, b.reason, actor))


@router.get("/audit", **api(answer="Audit"))
def audit(request: Request, target: str | None = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Response:
    """Admin decisions, newest first (optionally of one item or agent)."""
    return json_response(db(request).admin.audit(target, limit))


class EnrollBody(_Body):
    namespaces: Annotated[list[Annotated[str, Field(max_length=256)]],
                          Field(max_length=256)] | None = None
    note: Annotated[str, Field(max_length=4096)] = ""


class RevokeBody(_Body):
    reason: Annotated[str, Field(min_length=1, max_length=4096)]


@router.get("/agents", **api(answer="EnrollmentList"))
def list_agents(request: Request) -> Response:
    """The enrollment mode and every enrolled or revoked agent key."""
    return json_response(db(request).enrollment.listing())


@router.post("/agents/{agent_id}/enroll", status_code=201, **api(
    body=EnrollBody, body_required=False, answer="Enrollment", status=201,
    errors={**AGENT_ERRORS, 409: "The key was revoked, or the prefix matches several."}))
async def enroll_agent(request: Request, agent_id: str, actor: Actor) -> Response:
    """Enroll a key into its namespaces (``*`` for all), or replace them (journaled)."""
    b: EnrollBody = await parse(request, EnrollBody, optional=True)
    return json_response(await db(request).enrollment.enroll(agent_id, b.namespaces, b.note,
                                                             actor), 201)


@router.post("/agents/{agent_id}/revoke", **api(
    body=RevokeBody, answer="AgentRevoked",
    errors={**AGENT_ERRORS, 409: "The key was revoked already, or the prefix matches several."}))
async def revoke_agent(request: Request, agent_id: str, actor: Actor) -> Response:
    """Revoke a key for good (journaled): its writes are refused, its assertions leave
    beliefs and disputes from this point on."""
    b: RevokeBody = await parse(request, RevokeBody)
    return json_response(await db(request).enrollment.revoke(agent_id, b.reason, actor))
