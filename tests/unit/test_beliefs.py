"""The belief formula (stemedb.beliefs): worked examples of docs/beliefs.md and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemedb.beliefs import (
    KIND_EVIDENCE,
    KIND_UNPROVEN,
    KIND_UNSOURCED,
    NEWCOMER,
    STRONG,
    Claim,
    Standing,
    aggregate,
    claim_weight,
    contention,
    evidence_key,
    group_strength,
    latest_per_agent,
    noisy_or,
    run_start,
)
from stemedb.trust import TrustCounts

FRESH = Standing.of(TrustCounts(accepted=1))  # a key whose one claim is this one
TRUSTED = Standing.of(TrustCounts(accepted=6))  # five earlier good writes + this one


def claim(
    agent: str,
    obj: str = '"paris"',
    conf: float = 0.9,
    evidence: tuple[str, ...] = (),
    lsn: int = 1,
    cid: str | None = None,
) -> Claim:
    cid = cid or f"{agent}-{lsn}-{obj}-{conf}-{'|'.join(evidence)}"
    return Claim(
        id=cid, agent_id=agent, object_json=obj, confidence=conf, evidence=evidence, lsn=lsn
    )


def by_object(belief):  # type: ignore[no-untyped-def]
    return {c.object_json: c for c in belief.candidates}


# -- the pieces ---------------------------------------------------------------------------


def test_standing_of_counts() -> None:
    assert Standing(trust=0.5, trusted=False, maturity=0.0) == NEWCOMER
    assert Standing(trust=0.666667, trusted=False, maturity=0.2) == FRESH
    assert Standing(trust=0.875, trusted=True, maturity=1.0) == TRUSTED
    assert claim_weight(0.9, TRUSTED) == pytest.approx(0.7875)
    assert claim_weight(0.9, FRESH) == pytest.approx(0.12)
    assert claim_weight(0.9, NEWCOMER) == 0.0


def test_group_strength_saturates() -> None:
    assert group_strength([]) == 0.0
    assert group_strength([0.8]) == pytest.approx(0.8)
    # 0.8, then 0.8 × 0.5, then 0.8 × 0.25
    assert group_strength([0.8, 0.8, 0.8]) == pytest.approx(1 - 0.2 * 0.6 * 0.8)
    assert noisy_or([0.8, 0.8, 0.8]) == pytest.approx(1 - 0.2**3)
    # however many copies, a group of weight-w members stays below 1 - Π(1 - w/2^i)
    assert group_strength([0.12] * 1000) < 0.23


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://Example.org/atlas#p12", "http://www.example.org/atlas/"),
        ("  The  Times, 3 May ", "the times, 3 may"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),
    ],
)
def test_evidence_keys_that_are_the_same_source(a: str, b: str) -> None:
    assert evidence_key(a) == evidence_key(b)


def test_evidence_keys_that_differ() -> None:
    assert evidence_key("https://example.org/atlas") != evidence_key("https://example.org/other")
    assert evidence_key("https://example.org/a?page=1") != evidence_key(
        "https://example.org/a?page=2"
    )


def test_latest_per_agent_counts_each_agent_once() -> None:
    a1, a2, b1 = claim("a", lsn=1), claim("a", '"lyon"', lsn=5), claim("b", lsn=3)
    assert sorted(latest_per_agent([a1, a2, b1]), key=lambda c: c.agent_id) == [a2, b1]


def test_run_start() -> None:
    assert run_start([], 10) is None
    assert run_start([(3, None)], 10) == 3
    assert run_start([(3, 5)], 10) is None  # ended before 10
    assert run_start([(3, 6), (6, None)], 10) == 3  # handed over without a gap
    assert run_start([(3, 5), (6, None)], 10) == 6  # a gap at LSN 5
    assert run_start([(1, 4), (3, 8), (7, 12)], 10) == 1
    assert run_start([(2, None), (12, None)], 10) == 2  # later intervals are ignored


def test_contention() -> None:
    assert contention([]) == 0.0
    assert contention([0.9]) == 0.0
    assert contention([0.9, 0.45]) == pytest.approx(0.5)
    assert contention([0.5, 0.5, 0.1]) == 1.0


# -- worked examples (docs/beliefs.md) ----------------------------------------------------


def test_example_one_trusted_agent() -> None:
    b = aggregate([claim("a", evidence=("https://atlas.example/p12",))], {"a": TRUSTED})
    (c,) = b.candidates
    assert c.strength == pytest.approx(0.7875) and c.score == pytest.approx(0.7875)
    assert not b.contested and b.contention == 0.0


def test_example_independent_versus_shared_evidence() -> None:
    independent = aggregate(
        [claim(x, evidence=(f"https://src-{x}.example/",)) for x in "abc"],
        dict.fromkeys("abc", TRUSTED),
    )
    shared = aggregate(
        [claim(x, evidence=("https://atlas.example/p12",)) for x in "abc"],
        dict.fromkeys("abc", TRUSTED),
    )
    (ci,), (cs,) = independent.candidates, shared.candidates
    assert ci.strength == pytest.approx(1 - (1 - 0.7875) ** 3)  # 0.990404
    assert [g.kind for g in ci.groups] == [KIND_EVIDENCE] * 3
    assert cs.strength == pytest.approx(1 - (1 - 0.7875) * (1 - 0.39375) * (1 - 0.196875))
    assert [(g.kind, g.agents) for g in cs.groups] == [(KIND_EVIDENCE, 3)]
    assert cs.strength < ci.strength


def test_example_shared_evidence_links_transitively() -> None:
    claims = [
        claim("a", evidence=("s1", "s2")),
        claim("b", evidence=("s2",)),
        claim("c", evidence=("s3", "S1")),
        claim("d", evidence=("s4",)),
    ]
    b = aggregate(claims, dict.fromkeys("abcd", TRUSTED))
    assert sorted(g.agents for g in b.candidates[0].groups) == [1, 3]


def test_example_trusted_agents_without_evidence_share_one_group() -> None:
    b = aggregate([claim(x) for x in "abc"], dict.fromkeys("abc", TRUSTED))
    assert [(g.kind, g.agents) for g in b.candidates[0].groups] == [(KIND_UNSOURCED, 3)]


def test_example_sybils_do_not_outweigh_three_trusted_independent_agents() -> None:
    for sybil_evidence in [(), ("https://sybil.example/proof",)]:
        claims = [claim(f"s{i:02d}", '"lyon"', 0.9, sybil_evidence) for i in range(50)]
        claims += [claim(f"t{i}", '"paris"', 0.9, (f"https://src{i}.example/",)) for i in range(3)]
        stand = {c.agent_id: TRUSTED if c.agent_id[0] == "t" else FRESH for c in claims}
        b = aggregate(claims, stand)
        paris, lyon = by_object(b)['"paris"'], by_object(b)['"lyon"']
        assert [c.object_json for c in b.candidates] == ['"paris"', '"lyon"']
        assert paris.strength == pytest.approx(0.990404, abs=1e-6)
        assert lyon.strength == pytest.approx(0.221448, abs=1e-6)
        assert [(g.kind, g.agents) for g in lyon.groups] == [(KIND_UNPROVEN, 50)]
        assert paris.score == pytest.approx(0.990404 / (0.990404 + 0.221448), abs=1e-6)
        assert lyon.agents == 50 and not b.contested


def test_example_contested_pair() -> None:
    claims = [
        claim("a", '"black sea"', 0.9, ("https://a.example/",)),
        claim("b", '"black sea"', 0.8, ("https://b.example/",)),
        claim("c", '"baltic sea"', 0.9, ("https://c.example/",)),
    ]
    b = aggregate(claims, dict.fromkeys("abc", TRUSTED))
    black, baltic = by_object(b)['"black sea"'], by_object(b)['"baltic sea"']
    assert black.strength == pytest.approx(1 - (1 - 0.7875) * (1 - 0.7))  # 0.93625
    assert baltic.strength == pytest.approx(0.7875)
    total = black.strength + baltic.strength
    assert black.score == pytest.approx(black.strength / total)
    assert b.contested and b.contention == pytest.approx(0.7875 / 0.93625)


def test_a_repeated_claim_does_not_add_support() -> None:
    once = aggregate([claim("a", lsn=1)], {"a": TRUSTED})
    repeated = aggregate([claim("a", lsn=i) for i in range(1, 20)], {"a": TRUSTED})
    assert repeated.candidates[0].strength == once.candidates[0].strength
    assert repeated.candidates[0].agents == 1


def test_an_agent_that_changed_its_mind_counts_for_its_latest_claim_only() -> None:
    b = aggregate([claim("a", '"paris"', lsn=1), claim("a", '"lyon"', lsn=2)], {"a": TRUSTED})
    assert [c.object_json for c in b.candidates] == ['"lyon"']


def test_unknown_agents_weigh_nothing() -> None:
    b = aggregate([claim("x")], {})
    assert b.candidates[0].strength == 0.0 and b.candidates[0].score == 0.0


# -- properties ---------------------------------------------------------------------------

AGENTS = [f"agent{i:02d}" for i in range(12)]
standings_st = st.builds(
    lambda acc, q, ap, rj, rt: Standing.of(TrustCounts(acc, q, ap, rj, rt)),
    st.integers(0, 12),
    st.integers(0, 6),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
)
claims_st = st.lists(
    st.builds(
        claim,
        agent=st.sampled_from(AGENTS),
        obj=st.sampled_from(['"a"', '"b"', '"c"', "1", '{"k":1}']),
        conf=st.floats(0, 1),
        evidence=st.lists(
            st.sampled_from(["e1", "e2", "https://x.example/e3", "e4"]), max_size=3
        ).map(tuple),
        lsn=st.integers(1, 50),
    ),
    max_size=30,
)
table_st = st.fixed_dictionaries({a: standings_st for a in AGENTS})


@settings(max_examples=150, deadline=None)
@given(claims_st, table_st)
def test_scores_are_in_range_and_sum_to_at_most_one(claims: list[Claim], table) -> None:  # type: ignore[no-untyped-def]
    b = aggregate(claims, table)
    assert len({c.object_json for c in b.candidates}) == len(b.candidates)
    for c in b.candidates:
        assert 0.0 <= c.score <= c.strength <= 1.0
        assert math.isfinite(c.score)
        assert c.agents == len({s.claim.agent_id for s in c.support})
    assert sum(c.score for c in b.candidates) <= 1.0 + 1e-9
    assert [c.score for c in b.candidates] == sorted((c.score for c in b.candidates), reverse=True)
    assert b.contested == (sum(c.strength >= STRONG for c in b.candidates) >= 2)
    assert 0.0 <= b.contention <= 1.0
    # every agent counted once, for its latest claim
    agents = [s.claim.agent_id for c in b.candidates for s in c.support]
    assert len(agents) == len(set(agents)) == len({c.agent_id for c in claims})


@settings(max_examples=100, deadline=None)
@given(claims_st, table_st, st.randoms(use_true_random=False))
def test_the_answer_does_not_depend_on_input_order(claims: list[Claim], table, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    a, b = aggregate(claims, table), aggregate(shuffled, table)
    assert [(c.object_json, c.score, [s.claim.id for s in c.support]) for c in a.candidates] == [
        (c.object_json, c.score, [s.claim.id for s in c.support]) for c in b.candidates
    ]


@settings(max_examples=100, deadline=None)
@given(
    claims_st,
    table_st,
    st.floats(0, 1),
    st.sampled_from(['"a"', '"b"', '"zz"']),
    st.lists(st.sampled_from(["e1", "fresh-source"]), max_size=2).map(tuple),
)
def test_a_new_supporter_never_lowers_a_candidates_strength(
    claims: list[Claim],
    table,
    conf,  # type: ignore[no-untyped-def]
    obj,
    evidence,
) -> None:
    before = by_object(aggregate(claims, table)).get(obj)
    newcomer = claim("agent-new", obj, conf, evidence, lsn=99)
    after = by_object(aggregate([*claims, newcomer], {**table, "agent-new": TRUSTED}))[obj]
    assert after.strength >= (before.strength if before else 0.0) - 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), max_size=20), st.floats(0, 1))
def test_group_strength_bounds_and_monotonicity(weights: list[float], extra: float) -> None:
    g = group_strength(weights)
    assert max(weights, default=0.0) - 1e-12 <= g <= noisy_or(weights) + 1e-12
    assert group_strength([*weights, extra]) >= g - 1e-12
