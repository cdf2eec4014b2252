"""Beliefs: trust-weighted aggregation of assertions into candidates, and disputes.

Pure functions, no I/O: ``index/beliefs.py`` gathers the inputs (every active claim on a
subject/predicate and each agent's trust counts, all as of one LSN) and this module turns
them into an answer. The model, with worked examples, is in ``docs/beliefs.md``:

1. Each agent counts once: its latest active claim (greatest LSN) on the key.
2. A claim's weight is ``trust × confidence × maturity`` (maturity ramps from 0 to 1 over
   the first ``MIN_GOOD_OUTCOMES`` good writes, so a fresh key weighs little).
3. The supporters of one object are split into evidence groups: every agent that is not
   yet trusted shares ONE group (keys are free to mint); trusted agents citing no evidence
   share one group; trusted agents citing evidence are grouped by shared (normalised)
   evidence, transitively. Within a group, support saturates: the i-th strongest member
   (from 0) counts ``weight × RANK_DECAY**i``, combined by noisy-OR.
4. Groups are independent: ``strength = 1 − Π(1 − group)`` (noisy-OR).
5. ``score = strength / max(1, Σ strengths of all candidates)``, so scores sum to at most
   1 and a lone claim keeps its absolute strength.
6. Contested: at least two candidates with ``strength ≥ STRONG``; the dispute measure
   ``contention = runner-up strength / top strength`` (1 = dead heat).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from .trust import MIN_GOOD_OUTCOMES, TrustCounts, is_trusted, trust_score

STRONG = 0.5  # a candidate with at least this strength has strong support
RANK_DECAY = 0.5  # within one evidence group, the i-th member counts weight × RANK_DECAY**i
DIGITS = 6  # figures are rounded to this many decimals in answers

KIND_UNPROVEN = "unproven"  # agents not (yet) trusted, whatever they cite
KIND_UNSOURCED = "unsourced"  # trusted agents citing no evidence
KIND_EVIDENCE = "evidence"  # trusted agents linked by shared evidence (or alone with theirs)

_SPACES = re.compile(r"\s+")


class Claim(NamedTuple):
    """One active assertion on a subject/predicate, as the aggregation needs it.

    Claims, supports and groups are named tuples, not frozen dataclasses: an answer makes
    hundreds of them, and a tuple is built in half the time."""

    id: str
    agent_id: str
    object_json: str  # canonical JSON: the identity of the object
    confidence: float
    evidence: tuple[str, ...] = ()
    context: str = ""
    recorded_at_us: int = 0
    lsn: int = 0


@dataclass(frozen=True, slots=True)
class Standing:
    """What an agent's history says about it as of one LSN."""

    trust: float
    trusted: bool
    maturity: float

    @classmethod
    def of(cls, counts: TrustCounts) -> Standing:
        return _standing_of(counts)


@functools.lru_cache(maxsize=4096)
def _standing_of(counts: TrustCounts) -> Standing:
    good = max(0, counts.accepted) + max(0, counts.approved)
    return Standing(
        trust=trust_score(counts),
        trusted=is_trusted(counts),
        maturity=min(1.0, good / MIN_GOOD_OUTCOMES),
    )


NEWCOMER = Standing.of(TrustCounts())


class Support(NamedTuple):
    claim: Claim
    standing: Standing
    weight: float
    group: int  # index into Candidate.groups


class Group(NamedTuple):
    kind: str
    strength: float
    agents: int


@dataclass(slots=True)
class Candidate:
    object_json: str
    strength: float
    score: float = 0.0
    groups: list[Group] = field(default_factory=list)
    support: list[Support] = field(default_factory=list)

    @property
    def agents(self) -> int:
        return len(self.support)


@dataclass(slots=True)
class Belief:
    candidates: list[Candidate]  # best first
    contested: bool
    contention: float

    @property
    def top_two(self) -> list[Candidate]:
        return sorted(self.candidates, key=lambda c: (-c.strength, c.object_json))[:2]


# -- the pieces of the formula --------------------------------------------------------


def claim_weight(confidence: float, standing: Standing) -> float:
    """``trust × confidence × maturity``, in [0, 1]."""
    c = min(1.0, max(0.0, confidence))
    return standing.trust * c * standing.maturity


def noisy_or(values: Iterable[float]) -> float:
    """``1 − Π(1 − v)``: the chance at least one independent source is right."""
    miss = 1.0
    for v in values:
        miss *= 1.0 - min(1.0, max(0.0, v))
    return 1.0 - miss


def group_strength(weights: Iterable[float]) -> float:
    """Members of one group are not independent: the strongest counts fully, the next
    half, the next a quarter... (``RANK_DECAY``), combined by noisy-OR. Never more than
    ``noisy_or`` of the same weights, never less than the strongest member alone, and it
    never decreases when a member is added or gets stronger."""
    ranked = sorted(weights, reverse=True)
    return noisy_or(w * RANK_DECAY**i for i, w in enumerate(ranked))


@functools.lru_cache(maxsize=65536)
def evidence_key(evidence: str) -> str:
    """The identity of a piece of evidence: NFC, case-folded, whitespace collapsed; for a
    URL also without scheme, ``www.``, fragment and trailing slash (two pages of one
    document are one source)."""
    e = _SPACES.sub(" ", unicodedata.normalize("NFC", evidence)).strip().casefold()
    scheme, sep, rest = e.partition("://")
    if sep and scheme.isascii() and scheme.replace("+", "").replace("-", "").isalnum():
        rest = rest.split("#", 1)[0]
        rest = rest.removeprefix("www.")
        e = rest.rstrip("/")
    return e


