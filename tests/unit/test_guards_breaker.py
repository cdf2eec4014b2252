"""Per-agent circuit breakers: transitions, probes, manual bans, memory bounds."""

from __future__ import annotations

import threading

import pytest

from stemedb.guards import (
    REASON_FAILURE_RATE,
    REASON_PROBE_FAILED,
    BreakerConfig,
    BreakerState,
    CircuitBreakers,
)

WALL0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Clocks:
    """A monotonic and a wall clock that advance together."""

    def __init__(self) -> None:
        self.mono = FakeClock(500.0)
        self.wall = FakeClock(WALL0)

    def advance(self, seconds: float) -> None:
        self.mono.advance(seconds)
        self.wall.advance(seconds)


def make(config: BreakerConfig | None = None, **kw: float) -> tuple[CircuitBreakers, Clocks]:
    clocks = Clocks()
    cb = CircuitBreakers(config or BreakerConfig(), clock=clocks.mono, wall=clocks.wall, **kw)  # type: ignore[arg-type]
    return cb, clocks


def trip(cb: CircuitBreakers, agent: str, n: int = 20) -> None:
    for _ in range(n):
        cb.record(agent, True)


def test_unknown_agent_is_closed_and_takes_no_space() -> None:
    cb, _ = make()
    for i in range(1000):
        assert cb.admit(f"a{i}").allowed
    assert len(cb) == 0
    v = cb.view("nobody")
    assert (v.state, v.requests, v.failure_rate, v.reason, v.until, v.manual) == (
        "CLOSED",
        0,
        0.0,
        None,
        None,
        False,
    )


def test_needs_min_requests_before_opening() -> None:
    cb, _ = make()
    trip(cb, "a", 19)
    assert cb.view("a").state == "CLOSED"
    assert cb.view("a").failure_rate == 1.0
    cb.record("a", True)
    v = cb.view("a")
    assert v.state == "OPEN" and v.reason == REASON_FAILURE_RATE and not v.manual
    assert v.requests == 20
    assert v.opened_at == WALL0 and v.until == WALL0 + 300


def test_the_success_that_reaches_min_requests_can_open_it() -> None:
    cb, _ = make(BreakerConfig(min_requests=4, failure_rate_threshold=0.5))
    for failure in (True, True, False):
        cb.record("a", failure)
    assert cb.view("a").state == "CLOSED"  # 3 judged: too few
    cb.record("a", False)
    assert cb.view("a").state == "OPEN"  # 2 / 4


def test_opens_exactly_at_the_threshold() -> None:
    cb, _ = make()
    for i in range(19):
        cb.record("a", i % 2 == 1)  # 9 failures in 19
    assert cb.view("a").state == "CLOSED"
    cb.record("a", False)  # 9 / 20 = 0.45
    assert cb.view("a").state == "CLOSED"
    cb.record("a", True)  # 10 / 21 < 0.5
    assert cb.view("a").state == "CLOSED"
    cb.record("a", True)  # 11 / 22 = 0.5
    assert cb.view("a").state == "OPEN"


def test_window_slides_over_the_last_window_size_outcomes() -> None:
    cb, _ = make(BreakerConfig(window_size=10, min_requests=5, failure_rate_threshold=0.5))
    for _ in range(2):
        cb.record("a", True)
    for _ in range(10):
        cb.record("a", False)  # the failures slide out of the window
    v = cb.view("a")
    assert (v.state, v.requests, v.failure_rate) == ("CLOSED", 10, 0.0)
    for _ in range(4):
        cb.record("a", True)
    assert cb.view("a").failure_rate == pytest.approx(0.4)
    cb.record("a", True)
    assert cb.view("a").state == "OPEN"


def test_open_refuses_with_time_left_then_half_opens() -> None:
    cb, clocks = make()
    trip(cb, "a")
    refused = cb.admit("a")
    assert not refused.allowed and refused.state is BreakerState.OPEN
    assert refused.retry_after == pytest.approx(300)
    clocks.advance(299.5)
    assert cb.admit("a").retry_after == pytest.approx(0.5)
    clocks.advance(0.5)
    assert cb.view("a").state == "HALF_OPEN"


