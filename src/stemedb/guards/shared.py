"""Guards shared by every node through one Redis (``[guards] redis_url``).

:class:`SharedRateLimiter` and :class:`SharedBreakers` are a :class:`RateLimiter` and a
:class:`CircuitBreakers`, so the engine, the admin service and the HTTP layer use them
unchanged. Each check is one atomic Lua script (guards/lua.py) computing what the
in-process class computes, on state kept in Redis; the answers are built by the same
code (``RateLimiter.decision``, the breaker's Admission and view helpers).

While Redis is unreachable (guards/link.py) each decides as the in-process class it
extends, on its own in-memory state: a request is never refused because of Redis. Manual
opens and resets are applied to both, so a ban set through this node holds through an outage;
those made during an outage are replayed into Redis before it is used again, and the
bans a node holds are put back into a Redis that lost its data (``{prefix}cb:epoch``).

Shared instants are unix seconds from ``wall`` on every node (a monotonic clock is
per-machine): keep the nodes' clocks in sync (NTP), as for any cluster.

Key layout (``prefix`` defaults to ``stemedb:``):

- ``{prefix}rl:{class}:{key}``: a limiter key's TAT, expiring once its bucket is full;
- ``{prefix}cb:{agent_id}``: one agent's breaker (hash), expiring after ``idle_seconds``
  without a change (an OPEN one not before its ban ends);
- ``{prefix}cb:index`` / ``{prefix}cb:open``: sorted sets of the remembered agents and of
  those not CLOSED, scored by expiry, for ``views()`` and ``counts()``;
- ``{prefix}cb:epoch``: a random token of the data set.

A standalone Redis (or one behind an address that follows failover): the breaker
scripts touch the index keys beside the agent's own, so Redis Cluster's one-slot rule
does not hold.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from stemedb.guards.breaker import (
    _ADMIT_CLOSED,
    _ADMIT_PROBE,
    _PROBES_BUSY_RETRY,
    _STATES,
    REASON_FAILURE_RATE,
    REASON_PROBE_FAILED,
    Admission,
    BreakerConfig,
    BreakerState,
    BreakerView,
    CircuitBreakers,
    closed_view,
    sort_views,
)
from stemedb.guards.limiter import LimitDecision, LimitPolicy, RateLimiter
from stemedb.guards.link import RedisLink
from stemedb.guards.lua import BREAKER, GCRA

__all__ = ["SharedBreakers", "SharedRateLimiter"]

Clock = Callable[[], float]

DEFAULT_PREFIX = "stemedb:"
# Admin actions taken during an outage, kept for replay (latest per agent).
_PENDING_MAX = 10_000
_VIEWS_CHUNK = 256


class SharedRateLimiter(RateLimiter):
    """GCRA with each key's TAT in Redis; the in-process limiter while it is unreachable."""

    def __init__(self, policy: LimitPolicy, *, link: RedisLink, clock: Clock = time.monotonic,
                 wall: Clock = time.time, max_keys: int = 100_000,
                 prefix: str = DEFAULT_PREFIX, key_slack_seconds: float = 1.0) -> None:
        super().__init__(policy, clock=clock, max_keys=max_keys)
        self.link = link
        self._wall = wall
        self._prefix = f"{prefix}rl:{policy.name}:"
        # The policy travels with every call: repr() round-trips, so Lua gets these exact
        # doubles. slack: a key outlives its TAT a little, so a caller whose clock is a
        # little behind Redis's still finds it.
        self._args = (self._interval, self._tau, self._burst)
        self._slack_ms = max(0, math.ceil(key_slack_seconds * 1000))
        self._script = link.script(GCRA)

    def check(self, key: str, cost: int = 1) -> LimitDecision:
        """As :meth:`RateLimiter.check`, counted across every node sharing the Redis."""
        if cost < 0:
            raise ValueError("cost must be >= 0")
        if self.link.shared:
            now = self._wall()
            got = self.link.run(self._script, (self._prefix + key,),
                                (now, *self._args, cost, self._slack_ms))
            if got is not None:
                allowed, tat, retry_after = got
                return self.decision(now, float(tat), allowed == 1, float(retry_after))
        return super().check(key, cost)