def object_key(object_json: str) -> str:
    """The identity of an object: its canonical JSON (sorted keys, NFC strings, as stored)
    with integral numbers written as integers, so ``1``, ``1.0`` and ``1e0`` are one
    object."""
    if object_json.startswith('"') or not any(ch in object_json for ch in ".eE"):
        return object_json  # a string, or nothing that could be a non-integral-looking number
    return orjson.dumps(_integral(orjson.loads(object_json)), option=orjson.OPT_SORT_KEYS).decode()


def _integral(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def latest_per_agent(claims: Iterable[Claim]) -> list[Claim]:
    """Each agent's latest claim (greatest LSN; ties by id): an agent counts once, so it
    cannot boost a claim by repeating it."""
    best: dict[str, Claim] = {}
    for c in claims:
        b = best.get(c.agent_id)
        if b is None or (c.lsn, c.id) > (b.lsn, b.id):
            best[c.agent_id] = c
    return list(best.values())


def _evidence_groups(keys: Sequence[set[str]]) -> list[list[int]]:
    """Connected components of trusted supporters (given by their evidence keys) that
    share an evidence key."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, mine in enumerate(keys):
        for key in mine:
            j = owner.setdefault(key, i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    comps: dict[int, list[int]] = {}
    for i in range(len(keys)):
        comps.setdefault(find(i), []).append(i)
    return list(comps.values())


def _evidence_keys(claim: Claim) -> set[str]:
    keys = {evidence_key(e) for e in claim.evidence}
    keys.discard("")
    return keys


def _candidate(object_json: str, supporters: list[tuple[Claim, Standing, float]]) -> Candidate:
    unproven: list[tuple[Claim, Standing, float]] = []
    unsourced: list[tuple[Claim, Standing, float]] = []
    sourced: list[tuple[Claim, Standing, float]] = []
    sourced_keys: list[set[str]] = []
    for s in supporters:
        if not s[1].trusted:
            unproven.append(s)
        elif keys := _evidence_keys(s[0]):
            sourced.append(s)
            sourced_keys.append(keys)
        else:
            unsourced.append(s)
    parts: list[tuple[str, list[tuple[Claim, Standing, float]]]] = []
    parts += [(KIND_EVIDENCE, [sourced[i] for i in comp])
              for comp in _evidence_groups(sourced_keys)]
    if unsourced:
        parts.append((KIND_UNSOURCED, unsourced))
    if unproven:
        parts.append((KIND_UNPROVEN, unproven))

    def order(m: tuple[Claim, Standing, float]) -> tuple[float, str]:
        return (-m[2], m[0].agent_id)

    strengths = [group_strength(m[2] for m in members) for _, members in parts]
    # Deterministic order: strongest group first, then by its strongest member.
    ranked = sorted(
        range(len(parts)),
        key=lambda g: (-strengths[g], parts[g][0], min(m[0].agent_id for m in parts[g][1])),
    )
    groups: list[Group] = []
    support: list[Support] = []
    for gi, g in enumerate(ranked):
        kind, members = parts[g]
        groups.append(Group(kind, strengths[g], len(members)))
        support += [Support(m[0], m[1], m[2], gi) for m in sorted(members, key=order)]
    return Candidate(
        object_json=object_json,
        strength=noisy_or(strengths[g] for g in ranked),
        groups=groups,
        support=support,
    )


def aggregate(claims: Iterable[Claim], standings: Mapping[str, Standing]) -> Belief:
    """The belief on one subject/predicate from its active claims and the standing of
    their agents (an agent missing from ``standings`` is treated as brand new)."""
    by_object: dict[str, list[tuple[Claim, Standing, float]]] = {}
    for claim in latest_per_agent(claims):
        st = standings.get(claim.agent_id, NEWCOMER)
        weight = claim_weight(claim.confidence, st)
        by_object.setdefault(claim.object_json, []).append((claim, st, weight))
    candidates = [_candidate(o, s) for o, s in by_object.items()]
    total = math.fsum(c.strength for c in candidates)  # exact: independent of order
    for c in candidates:
        c.score = c.strength / max(1.0, total)
    candidates.sort(key=lambda c: (-c.score, -c.agents, c.object_json))
    strong = [c for c in candidates if c.strength >= STRONG]
    return Belief(
        candidates=candidates,
        contested=len(strong) >= 2,
        contention=contention([c.strength for c in candidates]),
    )


def contention(strengths: Sequence[float]) -> float:
    """Runner-up strength over top strength, in [0, 1]; 0 with fewer than two candidates."""
    ranked = sorted(strengths, reverse=True)
    if len(ranked) < 2 or ranked[0] <= 0.0:
        return 0.0
    return ranked[1] / ranked[0]


def run_start(intervals: Iterable[tuple[int, int | None]], at: int) -> int | None:
    """Start of the unbroken run of ``[start, end)`` intervals (``end`` None = open) that
    covers LSN ``at``: the earliest LSN from which, up to ``at``, at least one interval
    was always in force. None when no interval covers ``at``."""
    spans = sorted(((s, e) for s, e in intervals if s <= at), key=lambda x: x[0], reverse=True)
    if not any(e is None or e > at for _, e in spans):
        return None
    start = min(s for s, e in spans if e is None or e > at)
    for s, e in spans:  # by start, latest first
        if s < start and (e is None or e >= start):
            start = s
    return start


def dispute_order(
    contention_: float, runner_up: float, open_since_lsn: int, key: tuple[str, str, str]
) -> tuple[float, float, int, tuple[str, str, str]]:
    """Most contested first: closest race, then the stronger runner-up, then the oldest."""
    return (-round(contention_, DIGITS), -round(runner_up, DIGITS), open_since_lsn, key)
