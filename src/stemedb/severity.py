"""How bad a quarantined write is, for the reviewer: a severity and the signal behind it.

The reason says why a write was held (``Duplicate``, ``LowQuality``,
``UntrustedHighConfidence``); the severity says what is at stake if it is approved, so a
reviewer can take the attacks first. It is derived from the verdict's breakdown alone
(the reason and the signals journaled with the write), so every backend, a reindex and a
migration compute the same value for the same record.

- ``critical``: ``prompt_injection`` — an instruction aimed at the agents that will read
  the fact (prompt injection, memory poisoning); it attacks every future reader;
- ``high``: content that hides or disguises itself or runs code: ``active_markup``,
  ``invisible_chars``, ``homoglyphs``, ``control_chars``;
- ``medium``: junk that fails the quality score on its own: any other signal of 0.45 or
  more, or the reason ``LowQuality``;
- ``low``: the rest — a ``Duplicate`` or ``UntrustedHighConfidence`` write with no
  signal above, the weak hints (``symbol_noise``, ``hidden_markup``,
  ``missing_evidence``) and minor findings.

The top signal is the one that decided the severity (the strongest signal of the highest
level; ties go to the larger amount, then to the order signals are reported in), or
``None`` when no signal fired.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

CRITICAL_SIGNALS = frozenset({"prompt_injection"})
HIGH_SIGNALS = frozenset({"active_markup", "invisible_chars", "homoglyphs", "control_chars"})
# A signal of at least this amount quarantines a write on its own at the default threshold.
STRONG_AMOUNT = 0.45


def signal_severity(name: str, amount: float) -> str:
    """The level one signal stands for."""
    if name in CRITICAL_SIGNALS:
        return "critical"
    if name in HIGH_SIGNALS:
        return "high"
    return "medium" if amount >= STRONG_AMOUNT else "low"


def severity_of(breakdown: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(severity, top signal)`` of a quarantine verdict's breakdown (``reason`` and
    ``signals`` as journaled: ``[{"name", "amount", "detail"}, ...]``)."""
    best: tuple[int, float, int] | None = None
    top: str | None = None
    signals = breakdown.get("signals") or []
    for i, sig in enumerate(signals if isinstance(signals, list) else []):
        if not isinstance(sig, Mapping) or not isinstance(sig.get("name"), str):
            continue
        name = sig["name"]
        try:
            amount = float(sig.get("amount") or 0.0)
        except (TypeError, ValueError):
            amount = 0.0
        key = (RANK[signal_severity(name, amount)], amount, -i)
        if best is None or key > best:
            best, top = key, name
    level = best[0] if best is not None else RANK["low"]
    if breakdown.get("reason") == "LowQuality":
        level = max(level, RANK["medium"])
    return SEVERITIES[level], top


__all__ = ["SEVERITIES", "severity_of", "signal_severity"]
