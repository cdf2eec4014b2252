"""The content-defense gate of the write path: allowlist, duplicates, trust, thresholds,
and the per-agent cap on pending quarantine items. Returns the verdict to journal with
each write (``None`` = accept).

The gate answers for many writes at once (a batch asks the index a few questions, not a
few per write); a single write is a batch of one. Thresholds and the allowlist are kept
in memory and reloaded after the admin service journals a change to either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .defense import Thresholds, TrustCounts, decide, is_trusted, trust_score
from .defense.verdict import duplicate_key
from .errors import StemeError, TooManyRequests
from .model import Assertion
from .records import now_us
from .settings import ContentDefenseSettings
from .store import DuplicateKey, NonceKey, Reads

HOUR_US = 3_600_000_000

Verdict = dict[str, Any] | None


class Known(NamedTuple):
    """What a caller already read from the index for the writes it asks about: each
    write's duplicate key (in order), the keys found, the agents' counters (None: not
    read; the gate reads them for the writes that need them)."""

    keys: Sequence[DuplicateKey | None]
    found: set[DuplicateKey]
    counters: dict[str, tuple[int, ...]] | None


def config_thresholds(cd: ContentDefenseSettings) -> dict[str, float]:
    """The thresholds the config (file, env) asks for."""
    return {"quality_threshold": cd.quality_threshold,
            "confidence_threshold": cd.confidence_threshold,
            "duplicate_lookback_hours": cd.duplicate_lookback_hours,
            "untrusted_confidence_threshold": cd.untrusted_confidence_threshold}


def agent_trust_counts(reads: Reads, agent_id: str) -> TrustCounts:
    c = reads.trust_counters([agent_id]).get(agent_id)
    return TrustCounts() if c is None else TrustCounts(*c)


class DefenseGate:
    """``reads``: the derived state; ``config``: the ``[content_defense]`` settings."""

    def __init__(self, reads: Reads, config: ContentDefenseSettings) -> None:
        self.reads = reads
        self.config = config
        self._thresholds: Thresholds | None = None
        self._allowlist: dict[str, int] | None = None

    @property
    def thresholds(self) -> Thresholds:
        """Config values, overridden by the journaled runtime changes (cached until the
        next admin record is journaled: ``Database.append_admin`` calls ``invalidate``)."""
        cached = self._thresholds
        if cached is None:
            state = self.reads.get_state("thresholds") or {}
            cached = self._thresholds = Thresholds.from_dict({**config_thresholds(self.config),
                                                              **state})
        return cached

    @property
    def allowlist(self) -> dict[str, int]:
        """Allowlisted agent → expiry (unix µs), cached like the thresholds."""
        cached = self._allowlist
        if cached is None:
            cached = self._allowlist = self.reads.allowlist_expiry()
        return cached

    def invalidate(self) -> None:
        """Forget the cached thresholds and allowlist (after an admin change to either)."""
        self._thresholds = None
        self._allowlist = None

    def facts_many(self, items: Sequence[Assertion],
                   ) -> list[tuple[dict[NonceKey, tuple[str, str]], Known]]:
        """What each assertion's checks need from the index: its nonce's earlier write
        (idempotency, replay) and whether its duplicate key exists; for several
        assertions in as few reads as the backend can (single writes ask together:
        ``rounds.Rounds``)."""
        keys = [duplicate_key(a) for a in items]
        found = self.reads.assertion_facts_many(
            [(a.nonce, key) for a, key in zip(items, keys, strict=True)], self.duplicate_since())
        return [(seen, Known([key], dups, None))
                for key, (seen, dups) in zip(keys, found, strict=True)]

    def duplicate_since(self) -> int:
        """Oldest recorded time (unix µs) an earlier write counts as a duplicate from."""
        return now_us() - int(self.thresholds.duplicate_lookback_hours * HOUR_US)

    def verdicts(self, items: Sequence[Assertion], known: Known | None = None,
                 ) -> list[Verdict | StemeError]:
        """Verdicts for writes checked together, in order. A write repeating an earlier
        one of the same call counts as its duplicate, and quarantined writes count
        towards their agent's pending cap as they are decided. ``known``: what the
        caller already read from the index for these items."""
        now = now_us()
        allow = self.allowlist
        allowed = [allow.get(a.agent_id, 0) > now for a in items]
        if all(allowed):
            return [None] * len(items)
        reads = self.reads
        t = self.thresholds
        if known is not None:
            keys, dups, counters = known.keys, set(known.found), known.counters
        else:
            keys = [None if ok else duplicate_key(a) for a, ok in zip(items, allowed, strict=True)]
            judged = [k for k in keys if k is not None]
            dups = reads.duplicates(judged, self.duplicate_since())
            counters = reads.trust_counters(k[0] for k in judged)
        trust: dict[str, tuple[bool, float]] = {}

        def trust_of(agent: str) -> tuple[bool, float]:
            got = trust.get(agent)
            if got is None:
                if counters is None:
                    counts = agent_trust_counts(reads, agent)
                else:
                    c = counters.get(agent)
                    counts = TrustCounts() if c is None else TrustCounts(*c)
                got = trust[agent] = (is_trusted(counts), trust_score(counts))
            return got

        untrusted_at = t.untrusted_confidence_threshold
        pending: dict[str, int] = {}
        cap = self.config.max_pending_per_agent
        out: list[Verdict | StemeError] = []
        for a, key, ok in zip(items, keys, allowed, strict=True):
            agent = a.agent_id
            if ok or key is None:
                out.append(None)
                continue
            if a.confidence >= untrusted_at:
                trusted, score = trust_of(agent)
                v = decide(a, thresholds=t, is_duplicate=key in dups, trusted=trusted,
                           trust=score)
            else:  # trust cannot change this verdict: it is read for a quarantine's breakdown
                v = decide(a, thresholds=t, is_duplicate=key in dups, trusted=True)
                if not v.accepted:
                    v = v.with_trust(*trust_of(agent))
            if v.accepted:
                dups.add(key)
                out.append(None)
                continue
            n = pending.get(agent)
            if n is None:
                n = reads.pending_count(agent)
            if n >= cap:
                out.append(TooManyRequests(
                    f"agent {agent[:16]} already has {cap} quarantined writes pending review",
                    retry_after=300))
                continue
            pending[agent] = n + 1
            dups.add(key)
            breakdown: dict[str, Any] = v.breakdown()
            breakdown["reason"] = v.reason
            breakdown["score"] = v.score
            out.append(breakdown)
        return out
