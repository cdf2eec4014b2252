"""The content-defense gate of the write path: allowlist, duplicates, trust, thresholds,
and the per-agent cap on pending quarantine items. Returns the verdict to journal with
the write (``None`` = accept)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .defense import Thresholds, TrustCounts, decide, is_trusted, trust_score
from .errors import TooManyRequests
from .index import admin as q
from .model import Assertion
from .records import now_us

if TYPE_CHECKING:
    from .engine import Database

HOUR_US = 3_600_000_000


def config_thresholds(db: Database) -> dict[str, float]:
    cd = db.settings.content_defense
    return {"quality_threshold": cd.quality_threshold,
            "confidence_threshold": cd.confidence_threshold,
            "duplicate_lookback_hours": cd.duplicate_lookback_hours,
            "untrusted_confidence_threshold": cd.untrusted_confidence_threshold}


def agent_trust_counts(db: Database, agent_id: str) -> TrustCounts:
    c = q.agent_counts(db.index, agent_id)
    if c is None:
        return TrustCounts()
    return TrustCounts(accepted=c["accepted"], quarantined=c["quarantined"],
                       approved=c["approved"], rejected=c["rejected"], retracted=c["retracted"])


class DefenseGate:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._thresholds: Thresholds | None = None

    @property
    def thresholds(self) -> Thresholds:
        """Config values, overridden by the journaled runtime changes (cached; the admin
        service calls ``invalidate`` after journaling a change)."""
        cached = self._thresholds
        if cached is None:
            state = q.get_state(self.db.index, "thresholds") or {}
            cached = self._thresholds = Thresholds.from_dict({**config_thresholds(self.db),
                                                              **state})
        return cached

    def invalidate(self) -> None:
        self._thresholds = None

    def verdict(self, a: Assertion) -> dict[str, Any] | None:
        index = self.db.index
        now = now_us()
        until = q.allowlisted_until(index, a.agent_id)
        if until is not None and until > now:
            return None
        t = self.thresholds
        since = now - int(t.duplicate_lookback_hours * HOUR_US)
        dup = q.is_duplicate(index, a.agent_id, a.subject_key, a.predicate_key, a.object_json,
                             a.context_key, since)
        counts = agent_trust_counts(self.db, a.agent_id)
        v = decide(a, thresholds=t, is_duplicate=dup, trusted=is_trusted(counts),
                   trust=trust_score(counts))
        if v.accepted:
            return None
        cap = self.db.settings.content_defense.max_pending_per_agent
        if q.pending_count(index, a.agent_id) >= cap:
            raise TooManyRequests(
                f"agent {a.agent_id[:16]} already has {cap} quarantined writes pending review",
                retry_after=300)
        breakdown: dict[str, Any] = v.breakdown()
        breakdown["reason"] = v.reason
        breakdown["score"] = v.score
        return breakdown
