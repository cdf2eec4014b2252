"""The quality score of one assertion: 1.0 minus the penalties of the signals that fire.

Each signal is named, fires at most once per assertion and subtracts a fixed, documented
amount (``AMOUNTS``; four signals have a lesser amount for a lesser finding,
``MINOR_AMOUNTS``). The score is ``clamp(1 - sum(amounts), 0, 1)``. An amount of 0.45 or
more quarantines on its own at the default ``quality_threshold`` of 0.6; the weaker
signals (hints that are sometimes legitimate) quarantine only in combination.
See ``docs/content-defense.md``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..model import Assertion
from .injection import scan, scan_folded
from .junk import LEAF, OBJECT, PREDICATE, SUBJECT, check_core, evidence_junk, quote
from .text import fold, has_substance, mixed_script_words, object_strings
from .thresholds import Thresholds

# name -> penalty. This is also the order signals are reported in.
AMOUNTS: dict[str, float] = {
    "prompt_injection": 0.9,
    "empty_text": 0.7,
    "nonprintable_ratio": 0.7,
    "placeholder_text": 0.6,
    "keyboard_mash": 0.6,
    "repeated_filler": 0.6,
    "control_chars": 0.5,
    "invisible_chars": 0.45,
    "encoding_garbage": 0.45,
    "homoglyphs": 0.45,
    "active_markup": 0.45,
    "junk_evidence": 0.45,
    "opaque_blob": 0.45,
    "oversize_object": 0.45,
    "symbol_noise": 0.25,
    "hidden_markup": 0.2,
    "missing_evidence": 0.15,
}
# Lesser findings: mash or filler in a small part of a long field, some (not all)
# evidence entries junk, an object between 4 and 8 KiB.
MINOR_AMOUNTS: dict[str, float] = {
    "keyboard_mash": 0.3,
    "repeated_filler": 0.3,
    "junk_evidence": 0.2,
    "oversize_object": 0.2,
}
SIGNAL_NAMES: tuple[str, ...] = tuple(AMOUNTS)

OVERSIZE_MINOR_BYTES = 4096
OVERSIZE_BYTES = 8192
OPAQUE_BLOB_CHARS = 1024


# Made on the hot path: the constructors fill the instance dict directly, which costs
# less than the frozen dataclass's object.__setattr__ per field; instances stay frozen.


@dataclass(frozen=True, init=False)
class Signal:
    """One finding: ``amount`` is the penalty it subtracts from 1.0."""

    name: str
    amount: float
    detail: str

    def __init__(self, name: str, amount: float, detail: str) -> None:
        d = self.__dict__
        d["name"] = name
        d["amount"] = amount
        d["detail"] = detail

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "amount": self.amount, "detail": self.detail}


@dataclass(frozen=True, init=False)
class QualityReport:
    score: float
    signals: tuple[Signal, ...]

    def __init__(self, score: float, signals: tuple[Signal, ...]) -> None:
        d = self.__dict__
        d["score"] = score
        d["signals"] = signals


class _Findings(dict[str, tuple[float, list[str]]]):
    """At most one finding per signal name; the larger amount wins, details accumulate.
    (A dict subclass: made once per write, and a dict is the cheapest thing to make.)"""

    __slots__ = ()

    def add(self, name: str, detail: str, minor: bool = False) -> None:
        amount = MINOR_AMOUNTS[name] if minor else AMOUNTS[name]
        prev = self.get(name)
        if prev is None:
            self[name] = (amount, [detail])
            return
        details = prev[1]
        if len(details) < 3 and detail not in details:
            details.append(detail)
        if amount > prev[0]:
            self[name] = (amount, details)

    def report(self) -> QualityReport:
        found = self
        if not found:
            return _CLEAN
        if len(found) == 1:  # the usual finding: one signal, its score computed at import
            ((name, (amount, details)),) = found.items()
            return QualityReport(_SCORE_OF[amount], (Signal(name, amount, "; ".join(details)),))
        signals = tuple(
            Signal(name, found[name][0], "; ".join(found[name][1]))
            for name in (sorted(found, key=_RANK.__getitem__) if len(found) > 1 else found)
        )
        return QualityReport(_score(sum(s.amount for s in signals)), signals)


def _score(total: float) -> float:
    return round(min(1.0, max(0.0, 1.0 - total)), 6)


_CLEAN = QualityReport(1.0, ())
_RANK = {name: i for i, name in enumerate(SIGNAL_NAMES)}
_SCORE_OF = {
    amount: _score(sum([amount])) for amount in (*AMOUNTS.values(), *MINOR_AMOUNTS.values())
}

# --- Characters ----------------------------------------------------------------------------

_ASCII_CONTROLS_TO_NUL = bytes(
    0 if c in (*range(0, 9), 11, 12, *range(14, 32), 127) else c for c in range(256)
)
_CONTROL_CLASS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_INVISIBLE_CLASS = (
    "\u200b\u2060-\u2064\ufeff\u180e\u202a-\u202e\u2066-\u2069\u115f\u1160\u3164\uffa0"
    "\U000e0000-\U000e007f"
)
_CONTROL_RE = re.compile(f"[{_CONTROL_CLASS}]")
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE_CLASS}]")
# U+FFFD, private-use characters, and UTF-8 read as Windows-1252 ("Ã©", "â€™").
_CP1252_HIGH = (
    "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122"
)
_GARBLED_RE = re.compile(
    f"[\ufffd\ue000-\uf8ff]|Ã[\u0080-\u00bf{_CP1252_HIGH}]|â€[\u0080-\u00bf{_CP1252_HIGH}]"
)
# Any character one of the three patterns above can start with: one search clears most
# non-ASCII text of all three.
_BAD_CHAR_RE = re.compile(f"[{_CONTROL_CLASS}{_INVISIBLE_CLASS}\ufffd\ue000-\uf8ffÃâ]")
_NON_ASCII_CHECKS = (
    ("control_chars", _CONTROL_RE),
    ("invisible_chars", _INVISIBLE_RE),
    ("encoding_garbage", _GARBLED_RE),
)
_CYRILLIC_GREEK_RE = re.compile("[\u0370-\u04ff]")
_ACTIVE_MARKUP_RE = re.compile(
    r"<script\b[^>]{0,300}>\s*\S|<script\b[^>]{0,300}\bsrc\s*=|<iframe\b[^>]{0,300}\bsrc"
    r"|javascript:\s*\w|\bon(?:error|load|click|mouseover|focus|begin)\s*=\s*[\"']?\w"
    r"|<meta\b[^>]{0,300}http-equiv",
    re.IGNORECASE,
)
_HIDDEN_MARKUP_RE = re.compile(
    r"<!--|\[//\]\s*:\s*#|style\s*=\s*[\"'][^\"']{0,300}(?:display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0|opacity\s*:\s*0)",
    re.IGNORECASE,
)


def _char_checks(f: _Findings, fields: list[tuple[str, str]], blob: str) -> None:
    checks: tuple[tuple[str, re.Pattern[str]], ...] = ()
    if blob.isascii():
        if "\x00" in blob.encode().translate(_ASCII_CONTROLS_TO_NUL).decode():
            checks = _NON_ASCII_CHECKS[:1]
    else:
        if _BAD_CHAR_RE.search(blob):
            checks = _NON_ASCII_CHECKS
        if _CYRILLIC_GREEK_RE.search(blob):
            for where, text in fields:
                mixed = mixed_script_words(text)
                if mixed:
                    f.add("homoglyphs", f"{where}: mixed-script word {quote(mixed[0])}")
    bad_chars: dict[str, int] = {}
    for name, rx in checks:
        if rx.search(blob) is None:
            continue
        for where, text in fields:
            hits = rx.findall(text)
            if hits:
                f.add(name, f"{where}: {_describe(hits)}")
                bad_chars[where] = bad_chars.get(where, 0) + len(hits)
    if bad_chars:
        for where, text in fields:
            bad = bad_chars.get(where, 0)
            if bad >= 3 and bad * 10 >= len(text):
                f.add("nonprintable_ratio", f"{where}: {bad} of {len(text)} characters")

    low = blob.lower()
    if (
        "<" in low
        or "javascript:" in low
        or ("=" in low and ("onerror" in low or "onload" in low or "onclick" in low))
        or "onmouseover" in low
        or "onfocus" in low
    ):
        for where, text in fields:
            if _ACTIVE_MARKUP_RE.search(text):
                f.add("active_markup", f"{where} carries script or event-handler markup")
    if "<!--" in low or "[//]" in low or ("style" in low and "=" in low):
        for where, text in fields:
            if _HIDDEN_MARKUP_RE.search(text):
                f.add("hidden_markup", f"{where} carries hidden or remote-loading markup")


def _describe(hits: list[str]) -> str:
    codes = sorted({f"U+{ord(c):04X}" for h in hits[:200] for c in h})
    more = "…" if len(codes) > 4 else ""
    return f"{len(''.join(hits))}× " + " ".join(codes[:4]) + more


# --- Injection ------------------------------------------------------------------------------


def _injection(f: _Findings, fields: list[tuple[str, str]], blob: str) -> None:
    found = scan(blob)
    if found is None:
        return
    how, families = found
    if how == "phrase":
        where = "across fields"
        for name, text in fields:
            if scan_folded(fold(text)):
                where = name
                break
        f.add("prompt_injection", f"{families} in {where}")
    elif how == "base64":
        f.add("prompt_injection", f"{families} hidden in base64")
    else:
        f.add("prompt_injection", f"instruction-override phrase written {how}")


# --- Score ---------------------------------------------------------------------------------


def _text_fields(
    subject: str, predicate: str, obj: Any, context: str | None, evidence: list[str]
) -> list[tuple[str, str]]:
    fields = [("subject", subject), ("predicate", predicate)]
    if isinstance(obj, str):
        fields.append(("object", obj))
    elif isinstance(obj, (dict, list)):
        fields += object_strings(obj)
    if context:
        fields.append(("context", context))
    if evidence:
        if len(evidence) <= len(_EVIDENCE_NAMES):
            fields.extend(zip(_EVIDENCE_NAMES, evidence, strict=False))
        else:
            fields += [(f"evidence[{i}]", e) for i, e in enumerate(evidence)]
    return fields


_EVIDENCE_NAMES = tuple(f"evidence[{i}]" for i in range(32))  # the model's maximum
_TEXT = operator.itemgetter(1)


def score_quality(a: Assertion, t: Thresholds) -> QualityReport:
    """Score one assertion; ``t.confidence_threshold`` decides when evidence is expected."""
    # Each field is read once: attribute access on a pydantic model goes through its
    # __getattr__ hook, which costs more than a local.
    subject, predicate, obj, evidence, confidence = (
        a.subject,
        a.predicate,
        a.object,
        a.evidence,
        a.confidence,
    )
    f = _Findings()
    fields = _text_fields(subject, predicate, obj, a.context, evidence)
    blob = "\n".join(map(_TEXT, fields))

    core = [("subject", subject, SUBJECT), ("predicate", predicate, PREDICATE)]
    if isinstance(obj, str):
        core.append(("object", obj, OBJECT))
    elif isinstance(obj, (dict, list)):
        if not has_substance(obj):
            f.add("empty_text", "object holds no values")
        else:
            core.extend(
                (where, text, LEAF)
                for where, text in fields[2:]
                if where.startswith("object") and not where.endswith("#key")
            )
    for where, finding in check_core(core):
        f.add(finding.signal, f"{where} {finding.detail}", finding.minor)

    _char_checks(f, fields, blob)
    _injection(f, fields, blob)

    usable = 0
    junk: list[str] = []
    for i, e in enumerate(evidence):
        why = evidence_junk(e)
        if why is None:
            usable += 1
        else:
            junk.append(f"evidence[{i}] {why}: {quote(e, 30)}")
    if junk:
        f.add("junk_evidence", "; ".join(junk[:3]), minor=usable > 0)
    if confidence > t.confidence_threshold and not usable:
        f.add(
            "missing_evidence",
            f"confidence {confidence:g} is above {t.confidence_threshold:g}"
            " with no usable evidence",
        )

    if isinstance(obj, (str, dict, list)):
        if isinstance(obj, str):
            size = (len(obj) if obj.isascii() else len(obj.encode())) + 2
        else:
            size = len(orjson.dumps(obj))
        if size > OVERSIZE_MINOR_BYTES:
            f.add(
                "oversize_object",
                f"object is {size / 1024:.1f} KiB; facts are usually short",
                minor=size <= OVERSIZE_BYTES,
            )
        if size > OPAQUE_BLOB_CHARS:
            for where, text in fields:
                if (
                    where.startswith("object")
                    and len(text) >= OPAQUE_BLOB_CHARS
                    and not any(c.isspace() for c in text[:OPAQUE_BLOB_CHARS])
                ):
                    f.add("opaque_blob", f"{where} is {len(text)} characters without a space")
                    break
    return f.report()
