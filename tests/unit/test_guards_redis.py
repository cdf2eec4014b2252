"""Guards shared through a real Redis: two ``Guards`` on one Redis stand for two nodes.

Redis is the one started by tests/services.py; tests that kill it start it again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stemedb.engine import Database
from stemedb.errors import ConfigError
from stemedb.guards import BreakerState, CircuitBreakers, Guards, RateLimiter
from stemedb.guards.link import redacted
from stemedb.guards.shared import SharedBreakers, SharedRateLimiter
from stemedb.metrics import Metrics
from stemedb.settings import load_settings
from tests.services import RedisServer
from tests.unit.test_metrics import BOUND, DECLARED, families, value

AGENT = "a" * 64
OTHER = "b" * 64


class Wall:
    """A unix clock that moves only when told."""

    def __init__(self, t: float = 1.7e9) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_settings(redis_url: str = "", **overrides: Any) -> Any:
    # A generous timeout: a busy test machine must not look like an unreachable Redis.
    values = {"guards.redis_url": redis_url, "guards.redis_timeout_ms": 2000,
              "rate_limit.assert_rate": 1.0,
              "rate_limit.assert_burst": 10, "circuit_breaker.min_requests": 4,
              "circuit_breaker.window_size": 10, "circuit_breaker.timeout_seconds": 60.0,
              "circuit_breaker.half_open_probes": 2}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(env={}, overrides=values)


@pytest.fixture
def nodes(redis_url: str) -> Iterator[Callable[..., tuple[Guards, Guards, Wall]]]:
    """Two nodes' guards on one Redis and one fake wall clock."""
    made: list[Guards] = []

    def make(**overrides: Any) -> tuple[Guards, Guards, Wall]:
        wall = Wall()
        settings = make_settings(redis_url, **overrides)
        a = Guards(settings, clock=wall, wall=wall)
        b = Guards(settings, clock=wall, wall=wall)
        made.extend((a, b))
        return a, b, wall

    yield make
    for g in made:
        g.close()


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# -- settings and construction ---------------------------------------------------------


def test_without_redis_url_the_guards_are_the_in_process_ones() -> None:
    g = Guards(make_settings())
    assert g.link is None and g.shared_status() is None
    assert type(g.breakers) is CircuitBreakers
    assert all(type(lim) is RateLimiter for lim in g.limiters.values())


def test_redis_url_from_env_and_a_wrong_scheme_is_refused() -> None:
    s = load_settings(env={"STEMEDB_REDIS_URL": "redis://127.0.0.1:6390/2"})
    assert s.guards.redis_url == "redis://127.0.0.1:6390/2"
    with pytest.raises(ConfigError, match="redis_url"):
        load_settings(env={"STEMEDB_REDIS_URL": "http://u:secret@host/"})


def test_redis_timeout_is_a_setting() -> None:
    assert load_settings(env={}).guards.redis_timeout_ms == 100
    s = load_settings(env={"STEMEDB_REDIS_TIMEOUT_MS": "250"})
    assert s.guards.redis_timeout_ms == 250
    with pytest.raises(ConfigError, match="redis_timeout_ms"):
        load_settings(env={"STEMEDB_REDIS_TIMEOUT_MS": "0"})


def test_redacted_hides_the_password() -> None:
    assert redacted("redis://u:secret@h:1/0") == "redis://u:***@h:1/0"
    assert redacted("redis://:secret@h:1/0") == "redis://:***@h:1/0"
    assert redacted("redis://h:1/0") == "redis://h:1/0"


def test_with_redis_url_the_guards_are_shared(nodes: Any) -> None:
    a, _, _ = nodes()
    assert isinstance(a.breakers, SharedBreakers)
    assert all(isinstance(lim, SharedRateLimiter) for lim in a.limiters.values())
    assert set(a.limiters) == {"assert", "query", "admin"}
    assert a.shared_status() == (True, 0)


