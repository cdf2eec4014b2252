"""GCRA rate limiter: precision against the arithmetic, headers, memory bounds."""

from __future__ import annotations

import dataclasses
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemedb.guards import LimitDecision, LimitPolicy, RateLimiter, retry_after_header


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(rate: float, burst: int, clock: FakeClock, **kw: int) -> RateLimiter:
    return RateLimiter(LimitPolicy(rate=rate, burst=burst, name="assert"), clock=clock, **kw)


@pytest.mark.parametrize(
    ("rate", "burst", "seconds"),
    [(10, 5, 3.0), (50, 100, 2.0), (0.5, 1, 20.0), (200, 400, 1.5), (3, 7, 11.0), (1, 1, 60.0)],
)
def test_admitted_is_burst_plus_rate_times_elapsed(rate: float, burst: int, seconds: float) -> None:
    clock = FakeClock()
    lim = limiter(rate, burst, clock)
    start = clock.now
    # Arrivals much faster than the rate and not aligned with it. (With burst 1 a bucket
    # that is full while nobody asks loses the wait between arrivals, so they must be
    # dense for the formula to hold within one.)
    step = 1.0 / (rate * 97.3)
    admitted = 0
    while clock.now - start <= seconds:
        admitted += lim.check("k").allowed
        clock.advance(step)
    assert abs(admitted - (burst + rate * seconds)) <= 1


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 10.0, 50.0]),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=60),
)
def test_no_interval_admits_more_than_burst_plus_rate(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = FakeClock()
    lim = limiter(rate, burst, clock)
    times: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        if lim.check("k").allowed:
            times.append(clock.now)
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 1e-6


def test_burst_at_once_then_refused_with_exact_retry_after() -> None:
    clock = FakeClock()
    lim = limiter(4.0, 3, clock)
    remaining = [lim.check("k").remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    refused = lim.check("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.25)
    assert refused.reset_seconds == pytest.approx(0.75)
    clock.advance(0.2499)
    assert not lim.check("k").allowed
    clock.advance(0.0001)
    assert lim.check("k").allowed
    assert lim.retry_after("k") == pytest.approx(0.25)
    assert lim.retry_after("other") == 0.0


def test_refused_requests_do_not_consume() -> None:
    clock = FakeClock()
    lim = limiter(1.0, 2, clock)
    assert lim.check("k").allowed and lim.check("k").allowed
    for _ in range(100):
        assert not lim.check("k").allowed
    clock.advance(1.0)
    assert lim.check("k").allowed


def test_keys_are_independent() -> None:
    clock = FakeClock()
    lim = limiter(1.0, 1, clock)
    assert lim.check("a").allowed
    assert not lim.check("a").allowed
    assert lim.check("b").allowed


def test_cost() -> None:
    clock = FakeClock()
    lim = limiter(10.0, 10, clock)
    d = lim.check("k", cost=4)
    assert d.allowed and d.remaining == 6
    assert not lim.check("k", cost=7).allowed
    peek = lim.check("k", cost=0)
    assert peek.allowed and peek.remaining == 6
    assert lim.check("fresh", cost=0).allowed
    assert len(lim) == 1  # a look does not store a key
    with pytest.raises(ValueError):
        lim.check("k", cost=-1)


def test_cost_above_burst_needs_a_full_bucket_and_pays_in_full() -> None:
    clock = FakeClock()
    lim = limiter(10.0, 10, clock)
    big = lim.check("k", cost=30)  # 3 s worth of requests
    assert big.allowed and big.remaining == 0
    assert big.reset_seconds == pytest.approx(3.0)
    refused = lim.check("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(2.1)  # back under the tolerance
    clock.advance(2.1)
    assert lim.check("k").allowed
    clock.advance(0.5)
    assert not lim.check("k", cost=30).allowed  # bucket not full yet


def test_headers_follow_the_draft_syntax() -> None:
    clock = FakeClock()
    lim = RateLimiter(LimitPolicy(rate=50.0, burst=100, name="assert"), clock=clock)
    ok = lim.check("k")
    h = ok.headers()
    assert h == {"RateLimit-Policy": '"assert";q=100;w=2', "RateLimit": '"assert";r=99;t=1'}
    for _ in range(99):
        lim.check("k")
    refused = lim.check("k")
    h = refused.headers()
    assert re.fullmatch(r'"assert";q=100;w=2', h["RateLimit-Policy"])
    assert re.fullmatch(r'"assert";r=0;t=2', h["RateLimit"])
    assert h["Retry-After"] == "1"  # 20 ms rounded up to a whole second


def test_header_window_and_retry_after_rounding() -> None:
    clock = FakeClock()
    lim = RateLimiter(LimitPolicy(rate=0.1, burst=1, name="admin"), clock=clock)
    assert lim.check("k").headers()["RateLimit-Policy"] == '"admin";q=1;w=10'
    refused = lim.check("k")
    assert refused.headers()["Retry-After"] == "10"
    clock.advance(0.5)
    assert lim.check("k").headers()["Retry-After"] == "10"  # 9.5 s rounds up
    assert retry_after_header(0.0) == 1
    assert retry_after_header(2.0) == 2
    assert retry_after_header(2.000001) == 3
    assert retry_after_header(float("inf")) == 1
    assert LimitPolicy(rate=3.0, burst=7, name="q").window == 3  # ceil(7 / 3)


def test_fast_decision_is_a_real_decision() -> None:
    clock = FakeClock()
    d = limiter(1.0, 1, clock).check("k")
    assert set(d.__dict__) == {f.name for f in dataclasses.fields(LimitDecision)}
    assert d == LimitDecision(True, 1, 0, 1.0, 0.0, "assert", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.allowed = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0, "burst": 1, "name": "x"},
        {"rate": float("nan"), "burst": 1, "name": "x"},
        {"rate": 1.0, "burst": 0, "name": "x"},
        {"rate": 1.0, "burst": 1, "name": ""},
        {"rate": 1.0, "burst": 1, "name": 'a"b'},
    ],
)
def test_bad_policies(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LimitPolicy(**kwargs)  # type: ignore[arg-type]


def test_flood_of_fresh_keys_stays_within_max_keys() -> None:
    clock = FakeClock()  # frozen: nothing ever expires, only the bound holds memory
    lim = limiter(1.0, 5, clock, max_keys=10_000)
    for i in range(200_000):
        assert lim.check(f"key-{i}").allowed  # eviction fails open: fresh keys pass
        assert len(lim) <= 10_000
    assert lim.evictions == 190_000


def test_eviction_spares_recently_refused_keys() -> None:
    clock = FakeClock()
    lim = limiter(1.0, 1, clock, max_keys=100)
    lim.check("abuser")
    for i in range(1000):
        assert not lim.check("abuser").allowed  # keeps being seen, so never evicted
        lim.check(f"key-{i}")


def test_expired_keys_are_dropped() -> None:
    clock = FakeClock()
    lim = limiter(10.0, 2, clock)
    for i in range(50_000):
        lim.check(f"key-{i}")
        clock.advance(0.05)  # each key's TAT (now + 0.1 s) passes two calls later
        assert len(lim) <= 3
    clock.advance(1.0)
    lim.check("last")
    lim.check("last")
    assert len(lim) == 1


def test_concurrent_checks_never_over_admit() -> None:
    clock = FakeClock()
    lim = limiter(1.0, 100, clock)
    allowed = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        allowed.append(sum(lim.check("k").allowed for _ in range(500)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100
