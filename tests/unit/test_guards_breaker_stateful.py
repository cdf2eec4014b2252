"""CircuitBreakers against a plain reference model, driven by hypothesis.

The model keeps each agent's window as a list and recomputes everything from it; the
machine checks after every step that both agree and that the breaker's promises hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from stemedb.guards import (
    REASON_FAILURE_RATE,
    REASON_PROBE_FAILED,
    Admission,
    BreakerConfig,
    BreakerState,
    CircuitBreakers,
)

AGENTS = ("a", "b", "c")
LEASE = 7.0
WALL_OFFSET = 1_700_000_000.0

CONFIGS = [
    BreakerConfig(
        failure_rate_threshold=0.5,
        min_requests=4,
        timeout_seconds=10,
        window_size=6,
        half_open_probes=2,
    ),
    BreakerConfig(
        failure_rate_threshold=0.3,
        min_requests=3,
        timeout_seconds=5,
        window_size=10,
        half_open_probes=3,
    ),
    BreakerConfig(
        failure_rate_threshold=1.0,
        min_requests=1,
        timeout_seconds=3,
        window_size=1,
        half_open_probes=1,
    ),
]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + WALL_OFFSET


@dataclass
class Model:
    state: str = "CLOSED"
    window: list[bool] = field(default_factory=list)
    until: float = 0.0  # monotonic
    reason: str | None = None
    manual: bool = False
    out: int = 0  # probes admitted, not yet recorded or released
    ok: int = 0  # probes recorded as successes
    last_probe: float = 0.0


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.models: dict[str, Model] = {}
        self.probes: list[tuple[str, Admission]] = []

    @initialize(config=st.sampled_from(CONFIGS))
    def setup(self, config: BreakerConfig) -> None:
        self.config = config
        self.cb = CircuitBreakers(
            config,
            clock=self.clock.mono,
            wall=self.clock.wall,
            idle_seconds=float("inf"),
            probe_lease_seconds=LEASE,
        )

    # -- the model ----------------------------------------------------------------

    def model(self, agent: str) -> Model:
        m = self.models.setdefault(agent, Model())
        if m.state == "OPEN" and self.clock.now >= m.until:
            m.state, m.out, m.ok = "HALF_OPEN", 0, 0
        return m

    def model_open(self, m: Model, reason: str) -> None:
        m.state, m.reason, m.manual = "OPEN", reason, False
        m.until = self.clock.now + self.config.timeout_seconds
        m.out = m.ok = 0

    def rate_reached(self, window: list[bool]) -> bool:
        n = len(window)
        return (
            n >= self.config.min_requests and sum(window) / n >= self.config.failure_rate_threshold
        )

    # -- rules --------------------------------------------------------------------

    @rule(agent=st.sampled_from(AGENTS))
    def admit(self, agent: str) -> None:
        got = self.cb.admit(agent)
        m = self.model(agent)
        event(f"admit in {m.state}")
        if m.state == "CLOSED":
            assert got == Admission(True, BreakerState.CLOSED, 0.0, False)
        elif m.state == "OPEN":
            assert not got.allowed and got.state is BreakerState.OPEN and not got.probe
            assert abs(got.retry_after - (m.until - self.clock.now)) < 1e-9
        else:
            if m.out and self.clock.now - m.last_probe >= LEASE:
                event("leaked probes reclaimed")
                m.out = 0
            if m.out + m.ok < self.config.half_open_probes:
                m.out += 1
                m.last_probe = self.clock.now
                assert got == Admission(True, BreakerState.HALF_OPEN, 0.0, True)
                self.probes.append((agent, got))
            else:
                assert not got.allowed and got.state is BreakerState.HALF_OPEN
                assert got.retry_after >= 1.0

    @rule(agent=st.sampled_from(AGENTS), failure=st.booleans())
    def record(self, agent: str, failure: bool) -> None:
        m = self.model(agent)
        before = m.state
        self.cb.record(agent, failure)
        if before == "CLOSED":
            m.window = (m.window + [failure])[-self.config.window_size :]
            if self.rate_reached(m.window):
                self.model_open(m, REASON_FAILURE_RATE)
            # Opens exactly when the rate is reached, never below min_requests.
            assert (self.cb.view(agent).state == "OPEN") == self.rate_reached(m.window)

    @rule(agent=st.sampled_from(AGENTS), failure=st.booleans(), times=st.integers(2, 12))
    def record_many(self, agent: str, failure: bool, times: int) -> None:
        for _ in range(times):
            self.record(agent, failure)

    @precondition(lambda self: bool(self.probes))
    @rule(data=st.data(), failure=st.booleans())
    def record_probe(self, data: st.DataObject, failure: bool) -> None:
        index = data.draw(st.integers(0, len(self.probes) - 1))
        self.settle_probe(index, failure)

    @precondition(lambda self: bool(self.probes))
    @rule(data=st.data())
    def record_all_probes(self, data: st.DataObject) -> None:
        outcomes = data.draw(
            st.lists(st.booleans(), min_size=len(self.probes), max_size=len(self.probes))
        )
        for failure in outcomes:
            self.settle_probe(0, failure)

    def settle_probe(self, index: int, failure: bool) -> None:
        agent, _ = self.probes.pop(index)
        m = self.model(agent)
        event(f"probe {'failed' if failure else 'passed'} in {m.state}")
        self.cb.record(agent, failure, probe=True)
        if m.state == "CLOSED":
            m.window = (m.window + [failure])[-self.config.window_size :]
            if self.rate_reached(m.window):
                self.model_open(m, REASON_FAILURE_RATE)
        elif m.state == "HALF_OPEN":
            m.out = max(0, m.out - 1)
            if failure:
                self.model_open(m, REASON_PROBE_FAILED)
            else:
                m.ok += 1
                if m.ok >= self.config.half_open_probes:
                    event("closed by probes")
                    m.state, m.window, m.reason, m.manual = "CLOSED", [], None, False
                    m.out = m.ok = 0

    @precondition(lambda self: bool(self.probes))
    @rule(data=st.data())
    def release_probe(self, data: st.DataObject) -> None:
        agent, admission = self.probes.pop(data.draw(st.integers(0, len(self.probes) - 1)))
        m = self.model(agent)
        self.cb.release(agent, admission)
        if m.state == "HALF_OPEN" and m.out:
            m.out -= 1

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 2.9, 3.0, 5.0, 7.0, 10.0, 11.5]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(
        agent=st.sampled_from(AGENTS),
        duration=st.sampled_from([1.0, 4.0, 30.0]),
        ago=st.sampled_from([None, 0.0, 2.0, 40.0]),
    )
    def manual_open(self, agent: str, duration: float, ago: float | None) -> None:
        at = None if ago is None else self.clock.wall() - ago
        view = self.cb.open(agent, "ban", duration, at=at)
        left = duration - (ago or 0.0)
        if left > 0:
            m = self.model(agent)
            m.state, m.reason, m.manual = "OPEN", "ban", True
            m.until = self.clock.now + left
            m.out = m.ok = 0
            assert view.state == "OPEN" and view.manual
            assert view.until is not None
            assert abs(view.until - (self.clock.wall() + left)) < 1e-6

    @rule(agent=st.sampled_from(AGENTS))
    def reset(self, agent: str) -> None:
        view = self.cb.reset(agent)
        self.models[agent] = Model()
        assert view.state == "CLOSED" and view.requests == 0

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def views_match_the_model(self) -> None:
        if not hasattr(self, "cb"):
            return
        for agent in AGENTS:
            m = self.model(agent)
            v = self.cb.view(agent)
            assert v.state == m.state
            assert v.requests == len(m.window)
            rate = sum(m.window) / len(m.window) if m.window else 0.0
            assert abs(v.failure_rate - rate) < 1e-12
            assert v.manual == (m.state != "CLOSED" and m.manual)
            if m.state == "CLOSED":
                assert v.reason is None and v.until is None
            else:
                assert v.reason == m.reason
                assert v.until is not None
                assert abs(v.until - (m.until + WALL_OFFSET)) < 1e-6
            if v.state == "OPEN" and v.reason == REASON_FAILURE_RATE:
                # Never opened by the window with fewer than min_requests in it.
                assert v.requests >= self.config.min_requests
                assert v.failure_rate >= self.config.failure_rate_threshold
            if m.state == "HALF_OPEN":
                assert m.out + m.ok <= self.config.half_open_probes

    @invariant()
    def views_are_sorted_and_consistent(self) -> None:
        if not hasattr(self, "cb"):
            return
        views = self.cb.views()
        rank = {"OPEN": 0, "HALF_OPEN": 1, "CLOSED": 2}
        keys = [(rank[v.state], -v.failure_rate) for v in views]
        assert keys == sorted(keys)
        for v in views:
            assert v == self.cb.view(v.agent_id)
        counts = self.cb.counts()
        assert sum(counts.values()) == len(views)


BreakerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase
