"""What the dashboard pages show, read from the engine and the index.

Quarantine items, agents, breakers, thresholds and the allowlist come from the same admin
service calls the admin API uses (``db.admin``). The few figures the admin API has no call
for (pending per reason, ingest and quarantine rates, the pending history of the last
hour) come from the store's named dashboard queries (``db.reads``); every change still
goes through ``db.admin``.

Every figure takes ``namespaces`` (``access.visible_namespaces`` of the signed-in
principal): None shows everything; otherwise only items whose assertion lies in one of
them are counted or shown, as the admin API does for a token restricted to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..defense import REASONS, TrustCounts, is_trusted, trust_score
from ..errors import NotFound
from ..model import us_to_time
from ..records import now_us
from ..store import Namespaces

if TYPE_CHECKING:
    from ..engine import Database

MINUTE_US = 60 * 1_000_000
HISTORY_MINUTES = 60


def reason_counts(db: Database, namespaces: Namespaces = None) -> dict[str, int]:
    """Pending items per reason (every known reason listed, zero included)."""
    return {**dict.fromkeys(REASONS, 0), **db.reads.pending_by_reason(namespaces)}


def agent_counts(db: Database, reason: str | None, namespaces: Namespaces = None
                 ) -> list[tuple[str, int]]:
    """(agent_id, pending items) busiest first: one GROUP BY over the status index."""
    if reason is None:
        return list(db.reads.pending_per_agent(namespaces).items())
    return db.reads.pending_by_agent(reason, namespaces)


def agent_summary(db: Database, agent_id: str, namespaces: Namespaces = None
                  ) -> dict[str, Any]:
    """Trust, counts, breaker and allowlist state of one agent (``db.admin.agent``)."""
    return db.admin.agent(agent_id, namespaces)


def agent_brief(db: Database, agent_id: str, namespaces: Namespaces = None
                ) -> dict[str, Any] | None:
    """``db.admin.agent`` without its count over the quarantine table: the pending figure
    comes from the agent's counters (quarantined − approved − rejected), which is what
    trust is computed from. Cheap enough for every group of a page. (Restricted to
    namespaces, it is ``db.admin.agent`` over them; None for an agent without any.)"""
    if namespaces is not None:
        try:
            return db.admin.agent(agent_id, namespaces)
        except NotFound:
            return None
    counts = db.reads.agent_counts(agent_id)
    if counts is None:
        return None
    tc = TrustCounts(
        accepted=counts["accepted"],
        quarantined=counts["quarantined"],
        approved=counts["approved"],
        rejected=counts["rejected"],
        retracted=counts["retracted"],
    )
    until = db.reads.allowlisted_until(agent_id)
    return {
        "agent_id": agent_id,
        "trust": round(trust_score(tc), 6),
        "trusted": is_trusted(tc),
        "counts": {
            k: counts[k] for k in ("accepted", "quarantined", "approved", "rejected", "retracted")
        },
        "quarantine_pending": tc.pending,
        "first_seen": counts["first_seen"],
        "last_seen": counts["last_seen"],
        "allowlisted": until is not None and until > now_us(),
        "circuit_breaker": db.breaker_view(agent_id),
    }


def newest_pending(
    db: Database, agent_id: str, reason: str | None, limit: int, namespaces: Namespaces = None
) -> list[dict[str, Any]]:
    """The newest pending items of one agent, in the admin API's item shape (one indexed
    range read; unlike ``list_quarantine`` it does not count the agent's items again)."""
    return db.reads.newest_pending(agent_id, reason, limit, namespaces)


@dataclass(frozen=True)
class Overview:
    pending: int
    ingest_per_min_1m: float
    ingest_per_min_5m: float
    quarantine_per_min_1m: float
    quarantine_per_min_5m: float
    approved_total: int
    rejected_total: int
    approved_hour: int
    rejected_hour: int
    series: list[tuple[int, int]]  # (unix microseconds, pending at that time), oldest first
    top_agents: list[tuple[str, int]]

    @staticmethod
    def _rate(approved: int, rejected: int) -> float | None:
        decided = approved + rejected
        return approved / decided if decided else None

    @property
    def false_positive_rate(self) -> float | None:
        """Approved ÷ decided, all time: the share of quarantined writes that were fine."""
        return self._rate(self.approved_total, self.rejected_total)

    @property
    def false_positive_rate_hour(self) -> float | None:
        return self._rate(self.approved_hour, self.rejected_hour)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "ingest_rate_per_minute": {"1m": self.ingest_per_min_1m, "5m": self.ingest_per_min_5m},
            "quarantine_rate_per_minute": {
                "1m": self.quarantine_per_min_1m,
                "5m": self.quarantine_per_min_5m,
            },
            "decisions": {
                "approved": self.approved_total,
                "rejected": self.rejected_total,
                "approved_last_hour": self.approved_hour,
                "rejected_last_hour": self.rejected_hour,
            },
            "false_positive_rate": self.false_positive_rate,
            "false_positive_rate_last_hour": self.false_positive_rate_hour,
            "pending_last_hour": [{"at": us_to_time(t), "pending": n} for t, n in self.series],
            "top_agents": [{"agent_id": a, "pending": n} for a, n in self.top_agents],
        }


def lsn_at(db: Database, at_us: int) -> int:
    """The last LSN recorded at or before ``at_us`` (0 if none): one index seek."""
    return db.reads.last_lsn_at(at_us)


def overview(db: Database, now: int | None = None, top: int = 10,
             namespaces: Namespaces = None) -> Overview:
    """The overview figures. The pending history is rebuilt from the quarantine table
    (created, counted by LSN ranges of each minute) and the audit log (decided), so it is
    right after a restart too: pending(t) = pending(now) − created after t + decided after
    t."""
    now = now_us() if now is None else now
    reads = db.reads
    ns = namespaces
    pending = reads.pending_count(None, ns)
    start = now - HISTORY_MINUTES * MINUTE_US
    bounds = [lsn_at(db, start + k * MINUTE_US) for k in range(HISTORY_MINUTES)]
    bounds.append(2**62)  # the last minute runs up to whatever is applied now
    created = [0] * HISTORY_MINUTES
    if bounds[0] < reads.applied_lsn:
        for k in range(HISTORY_MINUTES):
            if bounds[k + 1] > bounds[k]:
                created[k] = reads.quarantined_between(bounds[k], bounds[k + 1], ns)
    decided = [0] * HISTORY_MINUTES
    approved_hour = rejected_hour = 0
    for b, action, n in reads.decisions_by_minute(start, bounds[0], MINUTE_US, ns):
        decided[min(max(b, 0), HISTORY_MINUTES - 1)] += n
        if action == "quarantine.approve":
            approved_hour += n
        else:
            rejected_hour += n
    series: list[tuple[int, int]] = [(now, pending)]
    level = pending
    for k in range(HISTORY_MINUTES - 1, -1, -1):  # walk back one minute at a time
        level = max(0, level - created[k] + decided[k])
        series.append((start + k * MINUTE_US, level))
    series.reverse()
    approved_total, rejected_total = reads.decision_totals(ns)
    writes = reads.assertions_after(bounds[-6], ns)
    writes_1m = reads.assertions_after(bounds[-2], ns)
    return Overview(
        pending=pending,
        ingest_per_min_1m=float(writes_1m),
        ingest_per_min_5m=int(writes) / 5.0,
        quarantine_per_min_1m=float(created[-1]),
        quarantine_per_min_5m=sum(created[-5:]) / 5.0,
        approved_total=approved_total,
        rejected_total=rejected_total,
        approved_hour=approved_hour,
        rejected_hour=rejected_hour,
        series=series,
        top_agents=list(reads.pending_per_agent(ns).items())[:top],
    )