def test_a_database_with_redis_exports_the_shared_guards_metrics(
        redis_url: str, tmp_path: Path) -> None:
    db = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d"),
                                                   "guards.redis_url": redis_url}))
    m = Metrics()
    try:
        m.bind(db)
        got = {name: f.type for name, f in families(m).items()}
        assert got == {**DECLARED, **BOUND, "stemedb_guards_shared": "gauge",
                       "stemedb_guards_fallbacks": "counter"}
        assert value(m, "stemedb_guards_shared") == 1
    finally:
        db.close()
        db.guards.close()


# -- rate limits -----------------------------------------------------------------------


def test_one_agents_burst_counts_across_both_nodes(nodes: Any) -> None:
    a, b, wall = nodes()
    allowed = [g.limit("assert", AGENT).allowed for _ in range(5) for g in (a, b)]
    assert allowed == [True] * 10
    refused = b.limit("assert", AGENT)
    assert refused is not None and not refused.allowed
    assert refused.headers() == {"RateLimit-Policy": '"assert";q=10;w=10',
                                 "RateLimit": '"assert";r=0;t=10', "Retry-After": "1"}
    assert a.limit("assert", OTHER).allowed  # another agent has its own bucket
    wall.t += 1.0  # one unit back, for whichever node asks first
    assert a.limit("assert", AGENT).allowed
    assert not b.limit("assert", AGENT).allowed


def test_address_limits_are_shared_through_limiters_too(nodes: Any) -> None:
    a, b, _ = nodes(rate_limit__query_rate=1.0, rate_limit__query_burst=2)
    assert a.limiters["query"].check("10.0.0.1").allowed
    assert b.limiters["query"].check("10.0.0.1").allowed
    assert not a.limiters["query"].check("10.0.0.1").allowed


def test_limiter_keys_expire_once_the_bucket_is_full(nodes: Any, redis_url: str) -> None:
    import redis

    a, _, _ = nodes(rate_limit__assert_rate=1000.0, rate_limit__assert_burst=1)
    a.limit("assert", AGENT)
    with redis.Redis.from_url(redis_url) as r:
        ttl = r.pttl(f"stemedb:rl:assert:{AGENT}")
        assert 0 < ttl <= 1001 + 1  # the 1 ms TAT plus the slack
        wait_for(lambda: r.exists(f"stemedb:rl:assert:{AGENT}") == 0, timeout=3)


# -- breakers --------------------------------------------------------------------------


def fail(g: Guards, agent: str, n: int) -> None:
    for _ in range(n):
        adm = g.breakers.admit(agent)
        if adm.allowed:
            g.breakers.record(agent, True, probe=adm.probe)


def test_a_breaker_opened_by_failures_on_one_node_refuses_on_the_other(nodes: Any) -> None:
    a, b, wall = nodes()
    fail(a, AGENT, 2)
    fail(b, AGENT, 2)  # four failures in all: min_requests reached across the nodes
    adm = b.breakers.admit(AGENT)
    assert not adm.allowed and adm.state == BreakerState.OPEN
    assert adm.retry_after == pytest.approx(60.0)
    view = a.breakers.view(AGENT)
    assert (view.state, view.reason, view.requests, view.failure_rate) == (
        "OPEN", "failure_rate", 4, 1.0)
    assert view.opened_at == wall.t and view.until == wall.t + 60.0
    assert b.breakers.counts() == {"CLOSED": 0, "OPEN": 1, "HALF_OPEN": 0}
    assert a.breakers.admit(OTHER).allowed


def test_half_open_probes_are_counted_across_nodes(nodes: Any) -> None:
    a, b, wall = nodes()
    fail(a, AGENT, 4)
    wall.t += 60.0
    p1, p2, p3 = a.breakers.admit(AGENT), b.breakers.admit(AGENT), a.breakers.admit(AGENT)
    assert p1.probe and p2.probe and (p1.state, p2.state) == ("HALF_OPEN", "HALF_OPEN")
    assert not p3.allowed and p3.state == BreakerState.HALF_OPEN and p3.retry_after == 1.0
    a.breakers.record(AGENT, False, probe=True)
    b.breakers.record(AGENT, False, probe=True)
    view = b.breakers.view(AGENT)
    assert (view.state, view.requests, view.reason) == ("CLOSED", 0, None)


