"""Per-agent circuit breakers: ban agents whose writes keep failing content defense.

State machine (docs/guards.md draws it)::

    CLOSED --(>= min_requests judged in the window and failure rate >= threshold)--> OPEN
    OPEN --(timeout passed, on the next admit or view)--> HALF_OPEN
    HALF_OPEN --(half_open_probes probes recorded, none failed)--> CLOSED (window cleared)
    HALF_OPEN --(any probe recorded as a failure)--> OPEN (fresh timeout)
    any --(manual open)--> OPEN until at + duration;  any --(reset)--> CLOSED

The window is the last ``window_size`` judged outcomes of the agent, kept in a small
ring (a ``bytearray``) with a running failure count, so admit and record cost a dict
lookup and a few integer operations.

Durations use the monotonic ``clock``; the instants reported in views (``opened_at``,
``until``) are unix times from ``wall``.

Memory is bounded: agents never recorded take no space; CLOSED agents with no failure
in their window, and OPEN/HALF_OPEN agents whose timeout ended, expire after
``idle_seconds`` without activity; beyond ``max_agents`` the least recently recorded
agents are evicted, except OPEN agents whose timeout has not passed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "REASON_FAILURE_RATE",
    "REASON_PROBE_FAILED",
    "Admission",
    "BreakerConfig",
    "BreakerState",
    "BreakerView",
    "CircuitBreakers",
]

Clock = Callable[[], float]

REASON_FAILURE_RATE = "failure_rate"  # opened by the sliding window
REASON_PROBE_FAILED = "probe_failed"  # a half-open probe failed: opened again

_CLOSED = 0
_OPEN = 1
_HALF_OPEN = 2


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


_STATES = (BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN)
# views(): OPEN first, then HALF_OPEN, then CLOSED.
_VIEW_RANK = {"OPEN": 0, "HALF_OPEN": 1, "CLOSED": 2}


@dataclass(frozen=True)
class BreakerConfig:
    failure_rate_threshold: float = 0.5
    min_requests: int = 20
    timeout_seconds: float = 300
    window_size: int = 100
    half_open_probes: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.failure_rate_threshold <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1]")
        if not 1 <= self.window_size <= 10_000:
            raise ValueError("window_size must be in [1, 10000]")
        if not 1 <= self.min_requests <= self.window_size:
            raise ValueError("min_requests must be in [1, window_size]")
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise ValueError("timeout_seconds must be a positive number")
        if self.half_open_probes < 1:
            raise ValueError("half_open_probes must be >= 1")


@dataclass(frozen=True)
class BreakerView:
    agent_id: str
    state: str
    failure_rate: float
    requests: int
    reason: str | None
    opened_at: float | None
    until: float | None
    manual: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "agent_id": self.agent_id,
            "state": self.state,
            "failure_rate": self.failure_rate,
            "requests": self.requests,
            "reason": self.reason,
            "opened_at": self.opened_at,
            "until": self.until,
            "manual": self.manual,
        }


@dataclass(frozen=True)
class Admission:
    allowed: bool
    state: BreakerState
    retry_after: float
    probe: bool  # this admission holds a half-open probe slot: record() or release() it


def closed_view(agent_id: str) -> BreakerView:
    """The view of an agent the breakers do not remember."""
    return BreakerView(agent_id, "CLOSED", 0.0, 0, None, None, None, False)


def sort_views(views: list[BreakerView]) -> list[BreakerView]:
    """OPEN first, then HALF_OPEN, then CLOSED; within a state by failure rate, highest
    first (``views()`` of both the local and the Redis-backed breakers)."""
    views.sort(key=lambda v: (_VIEW_RANK[v.state], -v.failure_rate, v.agent_id))
    return views


_ADMIT_CLOSED = Admission(True, BreakerState.CLOSED, 0.0, False)
_ADMIT_PROBE = Admission(True, BreakerState.HALF_OPEN, 0.0, True)
# Refused while every probe slot is taken: probes finish within a request's time.
_PROBES_BUSY_RETRY = 1.0
_TRIM_BUDGET = 16


class _Agent:
    """One agent's breaker. Plain fields; every access holds the owner's lock."""

    __slots__ = (
        "state",
        "ring",
        "pos",
        "failures",
        "seen",
        "until_mono",
        "opened_wall",
        "until_wall",
        "reason",
        "manual",
        "probes_out",
        "probes_ok",
        "probe_at",
    )

    def __init__(self, now: float) -> None:
        self.state = _CLOSED
        self.ring = bytearray()  # grows to window_size, then wraps at pos
        self.pos = 0
        self.failures = 0
        self.seen = now
        self.until_mono = 0.0
        self.opened_wall: float | None = None
        self.until_wall: float | None = None
        self.reason: str | None = None
        self.manual = False
        self.probes_out = 0
        self.probes_ok = 0
        self.probe_at = 0.0

    def clear_window(self) -> None:
        self.ring = bytearray()
        self.pos = 0
        self.failures = 0


class CircuitBreakers:
    """All agents' breakers behind one lock. Thread-safe; never blocks on I/O."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        max_agents: int = 100_000,
        idle_seconds: float = 3600.0,
        probe_lease_seconds: float = 60.0,
    ) -> None:
        if max_agents < 1:
            raise ValueError("max_agents must be >= 1")
        if probe_lease_seconds <= 0:
            raise ValueError("probe_lease_seconds must be > 0")
        self.config = config = config if config is not None else BreakerConfig()
        self.max_agents = max_agents
        self.idle_seconds = idle_seconds
        # A probe admitted but never recorded nor released (a crashed handler) frees its
        # slot after this long, so a breaker cannot stay HALF_OPEN forever.
        self.probe_lease_seconds = probe_lease_seconds
        self.evictions = 0  # agents dropped because of max_agents
        self._clock = clock
        self._wall = wall
        self._window = config.window_size
        self._min = config.min_requests
        self._threshold = config.failure_rate_threshold
        self._timeout = float(config.timeout_seconds)
        self._probes = config.half_open_probes
        self._agents: OrderedDict[str, _Agent] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._agents)

    # -- the request path ---------------------------------------------------------

    def admit(self, agent_id: str) -> Admission:
        """May this agent's write go on to be judged?"""
        with self._lock:
            a = self._agents.get(agent_id)
            if a is None or a.state == _CLOSED:
                return _ADMIT_CLOSED
            now = self._clock()
            if a.state == _OPEN:
                left = a.until_mono - now
                if left > 0.0:
                    return Admission(False, BreakerState.OPEN, left, False)
                self._half_open(a, now)
            # HALF_OPEN
            if a.probes_out and now - a.probe_at >= self.probe_lease_seconds:
                a.probes_out = 0  # leaked probes: give their slots back
            if a.probes_out + a.probes_ok < self._probes:
                a.probes_out += 1
                a.probe_at = now
                return _ADMIT_PROBE
            return Admission(False, BreakerState.HALF_OPEN, _PROBES_BUSY_RETRY, False)

    def record(self, agent_id: str, failure: bool, *, probe: bool = False) -> None:
        """The outcome of an admitted write: ``failure`` = quarantined or invalid.

        In CLOSED the outcome enters the window. In HALF_OPEN only probes count: a failed
        probe reopens at once with a fresh timeout; once ``half_open_probes`` probes
        succeeded the breaker closes with an empty window. Outcomes of writes admitted
        before the breaker opened, arriving while it is OPEN or HALF_OPEN, are ignored.
        """
        now = self._clock()
        with self._lock:
            agents = self._agents
            a = agents.get(agent_id)
            if a is None:
                a = _Agent(now)
                agents[agent_id] = a
                self._trim(now)
            else:
                agents.move_to_end(agent_id)
                a.seen = now
                if a.state == _OPEN and now >= a.until_mono:
                    self._half_open(a, now)
            if a.state == _CLOSED:
                self._push(a, now, 1 if failure else 0)
            elif a.state == _HALF_OPEN and probe:
                if a.probes_out:
                    a.probes_out -= 1
                if failure:
                    self._open(a, now, REASON_PROBE_FAILED)
                else:
                    a.probes_ok += 1
                    if a.probes_ok >= self._probes:
                        self._close(a)

    def release(self, agent_id: str, admission: Admission) -> None:
        """Give back the probe slot of a write that was admitted but never judged."""
        if not admission.probe:
            return
        with self._lock:
            a = self._agents.get(agent_id)
            if a is not None and a.state == _HALF_OPEN and a.probes_out:
                a.probes_out -= 1

    # -- admin --------------------------------------------------------------------

    def open(
        self, agent_id: str, reason: str, duration_seconds: float, *, at: float | None = None
    ) -> BreakerView:
        """Open by hand until ``at + duration_seconds`` (``at``: unix time, default now).

        Replaying a journaled open passes its original ``at``; if that ban is already
        over, the breaker is left as it is.
        """
        if not (math.isfinite(duration_seconds) and duration_seconds > 0):
            raise ValueError("duration_seconds must be a positive number")
        now = self._clock()
        wall_now = self._wall()
        opened = wall_now if at is None else float(at)
        until = opened + duration_seconds
        with self._lock:
            left = until - wall_now
            if left > 0.0:
                a = self._agents.get(agent_id)
                if a is None:
                    a = _Agent(now)
                    self._agents[agent_id] = a
                else:
                    self._agents.move_to_end(agent_id)
                    a.seen = now
                a.state = _OPEN
                a.until_mono = now + left
                a.opened_wall = opened
                a.until_wall = until
                a.reason = reason
                a.manual = True
                a.probes_out = a.probes_ok = 0
                self._trim(now)
            return self._view(agent_id, now)

    def reset(self, agent_id: str) -> BreakerView:
        """Back to CLOSED with an empty window (the agent is forgotten)."""
        with self._lock:
            self._agents.pop(agent_id, None)
            return self._view(agent_id, self._clock())

    def view(self, agent_id: str) -> BreakerView:
        with self._lock:
            return self._view(agent_id, self._clock())

    def views(self) -> list[BreakerView]:
        """Every tracked agent: OPEN first, then HALF_OPEN, then by failure rate desc."""
        with self._lock:
            now = self._clock()
            out = [self._view(agent_id, now) for agent_id in self._agents]
        return sort_views(out)

    def counts(self) -> dict[str, int]:
        """Tracked agents per state (for the breaker-state gauge); untracked are CLOSED."""
        out = {"CLOSED": 0, "OPEN": 0, "HALF_OPEN": 0}
        with self._lock:
            now = self._clock()
            for a in self._agents.values():
                if a.state == _OPEN and now >= a.until_mono:
                    out["HALF_OPEN"] += 1
                else:
                    out[_STATES[a.state].value] += 1
        return out

    # -- internals (caller holds the lock) ----------------------------------------

    def _push(self, a: _Agent, now: float, bit: int) -> None:
        ring = a.ring
        if len(ring) < self._window:
            ring.append(bit)
        else:
            pos = a.pos
            a.failures -= ring[pos]
            ring[pos] = bit
            a.pos = pos + 1 if pos + 1 < self._window else 0
        if bit:
            a.failures += 1
        # Checked after successes too: the success that brings the window up to
        # min_requests can be the one that makes an old failure rate count.
        n = len(ring)
        if a.failures and n >= self._min and a.failures / n >= self._threshold:
            self._open(a, now, REASON_FAILURE_RATE)

    def _open(self, a: _Agent, now: float, reason: str) -> None:
        wall = self._wall()
        a.state = _OPEN
        a.until_mono = now + self._timeout
        a.opened_wall = wall
        a.until_wall = wall + self._timeout
        a.reason = reason
        a.manual = False
        a.probes_out = a.probes_ok = 0

    def _half_open(self, a: _Agent, now: float) -> None:
        a.state = _HALF_OPEN
        a.probes_out = a.probes_ok = 0
        a.probe_at = now

    def _close(self, a: _Agent) -> None:
        a.state = _CLOSED
        a.clear_window()
        a.opened_wall = a.until_wall = None
        a.reason = None
        a.manual = False
        a.probes_out = a.probes_ok = 0

    def _view(self, agent_id: str, now: float) -> BreakerView:
        a = self._agents.get(agent_id)
        if a is None:
            return closed_view(agent_id)
        if a.state == _OPEN and now >= a.until_mono:
            self._half_open(a, now)
        n = len(a.ring)
        return BreakerView(
            agent_id,
            _STATES[a.state].value,
            a.failures / n if n else 0.0,
            n,
            a.reason,
            a.opened_wall,
            a.until_wall,
            a.manual,
        )

    def _expired(self, a: _Agent, now: float) -> bool:
        """Carries nothing worth keeping after ``idle_seconds`` without activity."""
        if a.state == _CLOSED:
            return a.failures == 0
        return now >= a.until_mono

    def _trim(self, now: float) -> None:
        agents = self._agents
        # Incremental expiry: look at the least recently active agents only.
        for _ in range(2):
            if not agents:
                break
            agent_id = next(iter(agents))
            a = agents[agent_id]
            if now - a.seen < self.idle_seconds:
                break
            if self._expired(a, now):
                del agents[agent_id]
            else:
                agents.move_to_end(agent_id)  # idle but informative: look again later
        # Hard bound: evict the least recently active, but never an OPEN agent whose
        # timeout has not passed (those are bounded by how fast breakers can open).
        # At most _TRIM_BUDGET looks per call keep this O(1) even when the front is full
        # of protected agents; any excess left over is caught up by later calls.
        excess = len(agents) - self.max_agents
        budget = _TRIM_BUDGET
        while excess > 0 and budget > 0:
            budget -= 1
            agent_id = next(iter(agents))
            a = agents[agent_id]
            if a.state == _OPEN and now < a.until_mono:
                agents.move_to_end(agent_id)
                continue
            del agents[agent_id]
            self.evictions += 1
            excess -= 1
