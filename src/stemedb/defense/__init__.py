"""Content defense: the verdict on every write that passed schema, signature and replay.

A pure library (no I/O): the engine supplies the facts it owns (is this a duplicate, is
the agent trusted) and gets back accept or quarantine with a reason and a breakdown.

- ``score_quality``: named quality signals (junk text, garbage characters, filler,
  missing or junk evidence, oversize objects, prompt-injection payloads) and the score;
- ``trust_score`` / ``is_trusted``: the Beta-reputation model of an agent's history;
- ``decide``: precedence Duplicate, then LowQuality, then UntrustedHighConfidence.

See ``docs/content-defense.md`` for every signal, amount and formula.
"""

from ..trust import TrustCounts, is_trusted, trust_score
from .quality import AMOUNTS, MINOR_AMOUNTS, SIGNAL_NAMES, QualityReport, Signal, score_quality
from .thresholds import Thresholds
from .verdict import REASONS, Verdict, decide, duplicate_key

__all__ = [
    "AMOUNTS",
    "MINOR_AMOUNTS",
    "REASONS",
    "SIGNAL_NAMES",
    "QualityReport",
    "Signal",
    "Thresholds",
    "TrustCounts",
    "Verdict",
    "decide",
    "duplicate_key",
    "is_trusted",
    "score_quality",
    "trust_score",
]