def test_exactly_the_probes_then_close_on_success() -> None:
    cb, clocks = make()
    trip(cb, "a")
    clocks.advance(300)
    admissions = [cb.admit("a") for _ in range(10)]
    probes = [x for x in admissions if x.allowed]
    assert len(probes) == 3 and all(p.probe and p.state is BreakerState.HALF_OPEN for p in probes)
    assert all(not x.allowed and x.retry_after >= 1 for x in admissions[3:])
    cb.record("a", False, probe=True)
    cb.record("a", False, probe=True)
    assert not cb.admit("a").allowed  # still three slots used: two done, one out
    cb.record("a", False, probe=True)
    v = cb.view("a")
    assert (v.state, v.requests, v.reason, v.until) == ("CLOSED", 0, None, None)
    assert cb.admit("a") == cb.admit("b")  # plain CLOSED admission


def test_one_failed_probe_reopens_at_once_with_a_fresh_timeout() -> None:
    cb, clocks = make()
    trip(cb, "a")
    clocks.advance(400)
    assert all(cb.admit("a").allowed for _ in range(3))
    cb.record("a", False, probe=True)
    cb.record("a", True, probe=True)
    v = cb.view("a")
    assert v.state == "OPEN" and v.reason == REASON_PROBE_FAILED
    assert v.until == clocks.wall.now + 300
    cb.record("a", False, probe=True)  # the last probe's answer comes too late: ignored
    assert cb.view("a").state == "OPEN"
    assert cb.admit("a").retry_after == pytest.approx(300)


def test_outcomes_of_older_writes_are_ignored_while_not_closed() -> None:
    cb, clocks = make()
    trip(cb, "a")
    before = cb.view("a")
    cb.record("a", False)
    assert cb.view("a") == before
    clocks.advance(300)
    cb.record("a", False)  # not a probe: does not close it
    assert cb.view("a").state == "HALF_OPEN"


def test_release_gives_the_probe_slot_back() -> None:
    cb, clocks = make(BreakerConfig(half_open_probes=1))
    trip(cb, "a")
    clocks.advance(300)
    probe = cb.admit("a")
    assert probe.probe and not cb.admit("a").allowed
    cb.release("a", probe)
    again = cb.admit("a")
    assert again.allowed and again.probe
    cb.release("a", cb.admit("b"))  # not a probe: nothing to give back
    cb.record("a", False, probe=True)
    assert cb.view("a").state == "CLOSED"


def test_leaked_probes_are_reclaimed_after_the_lease() -> None:
    cb, clocks = make(BreakerConfig(half_open_probes=2), probe_lease_seconds=30)
    trip(cb, "a")
    clocks.advance(300)
    assert cb.admit("a").allowed and cb.admit("a").allowed
    clocks.advance(29)
    assert not cb.admit("a").allowed
    clocks.advance(1)
    assert cb.admit("a").allowed


def test_manual_open_reports_until_and_survives_replay() -> None:
    cb, clocks = make()
    v = cb.open("a", "flooding_quarantine", 3600)
    assert (v.state, v.reason, v.manual) == ("OPEN", "flooding_quarantine", True)
    assert v.opened_at == WALL0 and v.until == WALL0 + 3600
    assert cb.admit("a").retry_after == pytest.approx(3600)

    # Replay after a restart: a fresh process, the journaled open with its own `at`.
    replay, clocks2 = make()
    clocks2.advance(600)
    v2 = replay.open("a", "flooding_quarantine", 3600, at=WALL0)
    assert v2.until == WALL0 + 3600 and v2.opened_at == WALL0
    assert replay.admit("a").retry_after == pytest.approx(3000)

    # A ban that is already over changes nothing.
    late, clocks3 = make()
    clocks3.advance(4000)
    v3 = late.open("b", "old", 3600, at=WALL0)
    assert v3.state == "CLOSED" and len(late) == 0

    with pytest.raises(ValueError):
        cb.open("a", "x", 0)


