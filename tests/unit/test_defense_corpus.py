"""The labelled corpus through content defense, with precision and recall per reason.

Run with ``-s`` to see the tables; they are also in every failure message. The corpus is
``tests/testdata/defense/corpus.jsonl`` (built by ``build_corpus.py`` beside it).

Protocol:

- pass A, a trusted agent: every line in order, with a duplicate tracker on (agent,
  subject, predicate, object, context) standing in for the engine's index. ``good``,
  ``untrusted_high`` and ``borderline_good`` lines must be accepted, ``junk``,
  ``injection`` and ``borderline_bad`` ones quarantined as LowQuality, ``duplicate``
  ones as Duplicate;
- pass B, an untrusted agent, no duplicates: ``good`` and ``untrusted_high`` lines must
  be quarantined as UntrustedHighConfidence when their confidence is at least 0.95 and
  accepted otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stemedb.defense import REASONS, Thresholds, decide, duplicate_key
from stemedb.model import Assertion

CORPUS = Path(__file__).resolve().parents[1] / "testdata" / "defense" / "corpus.jsonl"
AGENT = "a" * 64
LOOKBACK_S = Thresholds().duplicate_lookback_seconds

EXPECT_TRUSTED: dict[str, str | None] = {
    "good": None,
    "untrusted_high": None,
    "borderline_good": None,
    "junk": "LowQuality",
    "injection": "LowQuality",
    "borderline_bad": "LowQuality",
    "duplicate": "Duplicate",
}

MIN_RECALL = {"junk": 0.9, "injection": 0.9}
MAX_GOOD_FALSE_POSITIVE_RATE = 0.05
MIN_BORDERLINE_ACCURACY = 0.75


@dataclass
class Line:
    index: int
    label: str
    note: str
    assertion: Assertion


@dataclass
class Outcome:
    line: Line
    expected: str | None
    got: str | None
    trusted: bool
    signals: str


def load() -> list[Line]:
    lines = []
    for i, raw in enumerate(CORPUS.read_text(encoding="utf-8").splitlines()):
        d = json.loads(raw)
        a = Assertion.model_validate(
            {
                **d["assertion"],
                "agent_id": AGENT,
                "timestamp": "2026-01-01T00:00:00Z",
                "nonce": f"corpus-{i:06d}",
            }
        )
        lines.append(Line(i + 1, d["label"], d.get("note", ""), a))
    return lines


class DuplicateTracker:
    """What the engine's index answers: same key seen within the lookback window."""

    def __init__(self, lookback_s: float) -> None:
        self.lookback_s = lookback_s
        self.seen: dict[tuple[str, ...], float] = {}

    def check_and_add(self, a: Assertion, at: float) -> bool:
        key = duplicate_key(a)
        last = self.seen.get(key)
        self.seen[key] = at
        return last is not None and at - last <= self.lookback_s


def run_corpus(lines: list[Line]) -> list[Outcome]:
    t = Thresholds()
    out: list[Outcome] = []
    tracker = DuplicateTracker(LOOKBACK_S)
    for n, line in enumerate(lines):
        dup = tracker.check_and_add(line.assertion, at=60.0 * n)  # one write a minute
        v = decide(line.assertion, thresholds=t, is_duplicate=dup, trusted=True, trust=0.9)
        out.append(Outcome(line, EXPECT_TRUSTED[line.label], v.reason, True, _signals(v)))
    for line in lines:
        if line.label not in ("good", "untrusted_high"):
            continue
        high = line.assertion.confidence >= t.untrusted_confidence_threshold
        v = decide(line.assertion, thresholds=t, is_duplicate=False, trusted=False, trust=0.5)
        expected = "UntrustedHighConfidence" if high else None
        out.append(Outcome(line, expected, v.reason, False, _signals(v)))
    return out


def _signals(v: Any) -> str:
    return ", ".join(f"{s.name}={s.amount:g}" for s in v.signals) or "-"


def reason_table(outcomes: list[Outcome]) -> tuple[str, dict[str, tuple[float, float]]]:
    rows = ["reason                    TP    FP    FN  precision  recall"]
    stats: dict[str, tuple[float, float]] = {}
    for reason in REASONS:
        tp = sum(o.got == reason and o.expected == reason for o in outcomes)
        fp = sum(o.got == reason and o.expected != reason for o in outcomes)
        fn = sum(o.got != reason and o.expected == reason for o in outcomes)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        stats[reason] = (precision, recall)
        rows.append(f"{reason:24s} {tp:4d}  {fp:4d}  {fn:4d}  {precision:9.3f}  {recall:6.3f}")
    return "\n".join(rows), stats


