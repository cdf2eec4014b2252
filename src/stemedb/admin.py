"""Admin decisions: quarantine review, retractions, allowlist, thresholds, agents.

Every decision is a journal record (who, when, why) first; the index applies it. Checks
and journaling of decisions are serialised, so approving an item twice answers 409 with
its current state and never promotes it twice.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from . import records
from .defense import REASONS, Thresholds, is_trusted, trust_score
from .enrollment import Enrollment
from .errors import AlreadyDecided, AmbiguousId, Conflict, NotFound, ValidationFailed
from .events import NO_EVENTS, WriteEvents
from .gate import DefenseGate, agent_trust_counts, config_thresholds
from .guards import BreakerView, CircuitBreakers
from .journal import Record
from .model import format_time, parse_time
from .settings import ContentDefenseSettings
from .severity import SEVERITIES
from .store import Namespaces, Reads

Append = Callable[[Sequence[bytes]], Awaitable[list[Record]]]

_HEX_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")
QID_LENGTH = 32  # model.quarantine_id
_MATCHES = AmbiguousId.MAX_MATCHES + 1
_VISIBLE_SCAN = 200  # prefix matches looked at for a reader restricted to namespaces
STATUSES = ("pending", "approved", "rejected")
MAX_LIST = 10_000
MAX_PREFIX_MATCHES = 64  # agents a prefix is checked against for a restricted reader


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}])


def check_prefix(value: str, field: str = "agent_id") -> str:
    v = value.strip().lower()
    if not _HEX_PREFIX.match(v):
        raise _invalid(field, "must be an agent id or a prefix of at least 8 hex characters")
    return v


def breaker_dict(v: BreakerView) -> dict[str, Any]:
    """A breaker view in the admin API's shape (times as RFC 3339)."""
    def t(x: float | None) -> str | None:
        return None if x is None else format_time(datetime.fromtimestamp(x, tz=UTC))

    return {"agent_id": v.agent_id, "state": str(v.state), "failure_rate": v.failure_rate,
            "requests": v.requests, "reason": v.reason, "opened_at": t(v.opened_at),
            "until": t(v.until), "manual": v.manual}