class SharedBreakers(CircuitBreakers):
    """Per-agent breakers kept in Redis, with the state machine of CircuitBreakers; the
    in-process breakers (this object's own state) while Redis is unreachable."""

    def __init__(self, config: BreakerConfig | None = None, *, link: RedisLink,
                 clock: Clock = time.monotonic, wall: Clock = time.time,
                 max_agents: int = 100_000, idle_seconds: float = 3600.0,
                 probe_lease_seconds: float = 60.0, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(config, clock=clock, wall=wall, max_agents=max_agents,
                         idle_seconds=idle_seconds, probe_lease_seconds=probe_lease_seconds)
        self.link = link
        c = self.config
        self._prefix = f"{prefix}cb:"
        self._index = (f"{prefix}cb:index", f"{prefix}cb:open")
        self._config = (self._prefix, c.failure_rate_threshold, c.min_requests,
                        c.window_size, float(c.timeout_seconds), c.half_open_probes,
                        probe_lease_seconds, idle_seconds, max_agents,
                        REASON_FAILURE_RATE, REASON_PROBE_FAILED)
        self._script = link.script(BREAKER)
        self._pending: OrderedDict[str, Callable[[], Any]] = OrderedDict()
        self._admin_lock = threading.Lock()
        # Agents whose manual ban this node also holds in memory; and the token of the
        # Redis data set they were written to, to tell a Redis that came back empty.
        self._mirrored: set[str] = set()
        self._epoch_key = f"{prefix}cb:epoch"
        self._epoch: bytes | None = None
        self._restoring = threading.Event()
        link.on_recover.append(self._replay)

    def _run(self, op: str, agent_ids: Sequence[str], *extra: Any) -> Any:
        keys = (*self._index, *(self._prefix + a for a in agent_ids))
        return self.link.run(self._script, keys,
                             (op, self._wall(), *self._config, *agent_ids, *extra))

    # -- the request path -----------------------------------------------------------

    def admit(self, agent_id: str) -> Admission:
        if self.link.shared:
            got = self._run("admit", (agent_id,), self._epoch or b"")
            if got is not None:
                allowed, state, left, probe, epoch = got
                if self._mirrored and not self._check_mirror(agent_id, allowed == 1,
                                                             epoch == 1):
                    return super().admit(agent_id)
                if allowed:
                    return _ADMIT_PROBE if probe else _ADMIT_CLOSED
                if state == 1:
                    return Admission(False, BreakerState.OPEN, float(left), False)
                return Admission(False, BreakerState.HALF_OPEN, _PROBES_BUSY_RETRY, False)
        return super().admit(agent_id)

    def record(self, agent_id: str, failure: bool, *, probe: bool = False) -> None:
        if self.link.shared:
            got = self._run("record", (agent_id,), int(failure), int(probe))
            if got is not None:
                self.evictions += got[1]
                return
        super().record(agent_id, failure, probe=probe)

    def release(self, agent_id: str, admission: Admission) -> None:
        if not admission.probe:
            return
        if self.link.shared and self._run("release", (agent_id,)) is not None:
            return
        super().release(agent_id, admission)

    # -- admin ----------------------------------------------------------------------

    def open(self, agent_id: str, reason: str, duration_seconds: float, *,
             at: float | None = None) -> BreakerView:
        """As :meth:`CircuitBreakers.open`, on every node; also kept locally, so that the
        ban holds while Redis is unreachable."""
        if not (math.isfinite(duration_seconds) and duration_seconds > 0):
            raise ValueError("duration_seconds must be a positive number")
        opened = self._wall() if at is None else float(at)
        until = opened + duration_seconds
        local = super().open(agent_id, reason, duration_seconds, at=opened)
        if local.state == BreakerState.OPEN:
            # Bans that ran out while their agent stayed away go here, not on a request.
            self._mirrored = {a for a in self._mirrored
                              if CircuitBreakers.view(self, a).state == BreakerState.OPEN}
            self._mirrored.add(agent_id)

        def apply() -> Any:
            got = self._run("open", (agent_id,), reason, opened, until)
            return None if got is None else _view_of(agent_id, got)

        shared = self._admin(agent_id, apply)
        if shared is None:
            return local
        if self._epoch is None:
            self._epoch = self.link.call(self._current_epoch)
        return shared

    def reset(self, agent_id: str) -> BreakerView:
        """As :meth:`CircuitBreakers.reset`, on every node and locally."""
        self._mirrored.discard(agent_id)
        super().reset(agent_id)
        self._admin(agent_id, lambda: self._run("reset", (agent_id,)))
        return closed_view(agent_id)

    def _admin(self, agent_id: str, apply: Callable[[], Any]) -> Any:
        """``apply()`` now if Redis answers (after any action still waiting), else keep
        it for the replay; None when it had to wait."""
        with self._admin_lock:
            if self.link.shared and self._flush():
                got = apply()
                if got is not None:
                    return got
            self._pending.pop(agent_id, None)
            self._pending[agent_id] = apply
            while len(self._pending) > _PENDING_MAX:
                self._pending.popitem(last=False)
            return None

    def _flush(self) -> bool:
        """Replay the waiting admin actions in order; False if Redis failed meanwhile."""
        while self._pending:
            agent_id, apply = next(iter(self._pending.items()))
            if apply() is None:
                return False
            self._pending.pop(agent_id, None)
        return True

    def _replay(self) -> None:
        """Recovery hook (probe thread): the outage's admin actions go first."""
        import redis

        # The link is not shared yet: run() still calls Redis, and a failure keeps the
        # fallback as it is (lost() ignores it while falling back).
        with self._admin_lock:
            if not self._flush():
                raise redis.ConnectionError("replaying admin actions into Redis failed")
            self._restore_bans()

    def _check_mirror(self, agent_id: str, allowed: bool, epoch: bool) -> bool:
        """After a shared admit, while this node holds manual bans locally: False when
        Redis's answer does not stand, because Redis lost the ban this node holds."""
        if not epoch:  # Redis lost its data, maybe without an outage seen here
            if not self._restoring.is_set():
                self._restoring.set()
                self.link.spawn(self._restore_in_background, "stemedb-guards-restore")
            return agent_id not in self._mirrored
        if allowed and agent_id in self._mirrored:  # reset or over, maybe on another node
            self._mirrored.discard(agent_id)
            CircuitBreakers.reset(self, agent_id)
        return True

    def _restore_in_background(self) -> None:
        import redis

        try:
            with self._admin_lock:
                self._restore_bans()
        except redis.RedisError:
            pass  # the request path has seen it too, and falls back
        finally:
            self._restoring.clear()

    def _restore_bans(self) -> None:
        """Put this node's manual bans back into a Redis that lost its data (restarted
        without persistence, or replaced), with their original instants. The caller
        holds the admin lock; a RedisError leaves it to a later try."""
        import redis

        current: Any = self.link.client.get(self._epoch_key)
        if current is not None and (self._epoch is None or current == self._epoch):
            self._epoch = current
            return
        bans = [v for v in CircuitBreakers.views(self)
                if v.agent_id in self._mirrored and v.manual and v.state == BreakerState.OPEN]
        for v in bans:
            if self._run("open", (v.agent_id,), v.reason, v.opened_at, v.until) is None:
                raise redis.ConnectionError("putting manual bans back into Redis failed")
        self._epoch = self._current_epoch()

    def _current_epoch(self) -> bytes:
        """The token of the data set in Redis, set by the first node to look for it."""
        client = self.link.client
        client.set(self._epoch_key, uuid.uuid4().hex, nx=True)
        token: Any = client.get(self._epoch_key)
        return bytes(token)

    # -- views ----------------------------------------------------------------------

    def view(self, agent_id: str) -> BreakerView:
        if self.link.shared:
            got = self._run("view", (agent_id,))
            if got is not None:
                return _view_of(agent_id, got)
        return super().view(agent_id)

    def views(self) -> list[BreakerView]:
        """Every agent remembered by the cluster: OPEN first, then HALF_OPEN, then by
        failure rate."""
        if self.link.shared:
            out = self._views()
            if out is not None:
                return sort_views(out)
        return super().views()

    def _views(self) -> list[BreakerView] | None:
        members = self.link.call(lambda: self.link.client.zrange(self._index[0], 0, -1))
        if members is None:
            return None
        out = []
        agents = [m.decode() for m in members]
        for i in range(0, len(agents), _VIEWS_CHUNK):
            got = self._run("views", agents[i:i + _VIEWS_CHUNK])
            if got is None:
                return None
            out += [_view_of(got[j].decode(), got[j + 1]) for j in range(0, len(got), 2)]
        return out

    def counts(self) -> dict[str, int]:
        """Remembered agents per state across the cluster."""
        if self.link.shared:
            got = self._run("counts", ())
            if got is not None:
                total, opened, half = got
                return {"CLOSED": max(0, total - opened - half), "OPEN": opened,
                        "HALF_OPEN": half}
        return super().counts()


def _view_of(agent_id: str, got: Sequence[Any]) -> BreakerView:
    state, failures, n, reason, opened, until, manual = got
    return BreakerView(
        agent_id,
        _STATES[state].value,
        failures / n if n else 0.0,
        n,
        reason.decode() or None,
        float(opened) if opened else None,
        float(until) if until else None,
        manual == 1,
    )
