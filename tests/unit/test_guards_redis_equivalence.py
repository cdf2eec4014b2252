"""The Redis scripts decide exactly as the in-process guards: the same sequences of calls,
with the same injected clock, give the same answers (hypothesis, against a real Redis).

Times are multiples of 1/4 s near 1.7e9, so every instant is an exact double and the two
sides cannot differ by rounding of when a ban ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb.guards import BreakerConfig, CircuitBreakers, LimitPolicy, RateLimiter
from stemedb.guards.link import RedisLink
from stemedb.guards.shared import SharedBreakers, SharedRateLimiter

EXAMPLES = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Clock:
    def __init__(self) -> None:
        self.t = 1.7e9

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def link(redis_url: str) -> Iterator[RedisLink]:
    link = RedisLink(redis_url, timeout=2.0)
    yield link
    assert link.shared, "Redis failed during the test"
    link.close()


# -- GCRA -----------------------------------------------------------------------------

steps = st.lists(
    st.tuples(st.integers(0, 40).map(lambda q: q / 4),  # seconds to wait first
              st.sampled_from(["k1", "k2", "k3"]),
              st.integers(0, 12)),  # cost (above the burst at times)
    min_size=1, max_size=40)


@EXAMPLES
@given(rate=st.sampled_from([0.5, 1.0, 3.0, 7.5, 50.0, 1000.0]), burst=st.integers(1, 10),
       steps=steps)
def test_gcra_script_decides_as_the_in_process_limiter(
        link: RedisLink, rate: float, burst: int, steps: list[tuple[float, str, int]]) -> None:
    clock = Clock()
    policy = LimitPolicy(rate, burst, "assert")
    local = RateLimiter(policy, clock=clock)
    shared = SharedRateLimiter(link, RateLimiter(policy, clock=clock), wall=clock,
                               prefix=f"eq:{uuid.uuid4().hex}:", key_slack_seconds=3600)
    for wait, key, cost in steps:
        clock.t += wait
        expected = local.check(key, cost)
        got = shared.check(key, cost)
        assert got == expected
        assert got.headers() == expected.headers()


# -- circuit breakers -------------------------------------------------------------------

AGENTS = ["a" * 64, "b" * 64]
agent = st.sampled_from([AGENTS[0], AGENTS[0], AGENTS[0], AGENTS[1]])
failure = st.sampled_from([True, True, False])
wait = st.tuples(st.just("wait"), st.integers(1, 40).map(lambda q: q / 4))
# A request as the engine makes it: admit, then record with the admission's probe flag.
request = st.tuples(st.just("request"), agent, failure)
# Repeated strategies weigh more: windows fill up, bans run out, probes compete.
ops = st.lists(
    st.one_of(
        wait, wait, request, request, request, request, request,
        st.tuples(st.just("admit"), agent),
        st.tuples(st.just("record"), agent, st.booleans(), st.booleans()),
        st.tuples(st.just("release"), agent),
        st.tuples(st.just("open"), agent, st.integers(1, 40), st.integers(-30, 5)),
        st.tuples(st.just("reset"), agent),
        st.tuples(st.just("view"), agent),
        st.tuples(st.just("views")),
        st.tuples(st.just("counts")),
    ),
    min_size=20, max_size=80)

configs = st.builds(
    lambda window, min_frac, threshold, timeout, probes: BreakerConfig(
        failure_rate_threshold=threshold, min_requests=max(1, round(window * min_frac)),
        timeout_seconds=timeout, window_size=window, half_open_probes=probes),
    st.integers(1, 8), st.sampled_from([0.25, 0.5, 1.0]),
    st.sampled_from([0.2, 0.5, 0.75, 1.0]), st.sampled_from([1, 2, 5]), st.integers(1, 3))


def _same_view(got: Any, expected: Any) -> None:
    g, e = got.to_dict(), expected.to_dict()
    for k in ("agent_id", "state", "requests", "reason", "manual"):
        assert g[k] == e[k], (k, g, e)
    for k in ("failure_rate", "opened_at", "until"):
        assert (g[k] is None) == (e[k] is None), (k, g, e)
        if g[k] is not None:
            assert g[k] == pytest.approx(e[k], abs=1e-6), (k, g, e)


@EXAMPLES
@given(config=configs, ops=ops)
def test_breaker_script_follows_the_in_process_state_machine(
        link: RedisLink, config: BreakerConfig, ops: list[tuple[Any, ...]]) -> None:
    clock = Clock()

    def breakers() -> CircuitBreakers:
        return CircuitBreakers(config, clock=clock, wall=clock, idle_seconds=1e7)

    local = breakers()
    shared = SharedBreakers(link, breakers(), wall=clock, prefix=f"eq:{uuid.uuid4().hex}:")
    admissions: dict[str, Any] = {}
    for op, *args in ops:
        if op == "wait":
            clock.t += args[0]
        elif op in ("admit", "request"):
            e, g = local.admit(args[0]), shared.admit(args[0])
            assert (g.allowed, g.state, g.probe) == (e.allowed, e.state, e.probe)
            assert g.retry_after == pytest.approx(e.retry_after, abs=1e-6)
            if op == "admit":
                admissions[args[0]] = e
            elif e.allowed:
                local.record(args[0], args[1], probe=e.probe)
                shared.record(args[0], args[1], probe=e.probe)
        elif op == "record":
            local.record(args[0], args[1], probe=args[2])
            shared.record(args[0], args[1], probe=args[2])
        elif op == "release":
            adm = admissions.pop(args[0], None)
            if adm is not None:
                local.release(args[0], adm)
                shared.release(args[0], adm)
        elif op == "open":
            at = clock.t + args[2]
            _same_view(shared.open(args[0], "manual", args[1], at=at),
                       local.open(args[0], "manual", args[1], at=at))
        elif op == "reset":
            _same_view(shared.reset(args[0]), local.reset(args[0]))
        elif op == "view":
            _same_view(shared.view(args[0]), local.view(args[0]))
        elif op == "views":
            got, expected = shared.views(), local.views()
            assert [v.agent_id for v in got] == [v.agent_id for v in expected]
            for g, e in zip(got, expected, strict=True):
                _same_view(g, e)
        else:
            assert shared.counts() == local.counts()