def label_table(outcomes: list[Outcome]) -> tuple[str, dict[str, float]]:
    rows = ["label (agent)             lines  expected                         correct  rate"]
    rates: dict[str, float] = {}
    groups: dict[tuple[str, bool], list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.line.label, o.trusted), []).append(o)
    for (label, trusted), group in sorted(groups.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
        correct = sum(o.got == o.expected for o in group)
        rate = correct / len(group)
        key = label if trusted else f"{label}/untrusted"
        rates[key] = rate
        expected = Counter(o.expected or "accept" for o in group)
        shown = "/".join(k for k, _ in expected.most_common())
        who = "trusted" if trusted else "untrusted"
        rows.append(
            f"{label + ' (' + who + ')':25s} {len(group):5d}  {shown:32s} {correct:7d}  {rate:.3f}"
        )
    return "\n".join(rows), rates


def report(outcomes: list[Outcome]) -> str:
    by_reason, _ = reason_table(outcomes)
    by_label, _ = label_table(outcomes)
    wrong = [o for o in outcomes if o.got != o.expected]
    misses = "\n".join(
        f"  line {o.line.index} [{o.line.label}{'' if o.trusted else ', untrusted'}] "
        f"expected {o.expected or 'accept'}, got {o.got or 'accept'} ({o.signals}): "
        f"{o.line.assertion.subject[:40]!r} / {o.line.assertion.predicate[:30]!r}"
        + (f" — {o.line.note}" if o.line.note else "")
        for o in wrong
    )
    return f"\n{by_reason}\n\n{by_label}\n\nmisclassified ({len(wrong)}):\n{misses or '  none'}\n"


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    result = run_corpus(load())
    print(report(result))
    return result


def test_corpus_is_large_and_varied() -> None:
    counts = Counter(line.label for line in load())
    assert sum(counts.values()) >= 300, counts
    assert counts["good"] >= 120 and counts["junk"] >= 60 and counts["injection"] >= 60, counts
    assert set(counts) == set(EXPECT_TRUSTED), counts


def test_recall_on_junk_and_injection(outcomes: list[Outcome]) -> None:
    _, rates = label_table(outcomes)
    for label, floor in MIN_RECALL.items():
        assert rates[label] >= floor, f"{label} recall {rates[label]:.3f} < {floor}" + report(
            outcomes
        )


def test_false_positive_rate_on_good(outcomes: list[Outcome]) -> None:
    good = [o for o in outcomes if o.line.label == "good" and o.trusted]
    fp = sum(o.got is not None for o in good) / len(good)
    assert fp <= MAX_GOOD_FALSE_POSITIVE_RATE, f"good FP rate {fp:.3f}" + report(outcomes)


def test_duplicates_are_caught(outcomes: list[Outcome]) -> None:
    dups = [o for o in outcomes if o.line.label == "duplicate"]
    assert dups and all(o.got == "Duplicate" for o in dups), report(outcomes)


def test_untrusted_high_confidence(outcomes: list[Outcome]) -> None:
    high = [o for o in outcomes if o.line.label == "untrusted_high"]
    assert all(o.got == "UntrustedHighConfidence" for o in high if not o.trusted), report(outcomes)
    assert all(o.got is None for o in high if o.trusted), report(outcomes)
    good_untrusted = [o for o in outcomes if o.line.label == "good" and not o.trusted]
    assert all(o.got == o.expected for o in good_untrusted), report(outcomes)


def test_borderline_cases(outcomes: list[Outcome]) -> None:
    _, rates = label_table(outcomes)
    for label in ("borderline_good", "borderline_bad"):
        assert rates[label] >= MIN_BORDERLINE_ACCURACY, label + report(outcomes)


def test_every_reason_is_precise(outcomes: list[Outcome]) -> None:
    _, stats = reason_table(outcomes)
    for reason, (precision, _recall) in stats.items():
        assert precision >= 0.95, f"{reason} precision {precision:.3f}" + report(outcomes)
