"""The verdict on one write: accept, or quarantine with a reason and the score breakdown.

Precedence, first match wins:

1. ``Duplicate``: the engine found the same agent's same subject/predicate/object/context
   within ``duplicate_lookback_hours`` (``is_duplicate``);
2. ``LowQuality``: the quality score is below ``quality_threshold``;
3. ``UntrustedHighConfidence``: the agent is not trusted and its confidence is at least
   ``untrusted_confidence_threshold``.

Allowlisted agents never reach ``decide``: the engine skips it for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Assertion
from .quality import Signal, score_quality
from .thresholds import Thresholds

REASONS = ("Duplicate", "LowQuality", "UntrustedHighConfidence")


@dataclass(frozen=True, init=False)
class Verdict:
    accepted: bool
    reason: str | None
    score: float
    signals: tuple[Signal, ...]
    trust: float | None = None
    trusted: bool | None = None

    def __init__(
        self,
        accepted: bool,
        reason: str | None,
        score: float,
        signals: tuple[Signal, ...],
        trust: float | None = None,
        trusted: bool | None = None,
    ) -> None:
        # One verdict per write: filling the instance dict directly costs less than the
        # frozen dataclass's object.__setattr__ per field, and the instance stays frozen.
        d = self.__dict__
        d["accepted"] = accepted
        d["reason"] = reason
        d["score"] = score
        d["signals"] = signals
        d["trust"] = trust
        d["trusted"] = trusted

    def with_trust(self, trusted: bool, trust: float) -> Verdict:
        """The same verdict, reporting the agent's trust (when it was read afterwards)."""
        return Verdict(self.accepted, self.reason, self.score, self.signals, trust, trusted)

    def breakdown(self) -> dict[str, Any]:
        """JSON-able summary for the quarantine item and the reviewer."""
        return {
            "quality": self.score,
            "signals": [s.to_dict() for s in self.signals],
            "trust": self.trust,
            "trusted": self.trusted,
            "reason": self.reason,
        }


def duplicate_key(a: Assertion) -> tuple[str, str, str, str, str]:
    """What makes two writes duplicates: agent, subject, predicate, object and context."""
    return (a.agent_id, a.subject_key, a.predicate_key, a.object_json, a.context_key)


def decide(
    a: Assertion,
    *,
    thresholds: Thresholds,
    is_duplicate: bool,
    trusted: bool,
    trust: float | None = None,
) -> Verdict:
    """The verdict for ``a``; the quality score is computed (and reported) in every case."""
    report = score_quality(a, thresholds)
    reason: str | None = None
    if is_duplicate:
        reason = "Duplicate"
    elif report.score < thresholds.quality_threshold:
        reason = "LowQuality"
    elif not trusted and a.confidence >= thresholds.untrusted_confidence_threshold:
        reason = "UntrustedHighConfidence"
    return Verdict(reason is None, reason, report.score, report.signals, trust, trusted)