def test_a_failed_probe_on_one_node_reopens_for_both(nodes: Any) -> None:
    a, b, wall = nodes()
    fail(a, AGENT, 4)
    wall.t += 60.0
    adm = b.breakers.admit(AGENT)
    b.breakers.record(AGENT, True, probe=adm.probe)
    view = a.breakers.view(AGENT)
    assert (view.state, view.reason, view.until) == ("OPEN", "probe_failed", wall.t + 60.0)


def test_released_probe_slot_is_given_back_on_every_node(nodes: Any) -> None:
    a, b, wall = nodes()
    fail(a, AGENT, 4)
    wall.t += 60.0
    p1, p2 = a.breakers.admit(AGENT), a.breakers.admit(AGENT)
    assert not b.breakers.admit(AGENT).allowed
    a.breakers.release(AGENT, p1)
    assert b.breakers.admit(AGENT).probe
    assert p2.probe


def test_a_leaked_probe_slot_comes_back_after_the_lease_on_any_node(nodes: Any) -> None:
    a, b, wall = nodes()
    fail(a, AGENT, 4)
    wall.t += 60.0
    assert a.breakers.admit(AGENT).probe and a.breakers.admit(AGENT).probe  # never recorded
    assert not b.breakers.admit(AGENT).allowed
    wall.t += 60.0  # probe_lease_seconds
    assert b.breakers.admit(AGENT).probe


def test_manual_open_on_one_node_refuses_on_the_other_and_reset_closes_both(
        nodes: Any) -> None:
    a, b, wall = nodes()
    view = a.breakers.open(AGENT, "flooding", 3600, at=wall.t - 600)
    assert (view.state, view.manual, view.until) == ("OPEN", True, wall.t + 3000)
    adm = b.breakers.admit(AGENT)
    assert not adm.allowed and adm.retry_after == pytest.approx(3000)
    assert b.breakers.view(AGENT).reason == "flooding"
    assert [v.agent_id for v in b.breakers.views()] == [AGENT]
    done = b.breakers.reset(AGENT)
    assert (done.state, done.requests) == ("CLOSED", 0)
    assert a.breakers.admit(AGENT).allowed and b.breakers.admit(AGENT).allowed
    assert a.breakers.views() == []


def test_a_replayed_ban_that_is_over_changes_nothing(nodes: Any) -> None:
    a, b, wall = nodes()
    view = a.breakers.open(AGENT, "old", 60, at=wall.t - 120)
    assert view.state == "CLOSED"
    assert b.breakers.views() == []


def test_views_and_counts_are_cluster_wide_and_sorted(nodes: Any) -> None:
    a, b, _ = nodes()
    a.breakers.record(OTHER, True)
    b.breakers.record(OTHER, False)
    b.breakers.record("c" * 64, False)
    a.breakers.open(AGENT, "manual", 100)
    views = b.breakers.views()
    assert [(v.agent_id, v.state, v.failure_rate) for v in views] == [
        (AGENT, "OPEN", 0.0), (OTHER, "CLOSED", 0.5), ("c" * 64, "CLOSED", 0.0)]
    assert a.breakers.counts() == {"CLOSED": 2, "OPEN": 1, "HALF_OPEN": 0}


def test_breaker_keys_expire_when_idle(nodes: Any, redis_url: str) -> None:
    import redis

    a, _, _ = nodes()
    a.breakers.record(AGENT, True)
    a.breakers.open(OTHER, "ban", 1000)
    with redis.Redis.from_url(redis_url) as r:
        assert 3599_000 < r.pttl(f"stemedb:cb:{AGENT}") <= 3600_000
        assert 4599_000 < r.pttl(f"stemedb:cb:{OTHER}") <= 4600_000


