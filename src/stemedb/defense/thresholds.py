"""The four tunable content-defense thresholds, validated and partially updatable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import ValidationFailed

MAX_LOOKBACK_HOURS = 8760.0  # one year


@dataclass(frozen=True)
class Thresholds:
    """Defaults match ``[content_defense]`` in the settings.

    - ``quality_threshold``: a write whose quality score is below it is ``LowQuality``.
    - ``confidence_threshold``: above it, a claim is expected to carry evidence.
    - ``duplicate_lookback_hours``: window for ``Duplicate`` (the engine checks it).
    - ``untrusted_confidence_threshold``: at or above it, an untrusted agent's claim is
      ``UntrustedHighConfidence``.
    """

    quality_threshold: float = 0.6
    confidence_threshold: float = 0.85
    duplicate_lookback_hours: float = 48
    untrusted_confidence_threshold: float = 0.95

    @property
    def duplicate_lookback_seconds(self) -> float:
        return float(self.duplicate_lookback_hours) * 3600.0

    def validated(self) -> Thresholds:
        """Return self, or raise ``ValidationFailed`` naming every out-of-range field."""
        errors = self._errors()
        if errors:
            raise ValidationFailed(errors)
        return self

    def _errors(self) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = []
        for name in ("quality_threshold", "confidence_threshold", "untrusted_confidence_threshold"):
            value = getattr(self, name)
            problem = _number_problem(value)
            if problem:
                errors.append({"field": name, "message": problem})
            elif not 0.0 <= value <= 1.0:
                errors.append({"field": name, "message": "must be between 0 and 1"})
        value = self.duplicate_lookback_hours
        problem = _number_problem(value)
        if problem:
            errors.append({"field": "duplicate_lookback_hours", "message": problem})
        elif not 0.0 < value <= MAX_LOOKBACK_HOURS:
            errors.append(
                {
                    "field": "duplicate_lookback_hours",
                    "message": f"must be more than 0 and at most {MAX_LOOKBACK_HOURS:g}",
                }
            )
        return errors

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Thresholds | None = None) -> Thresholds:
        """``base`` (default: the built-in defaults) updated with the keys of ``d``.

        A partial mapping changes only the keys it names, as a PUT of some thresholds does.
        Unknown keys, non-numbers and out-of-range values raise ``ValidationFailed``.
        """
        if not isinstance(d, Mapping):
            raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
        known = {f.name for f in fields(cls)}
        errors: list[dict[str, str]] = []
        changes: dict[str, float] = {}
        for key, value in d.items():
            if key not in known:
                errors.append({"field": str(key), "message": "unknown field"})
                continue
            problem = _number_problem(value)
            if problem:
                errors.append({"field": key, "message": problem})
                continue
            changes[key] = float(value)
        result = replace(base if base is not None else cls(), **changes)
        named = {e["field"] for e in errors}
        errors += [e for e in result._errors() if e["field"] not in named]
        if errors:
            raise ValidationFailed(errors)
        return result


def _number_problem(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value):
        return "must be a finite number"
    return ""