class Admin:
    """Admin decisions over its collaborators: ``reads`` (the derived state), ``append``
    (journals admin records and returns once they are applied), the agents'
    ``breakers``, the ``defense`` gate (its thresholds), the ``[content_defense]``
    settings, the ``events`` observer and the agents' ``enrollment``."""

    def __init__(self, *, reads: Reads, append: Append, breakers: CircuitBreakers,
                 defense: DefenseGate, config: ContentDefenseSettings,
                 enrollment: Enrollment, events: WriteEvents = NO_EVENTS) -> None:
        self.reads = reads
        self.enrollment = enrollment
        self.append = append
        self._breakers = breakers
        self.defense = defense
        self.config = config
        self.events = events
        self._decisions = asyncio.Lock()

    # -- agents ---------------------------------------------------------------------------

    def resolve_agent(self, value: str, *, must_exist: bool = True) -> str:
        """A full agent id from an id or a unique prefix (≥ 8 hex)."""
        v = check_prefix(value)
        if len(v) == 64 and not must_exist:
            return v
        found = self.reads.agents_with_prefix(v, _MATCHES)
        if not found:
            if len(v) == 64:
                raise NotFound(f"agent {v[:16]}… has never written")
            raise NotFound(f"no agent id starts with {v}")
        if len(found) > 1:
            raise AmbiguousId("agent id", v, found)
        return found[0]

    def resolve_item(self, value: str, namespaces: Namespaces = None) -> str:
        """A full quarantine item id from an id or a unique prefix (≥ 8 hex); 404 when
        nothing matches, 409 (``AmbiguousId``) when several do. Restricted to
        ``namespaces``, only the items it covers match (the others do not exist for it)."""
        v = value.strip().lower()
        if not _HEX_PREFIX.match(v) or len(v) > QID_LENGTH:
            raise NotFound(f"no quarantine item {value}")
        if len(v) == QID_LENGTH:
            return v
        if namespaces is None:
            found = self.reads.quarantine_ids_with_prefix(v, _MATCHES)
        else:
            found = [q for q in self.reads.quarantine_ids_with_prefix(v, _VISIBLE_SCAN)
                     if self.reads.quarantine_item(q, namespaces) is not None][:_MATCHES]
        if not found:
            raise NotFound(f"no quarantine item starts with {v}")
        if len(found) > 1:
            raise AmbiguousId("quarantine item id", v, found)
        return found[0]

    def agent(self, value: str, namespaces: Namespaces = None) -> dict[str, Any]:
        """GET /v1/agents/{id}: trust, counts, first/last seen, allowlist, breaker and
        enrollment of a key that wrote, or was enrolled or revoked. Restricted to
        ``namespaces``, the counts and times are those of its visible assertions (an agent
        with none is unknown: 404); trust stays the agent's own, as beliefs weigh it."""
        if namespaces is not None:
            agent_id, counts = self._visible_agent(value, namespaces)
        else:
            try:
                agent_id = self.resolve_agent(value)
            except NotFound:
                agent_id = self.enrollment.resolve(value)
                if agent_id not in self.enrollment.keys:
                    raise
            counts = self.reads.agent_counts(agent_id) or {
                **dict.fromkeys(("accepted", "quarantined", "approved", "rejected",
                                 "retracted"), 0),
                "first_seen": None, "last_seen": None}
        tc = agent_trust_counts(self.reads, agent_id)
        until = self.reads.allowlisted_until(agent_id)
        return {"agent_id": agent_id, "trust": round(trust_score(tc), 6),
                "trusted": is_trusted(tc),
                "counts": {k: counts[k] for k in ("accepted", "quarantined", "approved",
                                                   "rejected", "retracted")},
                "quarantine_pending": self.reads.pending_count(agent_id, namespaces),
                "first_seen": counts["first_seen"], "last_seen": counts["last_seen"],
                "allowlisted": until is not None and until > records.now_us(),
                "circuit_breaker": self.breaker_view(agent_id),
                **self.enrollment.describe(agent_id)}

    def _visible_agent(self, value: str, namespaces: tuple[str, ...]
                       ) -> tuple[str, dict[str, Any]]:
        """``resolve_agent`` among the agents with assertions in ``namespaces`` (the others
        are unknown: the same 404, and a prefix is ambiguous only among visible ones),
        and the agent's counts there."""
        v = check_prefix(value)
        found = [v] if len(v) == 64 else self.reads.agents_with_prefix(v, MAX_PREFIX_MATCHES)
        seen = [(a, c) for a in found
                if (c := self.reads.agent_counts(a, namespaces)) is not None]
        if not seen:
            if len(v) == 64:
                raise NotFound(f"agent {v[:16]}… has never written")
            raise NotFound(f"no agent id starts with {v}")
        if len(seen) > 1:
            raise Conflict(f"prefix {v} matches several agents; give more characters")
        return seen[0]

    # -- quarantine -----------------------------------------------------------------------

    def list_quarantine(self, *, agent_id: str | None, reason: str | None, status: str | None,
                        limit: int, cursor: str | None, namespaces: Namespaces = None,
                        severity: str | None = None) -> dict[str, Any]:
        """Quarantine items (of the assertions ``namespaces`` cover)."""
        if reason is not None and reason not in REASONS:
            raise _invalid("reason", f"must be one of {', '.join(REASONS)}")
        if severity is not None and severity not in SEVERITIES:
            raise _invalid("severity", f"must be one of {', '.join(SEVERITIES)}")
        if status is not None and status not in (*STATUSES, "all"):
            raise _invalid("status", f"must be one of {', '.join(STATUSES)} or all")
        if not 1 <= limit <= MAX_LIST:
            raise _invalid("limit", f"must be between 1 and {MAX_LIST}")
        prefix = check_prefix(agent_id) if agent_id else None
        page = self.reads.list_quarantine(status=None if status == "all" else status,
                                 agent_prefix=prefix, reason=reason, limit=limit, cursor=cursor,
                                 namespaces=namespaces, severity=severity)
        self.enrollment.mark([it["assertion"] for it in page["items"]])
        return page

    def item(self, qid: str, namespaces: Namespaces = None) -> dict[str, Any]:
        """One item by its id or a unique prefix of it (≥ 8 hex); 404 when unknown or its
        assertion lies outside ``namespaces``."""
        found = self.reads.quarantine_item(self.resolve_item(qid, namespaces), namespaces)
        if found is None:
            raise NotFound(f"no quarantine item {qid}")
        self.enrollment.mark([found["assertion"]])
        return found

    async def decide(self, qid: str, action: str, why: str | None, by: str,
                     namespaces: Namespaces = None) -> dict[str, Any]:
        """approve | reject | note one item; 404 unknown (or outside ``namespaces``),
        409 already decided."""
        async with self._decisions:
            item = self.item(qid, namespaces)
            qid = item["id"]
            if action != "note" and item["status"] != "pending":
                raise AlreadyDecided(f"quarantine item {qid} is already {item['status']}",
                                     current=_summary(item))
            await self.append([_decision_record(action, qid, why, by)])
        if action != "note":
            self.events.observe_decision(action == "approve")
        return self.item(qid, namespaces)

    async def batch(self, action: str, ids: list[str] | None, agent_id: str | None,
                    why: str | None, by: str, namespaces: Namespaces = None
                    ) -> dict[str, Any]:
        """Decide many pending items in one group commit; already-decided ones are skipped
        and reported, unknown ids (and those outside ``namespaces``) are reported as not
        found."""
        if action not in ("approve", "reject"):
            raise _invalid("action", "must be approve or reject")
        if (ids is None) == (agent_id is None):
            raise _invalid("ids", "give either ids or agent_id")
        async with self._decisions:
            skipped: list[dict[str, Any]] = []
            if agent_id is not None:
                full = self.resolve_agent(agent_id)
                todo = self.reads.pending_ids_of_agent(full, namespaces)
            else:
                assert ids is not None
                todo = []
                taken: set[str] = set()
                for given in dict.fromkeys(ids):
                    try:
                        qid = self.resolve_item(given, namespaces)
                    except AmbiguousId as e:
                        skipped.append({"id": given, "status": "ambiguous",
                                        "matches": e.matches})
                        continue
                    except NotFound:
                        qid = given
                    found = self.reads.quarantine_item(qid, namespaces)
                    if found is None:
                        skipped.append({"id": given, "status": "not_found"})
                    elif found["status"] != "pending":
                        skipped.append({"id": qid, "status": found["status"]})
                    elif qid not in taken:
                        taken.add(qid)
                        todo.append(qid)
            for start in range(0, len(todo), 1000):
                chunk = todo[start:start + 1000]
                await self.append([_decision_record(action, qid, why, by)
                                            for qid in chunk])
                for _ in chunk:
                    self.events.observe_decision(action == "approve")
        done = "approved" if action == "approve" else "rejected"
        return {"action": action, "status": done, "processed": len(todo), "ids": todo,
                "skipped": skipped}

    # -- assertions -----------------------------------------------------------------------

    async def retract(self, aid: str, reason: str, by: str, namespaces: Namespaces = None
                      ) -> dict[str, Any]:
        """Retract any agent's active assertion (the agent itself retracts with a signed
        write): 404 unknown (or outside ``namespaces``), 409 not active. Journaled with who
        and why, and counted as its agent's retraction; the assertion stays readable as
        ``retracted``."""
        aid = aid.strip().lower()
        async with self._decisions:
            row = self.reads.assertion_row(aid)
            if row is None or (namespaces is not None
                               and self.reads.assertion(aid, namespaces) is None):
                raise NotFound(f"no assertion with id {aid}")
            if row["status"] != "active":
                raise Conflict(f"assertion {aid} is {row['status']}, not active"
                               + ("; reject its quarantine item instead"
                                  if row["status"] == "quarantined" else ""))
            (rec,) = await self.append([records.admin_record(
                "assertion.retract", by, id=aid, agent_id=row["agent_id"], reason=reason)])
        after = self.reads.assertion_row(aid)
        if after is None or after["status"] != "retracted" or after["ended_lsn"] != rec.lsn:
            # an in-flight write of the agent ended it first; the record changed nothing
            status = "gone" if after is None else after["status"]
            raise Conflict(f"assertion {aid} is {status}, not active")
        return {"status": "retracted", "id": aid, "agent_id": row["agent_id"],
                "lsn": rec.lsn, "reason": reason, "by": by}

    # -- circuit breakers -----------------------------------------------------------------

    def breaker_view(self, agent_id: str) -> dict[str, Any]:
        return breaker_dict(self._breakers.view(agent_id))

    def breakers(self) -> dict[str, Any]:
        return {"circuit_breakers": [breaker_dict(v) for v in self._breakers.views()]}

    def breaker(self, agent_id: str) -> dict[str, Any]:
        return self.breaker_view(self._breaker_agent(agent_id))

    def _breaker_agent(self, value: str) -> str:
        v = check_prefix(value)
        if len(v) == 64:
            return v
        tracked = [b.agent_id for b in self._breakers.views()
                   if b.agent_id.startswith(v)]
        if len(tracked) == 1:
            return tracked[0]
        return self.resolve_agent(v)

    async def open_breaker(self, agent_id: str, reason: str, duration_seconds: float,
                           by: str) -> dict[str, Any]:
        full = self._breaker_agent(agent_id)
        at = records.now_us()
        await self.append([records.admin_record(
            "breaker.open", by, at=at, agent_id=full, reason=reason,
            duration_seconds=duration_seconds)])
        view = self._breakers.open(full, reason, duration_seconds, at=at / 1e6)
        self.events.observe_breaker_open("manual")
        # The ban's end as journaled; a ban shorter than the time it took to record it is
        # already over, and the state says so (CLOSED) rather than a null ``until``.
        until = datetime.fromtimestamp(at / 1e6 + duration_seconds, tz=UTC)
        return {"status": "opened", "agent_id": full, "state": str(view.state),
                "until": format_time(until), "reason": reason}

    async def reset_breaker(self, agent_id: str, reason: str, by: str) -> dict[str, Any]:
        full = self._breaker_agent(agent_id)
        await self.append([records.admin_record("breaker.reset", by, agent_id=full,
                                                         reason=reason)])
        self._breakers.reset(full)
        return {"status": "reset", "agent_id": full, "state": "CLOSED"}

    # -- allowlist ------------------------------------------------------------------------

    def allowlist(self) -> dict[str, Any]:
        now = records.now_us()
        items = self.reads.allowlist()
        for it in items:
            it["active"] = parse_time(it["expires_at"]).timestamp() * 1e6 > now
        return {"allowlist": items}

    async def allow(self, agent_id: str, expires_at: str, reason: str, by: str) -> dict[str, Any]:
        full = self.resolve_agent(agent_id, must_exist=False)
        try:
            expires = parse_time(expires_at)
        except ValueError as e:
            raise _invalid("expires_at", str(e)) from None
        expires_us = int(expires.timestamp() * 1_000_000)
        if expires_us <= records.now_us():
            raise _invalid("expires_at", "must be in the future")
        await self.append([records.admin_record(
            "allowlist.add", by, agent_id=full, expires_at=expires_at, expires_us=expires_us,
            reason=reason)])
        return {"agent_id": full, "expires_at": expires_at, "reason": reason, "added_by": by}

    async def disallow(self, agent_id: str, reason: str, by: str) -> dict[str, Any]:
        full = self.resolve_agent(agent_id, must_exist=False)
        if self.reads.allowlisted_until(full) is None:
            if len(check_prefix(agent_id)) == 64:
                raise NotFound(f"agent {full[:16]}… is not on the allowlist")
            matches = [e["agent_id"] for e in self.reads.allowlist()
                       if e["agent_id"].startswith(check_prefix(agent_id))]
            if len(matches) != 1:
                raise NotFound(f"no single allowlisted agent starts with {agent_id}")
            full = matches[0]
        await self.append([records.admin_record("allowlist.remove", by, agent_id=full,
                                                         reason=reason)])
        return {"status": "removed", "agent_id": full}

    # -- thresholds -----------------------------------------------------------------------

    def thresholds(self) -> dict[str, Any]:
        return self.defense.thresholds.to_dict()

    async def set_thresholds(self, values: dict[str, Any], by: str,
                             source: str = "api") -> dict[str, Any]:
        if not isinstance(values, dict) or not values:
            raise _invalid("body", "give at least one threshold")
        merged = Thresholds.from_dict(values, base=self.defense.thresholds).validated()
        changed = {k: merged.to_dict()[k] for k in values}
        await self.append([records.admin_record("thresholds.set", by,
                                                         values=changed, source=source)])
        return self.thresholds()

    async def sync_config_thresholds(self) -> None:
        """A config (file/env) whose thresholds differ from those recorded at the last
        start is journaled as a change, so the latest intent wins and stays auditable."""
        wanted = config_thresholds(self.config)
        recorded = self.reads.get_state("config_thresholds") or Thresholds().to_dict()
        if recorded != wanted:
            Thresholds.from_dict(wanted).validated()
            await self.append([records.admin_record(
                "thresholds.set", "config", values=wanted, source="config")])

    async def purge_rejected(self) -> int:
        """Retention: rejected items decided more than ``rejected_retention_days`` ago
        leave the index (one journal record; the journal keeps them for audit)."""
        days = self.config.rejected_retention_days
        before = records.now_us() - int(days * 86_400 * 1_000_000)
        n = self.reads.rejected_before(before)
        if n:
            await self.append([records.admin_record("quarantine.purge", "retention",
                                                             before=before, count=n)])
        return n

    def audit(self, target: str | None, limit: int) -> dict[str, Any]:
        """Newest first; ``target``: a quarantine item or agent id, or a prefix of one."""
        t = target.strip() if target else None
        if t and _HEX_PREFIX.match(t.lower()):
            t = t.lower()
        return {"items": self.reads.audit_log(t or None, limit)}


def _decision_record(action: str, qid: str, why: str | None, by: str) -> bytes:
    if action == "approve":
        return records.admin_record("quarantine.approve", by, id=qid, note=why or "")
    if action == "reject":
        return records.admin_record("quarantine.reject", by, id=qid, reason=why or "")
    if action == "note":
        return records.admin_record("quarantine.note", by, id=qid, note=why or "")
    raise _invalid("action", "must be approve, reject or note")


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("id", "status", "decided_at", "decided_by", "decision_reason")}