def test_beyond_max_agents_the_least_soon_expiring_are_evicted_but_not_bans(
        redis_url: str) -> None:
    wall = Wall()
    g = Guards(make_settings(redis_url, circuit_breaker__max_agents=100), wall=wall)
    try:
        g.breakers.open(AGENT, "ban", 10)  # expires first, but its ban runs
        for i in range(130):
            wall.t += 0.001
            g.breakers.record(f"{i:064x}", True)
        assert isinstance(g.breakers, SharedBreakers)
        assert g.breakers.evictions == 31
        assert g.breakers.view(AGENT).state == "OPEN"
        assert sum(g.breakers.counts().values()) == 100
    finally:
        g.close()


# -- falling back and coming back ------------------------------------------------------


class _FakeDatabase:
    def __init__(self, guards: Guards) -> None:
        self.guards = guards


def test_redis_killed_both_nodes_decide_locally_then_share_again(
        nodes: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    a, b, wall = nodes()
    metrics = Metrics()
    metrics.bind(_FakeDatabase(a))
    assert value(metrics, "stemedb_guards_shared") == 1
    assert value(metrics, "stemedb_guards_fallbacks_total") == 0
    a.breakers.open(AGENT, "held through the outage", 3600)
    caplog.set_level(logging.INFO, logger="stemedb.guards")

    redis_server.kill()
    t0 = time.monotonic()
    results = [g.limit("assert", OTHER) for _ in range(10) for g in (a, b)]
    assert time.monotonic() - t0 < 2.0  # refused connections: no waiting per request
    assert all(d is not None and d.allowed for d in results)  # each node: its own burst
    assert not a.limit("assert", OTHER).allowed and not b.limit("assert", OTHER).allowed
    assert a.shared_status() == (False, 1) and b.shared_status() == (False, 1)
    assert not a.breakers.admit(AGENT).allowed  # the manual ban was kept locally too
    fail(b, OTHER, 4)  # breakers decide locally as well
    assert not b.breakers.admit(OTHER).allowed
    assert value(metrics, "stemedb_guards_shared") == 0
    assert value(metrics, "stemedb_guards_fallbacks_total") == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per node, not one per request
    assert all("fall back" in r.getMessage() for r in warnings)

    redis_server.start()
    wait_for(lambda: a.shared_status() == (True, 1) and b.shared_status() == (True, 1))
    assert value(metrics, "stemedb_guards_shared") == 1
    back = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(back) == 2
    # Shared again (the restarted Redis is empty): one burst for both nodes.
    got = [g.limit("assert", "d" * 64).allowed for _ in range(6) for g in (a, b)]
    assert got == [True] * 10 + [False] * 2


def test_admin_actions_during_an_outage_are_replayed_into_redis(
        nodes: Any, redis_server: RedisServer) -> None:
    import redis

    a, b, wall = nodes()
    a.breakers.open(OTHER, "before", 3600)
    redis_server.kill()
    assert a.breakers.open(AGENT, "during", 3600).state == "OPEN"  # local answer
    a.breakers.reset(OTHER)
    assert b.breakers.admit(AGENT).allowed  # b cannot know yet
    redis_server.start()
    with redis.Redis.from_url(redis_server.url) as r:
        r.hset(f"stemedb:cb:{OTHER}", mapping={"s": 1, "w": "", "p": 0, "f": 0, "o": "",
                                               "u": str(wall.t + 99), "r": "x", "m": 1,
                                               "po": 0, "pk": 0, "pa": ""})
    wait_for(lambda: a.shared_status() == (True, 1) and b.shared_status() == (True, 1))
    adm = b.breakers.admit(AGENT)
    assert not adm.allowed and adm.state == BreakerState.OPEN
    assert b.breakers.view(AGENT).reason == "during"
    assert b.breakers.admit(OTHER).allowed  # the reset was replayed after the open


def test_manual_bans_go_back_into_a_redis_that_lost_its_data(
        nodes: Any, redis_server: RedisServer) -> None:
    a, b, _ = nodes()
    a.breakers.open(AGENT, "flooding", 3600)
    redis_server.kill()
    redis_server.start()  # empty: no persistence
    wait_for(lambda: a.shared_status() == (True, 1) or b.breakers.admit(OTHER).allowed)
    # Whether a saw the outage (probe) or not (its next admit notices the data is new),
    # its ban goes back in; b learns it from Redis.
    a.breakers.admit(OTHER)
    wait_for(lambda: not b.breakers.admit(AGENT).allowed)
    view = b.breakers.view(AGENT)
    assert (view.state, view.reason, view.manual) == ("OPEN", "flooding", True)


def test_a_flushed_redis_gets_the_bans_back_without_any_outage(
        nodes: Any, redis_server: RedisServer) -> None:
    import redis

    a, b, _ = nodes()
    a.breakers.open(AGENT, "flooding", 3600)
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushall()
    assert b.breakers.admit(AGENT).allowed  # b holds no ban of its own
    assert not a.breakers.admit(AGENT).allowed  # a's Redis is empty: not believed
    wait_for(lambda: not b.breakers.admit(AGENT).allowed)
    assert a.shared_status() == (True, 0)


def test_a_node_forgets_its_local_ban_once_another_node_reset_it(
        nodes: Any, redis_server: RedisServer) -> None:
    a, b, _ = nodes()
    a.breakers.open(AGENT, "flooding", 3600)
    b.breakers.reset(AGENT)
    assert a.breakers.admit(AGENT).allowed  # shared: closed; a drops its local copy
    redis_server.kill()
    assert a.breakers.admit(AGENT).allowed  # falling back: the reset holds here too


class _SilentServer:
    """Accepts connections on loopback and never answers: a hung Redis."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_hung_redis_costs_one_short_timeout_then_nothing() -> None:
    hung = _SilentServer()
    g = Guards(make_settings(f"redis://127.0.0.1:{hung.port}/0", guards__redis_timeout_ms=100))
    try:
        t0 = time.monotonic()
        first = g.limit("assert", AGENT)
        took = time.monotonic() - t0
        assert first is not None and first.allowed
        assert took < 0.5
        t0 = time.monotonic()
        for _ in range(50):
            g.limit("assert", AGENT)
            g.breakers.admit(AGENT)
        assert time.monotonic() - t0 < 0.05  # no Redis call while falling back
        assert g.shared_status() == (False, 1)
    finally:
        g.close()
        hung.close()


def test_unreachable_at_start_falls_back_on_first_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    g = Guards(make_settings(f"redis://127.0.0.1:{port}/0"))
    try:
        assert g.breakers.admit(AGENT).allowed
        assert g.shared_status() == (False, 1)
        assert g.breakers.counts() == {"CLOSED": 0, "OPEN": 0, "HALF_OPEN": 0}
    finally:
        g.close()


def test_close_waits_for_a_spawned_worker_before_closing_the_client(redis_url: str) -> None:
    """A worker (e.g. putting bans back into a flushed Redis) is never cut off mid-call
    by the shutdown closing the client under it; after close, nothing more is spawned."""
    g = Guards(make_settings(redis_url))
    link = g.breakers.link  # type: ignore[attr-defined]
    started, answers, errors = threading.Event(), [], []

    def worker() -> None:
        started.set()
        time.sleep(0.3)  # close() is called meanwhile
        try:
            answers.append(link.client.ping())
        except Exception as e:  # what close() used to cause
            errors.append(e)

    link.spawn(worker, "test-worker")
    assert started.wait(5)
    g.close()
    assert (answers, errors) == ([True], [])
    link.spawn(lambda: answers.append("late"), "test-late")
    time.sleep(0.1)
    assert answers == [True]
