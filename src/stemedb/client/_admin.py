"""``client.admin``: the admin API (SPEC §6 and the server's additions), one method per
endpoint, for the sync and the async client.

Every call carries the client's admin token (``Authorization: Bearer``) and, when one is
given, who acts (``X-Admin-Actor``, kept in the audit log). Answers are the server's
JSON; a problem answer raises :class:`ApiError` like every other call. Decisions are
POSTs and are not re-sent after a read error (a second approve would answer 409).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import orjson

from ._bodies import Timestamp, format_timestamp
from ._core import _Call, _params, _seg

if TYPE_CHECKING:
    from typing_extensions import Unpack

ADMIN = "/v1/admin"
ACTOR_HEADER = "X-Admin-Actor"
BatchAction = Literal["approve", "reject"]
TokenScope = Literal["read", "review", "admin"]


class QuarantineFilters(TypedDict, total=False):
    """Filters of ``GET /v1/admin/quarantine``; unset or None filters are not sent."""

    agent_id: str | None  # or a unique prefix of at least 8 hex characters
    reason: str | None  # Duplicate | LowQuality | UntrustedHighConfidence
    status: str | None  # pending (the server's default) | approved | rejected | all
    limit: int | None
    cursor: str | None
    severity: str | None  # low | medium | high | critical


def _id(value: str) -> str:
    # Ids are pasted from terminals and files; surrounding blanks are never part of one.
    return _seg(value.strip())


class _AdminCalls:
    """The admin requests, built once for both namespaces."""

    def __init__(self, actor: str | None) -> None:
        self.headers = {ACTOR_HEADER: actor} if actor else {}

    def _call(self, method: str, path: str, body: Any = None,
              params: Mapping[str, Any] | None = None) -> _Call:  # fmt: skip
        headers = dict(self.headers)
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        return _Call(method, ADMIN + path, params=_params(params or {}), content=content,
                     headers=headers, idempotent=method != "POST")  # fmt: skip

    def quarantine(self, filters: Mapping[str, Any]) -> _Call:
        unknown = set(filters) - set(QuarantineFilters.__annotations__)
        if unknown:
            raise TypeError(f"unknown quarantine filter(s): {', '.join(sorted(unknown))}")
        return self._call("GET", "/quarantine", params=filters)

    def item(self, qid: str) -> _Call:
        return self._call("GET", f"/quarantine/{_id(qid)}")

    def approve(self, qid: str, note: str | None) -> _Call:
        body = {"note": note} if note else None
        return self._call("POST", f"/quarantine/{_id(qid)}/approve", body)

    def reject(self, qid: str, reason: str | None) -> _Call:
        body = {"reason": reason} if reason else None
        return self._call("POST", f"/quarantine/{_id(qid)}/reject", body)

    def add_note(self, qid: str, note: str) -> _Call:
        return self._call("POST", f"/quarantine/{_id(qid)}/notes", {"note": note})

    def batch(self, action: BatchAction, ids: Iterable[str] | None, agent_id: str | None,
              reason: str | None, note: str | None) -> _Call:  # fmt: skip
        if (ids is None) == (agent_id is None):
            raise ValueError("give either ids or agent_id")
        body: dict[str, Any] = {"action": action}
        if ids is not None:
            body["ids"] = list(ids)
        else:
            body["agent_id"] = agent_id
        if reason:
            body["reason"] = reason
        if note:
            body["note"] = note
        return self._call("POST", "/quarantine/batch", body)

    def retract(self, assertion_id: str, reason: str) -> _Call:
        return self._call("POST", f"/assertions/{_id(assertion_id)}/retract", {"reason": reason})

    def breakers(self) -> _Call:
        return self._call("GET", "/circuit_breakers")

    def breaker(self, agent_id: str) -> _Call:
        return self._call("GET", f"/circuit_breakers/{_id(agent_id)}")

    def open_breaker(self, agent_id: str, reason: str, duration_seconds: float) -> _Call:
        body = {"reason": reason, "duration_seconds": duration_seconds}
        return self._call("POST", f"/circuit_breakers/{_id(agent_id)}/open", body)

    def reset_breaker(self, agent_id: str, reason: str | None) -> _Call:
        body = {"reason": reason} if reason else None
        return self._call("POST", f"/circuit_breakers/{_id(agent_id)}/reset", body)

    def thresholds(self) -> _Call:
        return self._call("GET", "/content_defense/thresholds")

    def set_thresholds(self, values: Mapping[str, float]) -> _Call:
        return self._call("PUT", "/content_defense/thresholds", dict(values))

    def allowlist(self) -> _Call:
        return self._call("GET", "/content_defense/allowlist")

    def allow(self, agent_id: str, expires_at: Timestamp, reason: str) -> _Call:
        body = {"agent_id": agent_id, "expires_at": format_timestamp(expires_at), "reason": reason}
        return self._call("POST", "/content_defense/allowlist", body)

    def disallow(self, agent_id: str) -> _Call:
        return self._call("DELETE", f"/content_defense/allowlist/{_id(agent_id)}")

    def audit(self, target: str | None, limit: int | None) -> _Call:
        return self._call("GET", "/audit", params={"target": target, "limit": limit})

    def agents(self) -> _Call:
        return self._call("GET", "/agents")

    def enroll(self, agent_id: str, namespaces: Iterable[str], note: str | None) -> _Call:
        body: dict[str, Any] = {"namespaces": list(namespaces)}
        if note:
            body["note"] = note
        return self._call("POST", f"/agents/{_id(agent_id)}/enroll", body)

    def revoke(self, agent_id: str, reason: str) -> _Call:
        return self._call("POST", f"/agents/{_id(agent_id)}/revoke", {"reason": reason})
    def tokens(self) -> _Call:
        return self._call("GET", "/tokens")

    def create_token(self, name: str, scope: TokenScope, namespaces: Iterable[str],
                     expires: Timestamp | str | None) -> _Call:  # fmt: skip
        body: dict[str, Any] = {"name": name, "scope": scope, "namespaces": list(namespaces)}
        if expires is not None:
            body["expires"] = expires if isinstance(expires, str) else format_timestamp(expires)
        return self._call("POST", "/tokens", body)

    def revoke_token(self, name: str, reason: str | None) -> _Call:
        return self._call("POST", f"/tokens/{_id(name)}/revoke", {"reason": reason or ""})


class Admin:
    """``client.admin``: the admin API of a :class:`~stemedb.client.Client`.

    The client needs ``admin_token`` (or a scoped ``token``: review for the quarantine
    calls, admin for the rest); without one every call answers 401.
    """

    def __init__(self, run: Callable[[_Call], Any], actor: str | None = None) -> None:
        self._run = run
        self._calls = _AdminCalls(actor)

    def acting_as(self, actor: str | None) -> Admin:
        """The same API with its decisions recorded as made by ``actor``."""
        return Admin(self._run, actor)

    # quarantine ----------------------------------------------------------------------

    def quarantine(self, **filters: Unpack[QuarantineFilters]) -> dict[str, Any]:
        """One page of quarantine items, newest first: ``{"items", "total", "next_cursor"}``."""
        return self._run(self._calls.quarantine(filters))

    def quarantine_pages(self, **filters: Unpack[QuarantineFilters]) -> Iterator[dict[str, Any]]:
        """Every page of :meth:`quarantine`, following ``next_cursor``."""
        while True:
            page = self.quarantine(**filters)
            yield page
            if not page.get("next_cursor"):
                return
            filters["cursor"] = page["next_cursor"]

    def quarantine_item(self, qid: str) -> dict[str, Any]:
        """One item with its full assertion, score breakdown and notes."""
        return self._run(self._calls.item(qid))

    def approve(self, qid: str, note: str | None = None) -> dict[str, Any]:
        """Promote an item: its assertion enters the store with its original id; the item."""
        return self._run(self._calls.approve(qid, note))

    def reject(self, qid: str, reason: str | None = None) -> dict[str, Any]:
        """Reject an item (kept for audit, never served); the item."""
        return self._run(self._calls.reject(qid, reason))

    def add_note(self, qid: str, note: str) -> dict[str, Any]:
        """Annotate an item of any status; the item."""
        return self._run(self._calls.add_note(qid, note))

    def batch(self, action: BatchAction, *, ids: Iterable[str] | None = None,
              agent_id: str | None = None, reason: str | None = None,
              note: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Approve or reject the items ``ids``, or every pending item of ``agent_id``, in
        one journal commit: ``{"status", "processed", "skipped": [{"id", "status"}]}``."""
        return self._run(self._calls.batch(action, ids, agent_id, reason, note))

    # assertions ----------------------------------------------------------------------

    def retract(self, assertion_id: str, reason: str) -> dict[str, Any]:
        """Retract any agent's active assertion (journaled with who and why)."""
        return self._run(self._calls.retract(assertion_id, reason))

    # circuit breakers ----------------------------------------------------------------

    def breakers(self) -> dict[str, Any]:
        """``{"circuit_breakers": [...]}``: OPEN first, then HALF_OPEN, then by failure rate."""
        return self._run(self._calls.breakers())

    def breaker(self, agent_id: str) -> dict[str, Any]:
        return self._run(self._calls.breaker(agent_id))

    def open_breaker(self, agent_id: str, reason: str, duration_seconds: float) -> dict[str, Any]:
        """Ban an agent for ``duration_seconds``: its writes answer 429 until then."""
        return self._run(self._calls.open_breaker(agent_id, reason, duration_seconds))

    def reset_breaker(self, agent_id: str, reason: str | None = None) -> dict[str, Any]:
        """Unban an agent: CLOSED with a clean window."""
        return self._run(self._calls.reset_breaker(agent_id, reason))

    # content defense -----------------------------------------------------------------

    def thresholds(self) -> dict[str, Any]:
        return self._run(self._calls.thresholds())

    def set_thresholds(self, values: Mapping[str, float]) -> dict[str, Any]:
        """Change some of the four thresholds at once, without a restart; all four."""
        return self._run(self._calls.set_thresholds(values))

    def allowlist(self) -> dict[str, Any]:
        """``{"allowlist": [...]}``, every entry with its expiry."""
        return self._run(self._calls.allowlist())

    def allow(self, agent_id: str, expires_at: Timestamp, reason: str) -> dict[str, Any]:
        """Let ``agent_id``'s writes skip content defense until ``expires_at``."""
        return self._run(self._calls.allow(agent_id, expires_at, reason))

    def disallow(self, agent_id: str) -> dict[str, Any]:
        """Remove ``agent_id`` from the allowlist."""
        return self._run(self._calls.disallow(agent_id))

    # audit ---------------------------------------------------------------------------

    def audit(self, *, target: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """Admin decisions, newest first (of one item or agent with ``target``)."""
        return self._run(self._calls.audit(target, limit))

    # agent enrollment ------------------------------------------------------------------

    def agents(self) -> dict[str, Any]:
        """``{"enrollment": mode, "agents": [...]}``: every enrolled or revoked key."""
        return self._run(self._calls.agents())

    def enroll(self, agent_id: str, namespaces: Iterable[str],
               note: str | None = None) -> dict[str, Any]:
        """Enroll ``agent_id`` into ``namespaces`` (``["*"]`` for all), or replace its
        namespaces and note. A revoked key answers 409."""
        return self._run(self._calls.enroll(agent_id, namespaces, note))

    def revoke(self, agent_id: str, reason: str) -> dict[str, Any]:
        """Revoke ``agent_id`` for good: its writes are refused and its assertions leave
        beliefs and disputes from the revocation on."""
        return self._run(self._calls.revoke(agent_id, reason))
    # API tokens ----------------------------------------------------------------------

    def tokens(self) -> dict[str, Any]:
        """Every API token: ``{"tokens": [{"name", "scope", "namespaces", "status",
        "expires_at", "created_at", "created_by", "last_used_at", "revoked_at", ...}]}``
        (never a secret)."""
        return self._run(self._calls.tokens())

    def create_token(self, name: str, scope: TokenScope, *, namespaces: Iterable[str],
                     expires: Timestamp | str | None = None) -> dict[str, Any]:  # fmt: skip
        """A new scoped token; the answer's ``token`` is its secret, shown this once.
        ``namespaces``: what it may read (``["*"]`` for all; at least one, none is
        implied). ``expires``: a time, or a duration such as ``"30d"``, ``"12h"``,
        ``"90m"``."""
        return self._run(self._calls.create_token(name, scope, namespaces, expires))

    def revoke_token(self, name: str, reason: str | None = None) -> dict[str, Any]:
        """Revoke the live token named ``name``: it is refused (401) from now on."""
        return self._run(self._calls.revoke_token(name, reason))


class AsyncAdmin:
    """``client.admin`` of an :class:`~stemedb.client.AsyncClient`: :class:`Admin`, awaitable."""

    def __init__(self, run: Callable[[_Call], Awaitable[Any]], actor: str | None = None) -> None:
        self._run = run
        self._calls = _AdminCalls(actor)

    def acting_as(self, actor: str | None) -> AsyncAdmin:
        return AsyncAdmin(self._run, actor)

    async def quarantine(self, **filters: Unpack[QuarantineFilters]) -> dict[str, Any]:
        return await self._run(self._calls.quarantine(filters))

    async def quarantine_pages(self, **filters: Unpack[QuarantineFilters]
                               ) -> AsyncIterator[dict[str, Any]]:  # fmt: skip
        while True:
            page = await self.quarantine(**filters)
            yield page
            if not page.get("next_cursor"):
                return
            filters["cursor"] = page["next_cursor"]

    async def quarantine_item(self, qid: str) -> dict[str, Any]:
        return await self._run(self._calls.item(qid))

    async def approve(self, qid: str, note: str | None = None) -> dict[str, Any]:
        return await self._run(self._calls.approve(qid, note))

    async def reject(self, qid: str, reason: str | None = None) -> dict[str, Any]:
        return await self._run(self._calls.reject(qid, reason))

    async def add_note(self, qid: str, note: str) -> dict[str, Any]:
        return await self._run(self._calls.add_note(qid, note))

    async def batch(self, action: BatchAction, *, ids: Iterable[str] | None = None,
                    agent_id: str | None = None, reason: str | None = None,
                    note: str | None = None) -> dict[str, Any]:  # fmt: skip
        return await self._run(self._calls.batch(action, ids, agent_id, reason, note))

    async def retract(self, assertion_id: str, reason: str) -> dict[str, Any]:
        return await self._run(self._calls.retract(assertion_id, reason))

    async def breakers(self) -> dict[str, Any]:
        return await self._run(self._calls.breakers())

    async def breaker(self, agent_id: str) -> dict[str, Any]:
        return await self._run(self._calls.breaker(agent_id))

    async def open_breaker(self, agent_id: str, reason: str, duration_seconds: float
                           ) -> dict[str, Any]:  # fmt: skip
        return await self._run(self._calls.open_breaker(agent_id, reason, duration_seconds))

    async def reset_breaker(self, agent_id: str, reason: str | None = None) -> dict[str, Any]:
        return await self._run(self._calls.reset_breaker(agent_id, reason))

    async def thresholds(self) -> dict[str, Any]:
        return await self._run(self._calls.thresholds())

    async def set_thresholds(self, values: Mapping[str, float]) -> dict[str, Any]:
        return await self._run(self._calls.set_thresholds(values))

    async def allowlist(self) -> dict[str, Any]:
        return await self._run(self._calls.allowlist())

    async def allow(self, agent_id: str, expires_at: Timestamp, reason: str) -> dict[str, Any]:
        return await self._run(self._calls.allow(agent_id, expires_at, reason))

    async def disallow(self, agent_id: str) -> dict[str, Any]:
        return await self._run(self._calls.disallow(agent_id))

    async def audit(self, *, target: str | None = None, limit: int | None = None
                    ) -> dict[str, Any]:  # fmt: skip
        return await self._run(self._calls.audit(target, limit))

    async def agents(self) -> dict[str, Any]:
        return await self._run(self._calls.agents())

    async def enroll(self, agent_id: str, namespaces: Iterable[str],
                     note: str | None = None) -> dict[str, Any]:
        return await self._run(self._calls.enroll(agent_id, namespaces, note))

    async def revoke(self, agent_id: str, reason: str) -> dict[str, Any]:
        return await self._run(self._calls.revoke(agent_id, reason))
    async def tokens(self) -> dict[str, Any]:
        return await self._run(self._calls.tokens())

    async def create_token(self, name: str, scope: TokenScope, *, namespaces: Iterable[str],
                           expires: Timestamp | str | None = None) -> dict[str, Any]:  # fmt: skip
        return await self._run(self._calls.create_token(name, scope, namespaces, expires))

    async def revoke_token(self, name: str, reason: str | None = None) -> dict[str, Any]:
        return await self._run(self._calls.revoke_token(name, reason))