def test_manual_open_expires_into_half_open() -> None:
    cb, clocks = make()
    cb.open("a", "ban", 60)
    clocks.advance(60)
    probe = cb.admit("a")
    assert probe.allowed and probe.probe
    cb.record("a", True, probe=True)
    v = cb.view("a")
    assert v.state == "OPEN" and v.reason == REASON_PROBE_FAILED and not v.manual


def test_reset_closes_and_forgets() -> None:
    cb, _ = make()
    trip(cb, "a")
    v = cb.reset("a")
    assert (v.state, v.requests, v.failure_rate) == ("CLOSED", 0, 0.0)
    assert cb.admit("a").allowed
    trip(cb, "a", 19)
    assert cb.view("a").state == "CLOSED"  # the window started again


def test_views_are_sorted_open_half_open_then_failure_rate() -> None:
    cb, clocks = make()
    trip(cb, "old-open")
    clocks.advance(300)  # -> HALF_OPEN
    trip(cb, "open")
    cb.open("manual", "ban", 100)
    cb.record("ok", False)
    cb.record("some", True)
    cb.record("some", False)
    cb.record("bad", True)
    states = [(v.agent_id, v.state) for v in cb.views()]
    assert states == [
        ("open", "OPEN"),  # failure rate 1.0
        ("manual", "OPEN"),  # failure rate 0.0
        ("old-open", "HALF_OPEN"),
        ("bad", "CLOSED"),
        ("some", "CLOSED"),
        ("ok", "CLOSED"),
    ]
    assert cb.counts() == {"CLOSED": 3, "OPEN": 2, "HALF_OPEN": 1}
    assert cb.view("open").to_dict()["state"] == "OPEN"


@pytest.mark.parametrize("probes", [1, 3, 7])
def test_fifty_threads_on_a_half_open_breaker_get_exactly_the_probes(probes: int) -> None:
    cb, clocks = make(BreakerConfig(half_open_probes=probes))
    trip(cb, "a")
    clocks.advance(300)
    barrier = threading.Barrier(50)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        got = [cb.admit("a").allowed for _ in range(20)]
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1000
    assert sum(results) == probes


def test_flood_of_agents_stays_within_max_agents_but_keeps_bans() -> None:
    cb, _ = make(max_agents=5_000)
    trip(cb, "flooder")
    cb.open("banned", "ban", 10_000)
    for i in range(200_000):
        cb.admit(f"agent-{i}")
        cb.record(f"agent-{i}", i % 2 == 0)
        assert len(cb) <= 5_000
    assert cb.view("flooder").state == "OPEN"
    assert cb.view("banned").state == "OPEN"
    assert cb.evictions == 200_000 + 2 - 5_000


def test_expired_bans_can_be_evicted() -> None:
    cb, clocks = make(max_agents=10)
    trip(cb, "flooder")
    clocks.advance(300)
    for i in range(100):
        cb.record(f"agent-{i}", False)
    assert len(cb) <= 10
    assert cb.view("flooder").requests == 0  # forgotten: its timeout had passed


def test_idle_agents_without_failures_expire() -> None:
    cb, clocks = make(idle_seconds=60)
    for i in range(1000):
        cb.record(f"clean-{i}", False)
    cb.record("suspect", True)
    trip(cb, "open")
    clocks.advance(61)
    for i in range(1000):
        cb.record(f"new-{i}", False)
    assert not any(v.agent_id.startswith("clean-") for v in cb.views())
    assert cb.view("suspect").requests == 1  # a failure in the window is kept
    assert cb.view("open").requests == 20  # an OPEN breaker is kept
    clocks.advance(400)
    for i in range(600):  # expiry is incremental: two looks per call
        cb.record(f"later-{i}", False)
    assert cb.view("open").requests == 0  # timeout passed and idle: forgotten
    assert cb.view("suspect").requests == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_rate_threshold": 0.0},
        {"failure_rate_threshold": 1.5},
        {"min_requests": 0},
        {"min_requests": 101},
        {"window_size": 0},
        {"timeout_seconds": 0},
        {"half_open_probes": 0},
    ],
)
def test_bad_configs(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]
