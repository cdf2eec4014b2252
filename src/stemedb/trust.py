"""How much an agent's own history says about it: a Beta-reputation trust score.

``trust = (PRIOR_GOOD + good) / (PRIOR_GOOD + PRIOR_BAD + good + bad)`` where

- ``good = ACCEPTED_WEIGHT × accepted + APPROVED_WEIGHT × approved``: writes that passed
  the checks, and quarantined writes a reviewer approved (a human vouched: worth more);
- ``bad = REJECTED_WEIGHT × rejected + PENDING_WEIGHT × pending + RETRACTED_WEIGHT ×
  retracted``: reviewer rejections weigh most; quarantined writes still awaiting review
  (``pending = quarantined − approved − rejected``, never below 0) and retractions a
  little.

A new agent scores 0.5 (the prior: we know nothing). ``is_trusted`` also asks for
``MIN_GOOD_OUTCOMES`` accepted or approved writes, so a brand-new key is never trusted
however the score moves. Both functions are monotonic: more accepted or approved writes
never lower trust; more rejections, pending quarantines or retractions never raise it.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIOR_GOOD = 1.0
PRIOR_BAD = 1.0
ACCEPTED_WEIGHT = 1.0
APPROVED_WEIGHT = 2.0
REJECTED_WEIGHT = 4.0
PENDING_WEIGHT = 0.5
RETRACTED_WEIGHT = 0.5
TRUST_THRESHOLD = 0.7
MIN_GOOD_OUTCOMES = 5


@dataclass(frozen=True)
class TrustCounts:
    """An agent's counters as the index keeps them.

    ``quarantined`` counts every write that was ever quarantined; ``approved`` and
    ``rejected`` count the reviewer decisions on those.
    """

    accepted: int = 0
    quarantined: int = 0
    approved: int = 0
    rejected: int = 0
    retracted: int = 0

    @property
    def pending(self) -> int:
        return max(0, self.quarantined - self.approved - self.rejected)


def trust_score(c: TrustCounts) -> float:
    """The agent's trust in [0, 1]; 0.5 for an agent with no history."""
    good = ACCEPTED_WEIGHT * max(0, c.accepted) + APPROVED_WEIGHT * max(0, c.approved)
    bad = (
        REJECTED_WEIGHT * max(0, c.rejected)
        + PENDING_WEIGHT * c.pending
        + RETRACTED_WEIGHT * max(0, c.retracted)
    )
    return round((PRIOR_GOOD + good) / (PRIOR_GOOD + PRIOR_BAD + good + bad), 6)


def is_trusted(c: TrustCounts) -> bool:
    """Trust at least ``TRUST_THRESHOLD`` and at least ``MIN_GOOD_OUTCOMES`` good writes."""
    enough = max(0, c.accepted) + max(0, c.approved) >= MIN_GOOD_OUTCOMES
    return enough and trust_score(c) >= TRUST_THRESHOLD
