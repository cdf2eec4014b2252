"""Per-key rate limiting with GCRA (the generic cell rate algorithm).

Each key keeps one number, its theoretical arrival time (TAT): the instant at which its
bucket would be full again. With emission interval ``T = 1 / rate`` and tolerance
``tau = burst * T``, a request of ``cost`` units at ``now`` conforms when
``max(TAT, now) + cost * T - tau <= now``; if it does, the TAT moves to
``max(TAT, now) + cost * T``. So a fresh key gets ``burst`` requests at once and then
``rate`` per second, with no timers and no background work.

Memory is bounded: a key whose TAT is in the past carries no information (its bucket is
full) and is dropped. Keys are kept in an ordered dict, least recently checked first;
every call drops up to two expired keys from the front, and when ``max_keys`` is
exceeded although nothing has expired, the least recently checked keys are evicted.
Eviction fails open for them: such a key starts again with a full bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LimitDecision", "LimitPolicy", "RateLimiter"]

Clock = Callable[[], float]

# Float slack when comparing instants, so that a request arriving exactly on its
# conformance time is not refused because of rounding.
_EPS = 1e-9
# Expired keys dropped from the front per call: more than one insertion per call on
# average, so expired keys never pile up.
_EXPIRE_PER_CALL = 2


def _is_sf_token_safe(name: str) -> bool:
    return bool(name) and all(0x20 <= ord(c) < 0x7F and c not in '"\\' for c in name)


@dataclass(frozen=True)
class LimitPolicy:
    """``burst`` requests at once, then ``rate`` per second, per key."""

    rate: float
    burst: int
    name: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a positive number, got {self.rate!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {self.burst!r}")
        if not _is_sf_token_safe(self.name):
            raise ValueError(f"name must be printable ASCII without quotes, got {self.name!r}")

    @property
    def window(self) -> int:
        """Seconds in which a drained bucket refills, as advertised in ``w=`` (>= 1)."""
        return max(1, math.ceil(self.burst / self.rate - _EPS))


@dataclass(frozen=True)
class LimitDecision:
    """The answer for one request; ``headers()`` gives the response header fields."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after: float
    name: str = "default"
    window: int = 1

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-08
        structured fields), plus ``Retry-After`` in whole seconds (>= 1) when refused."""
        reset = max(0, math.ceil(self.reset_seconds - _EPS))
        out = {
            "RateLimit-Policy": f'"{self.name}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.name}";r={self.remaining};t={reset}',
        }
        if not self.allowed:
            out["Retry-After"] = str(retry_after_header(self.retry_after))
        return out


def retry_after_header(seconds: float) -> int:
    """Whole seconds for ``Retry-After``: rounded up, at least 1."""
    if not math.isfinite(seconds):
        return 1
    return max(1, math.ceil(seconds - _EPS))


_new = object.__new__
_setattr = object.__setattr__


def _decision(fields: dict[str, object]) -> LimitDecision:
    # The generated __init__ of a frozen dataclass costs a guarded setattr per field,
    # about half of a whole check(); filling __dict__ at once gives the same object.
    d: LimitDecision = _new(LimitDecision)
    _setattr(d, "__dict__", fields)
    return d


class RateLimiter:
    """GCRA limiter for one policy, keyed by any string. Thread-safe."""

    def __init__(
        self,
        policy: LimitPolicy,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.policy = policy
        self.max_keys = max_keys
        self.evictions = 0  # keys dropped before expiry because of max_keys
        self._clock = clock
        self._interval = 1.0 / policy.rate
        self._tau = policy.burst * self._interval
        self._burst = policy.burst
        self._name = policy.name
        self._window = policy.window
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats)

    def check(self, key: str, cost: int = 1) -> LimitDecision:
        """Charge ``cost`` units to ``key`` if they conform; say how it stands either way.

        ``cost=0`` only looks. A cost above the burst can never fit in the bucket: it is
        admitted only when the bucket is full, and then pays its whole cost, so the key
        waits correspondingly longer afterwards (the long-run rate still holds).
        """
        if cost < 0:
            raise ValueError("cost must be >= 0")
        now = self._clock()
        interval = self._interval
        tau = self._tau
        burst = self._burst
        with self._lock:
            tats = self._tats
            stored = tats.get(key)
            tat = stored if stored is not None and stored > now else now
            fit = cost if cost <= burst else burst
            allow_at = tat + fit * interval - tau
            if allow_at <= now + _EPS:
                allowed = True
                tat += cost * interval
                retry_after = 0.0
                if tat > now:
                    tats[key] = tat
                    tats.move_to_end(key)
                elif stored is not None:
                    del tats[key]
            else:
                allowed = False
                retry_after = allow_at - now
                tats.move_to_end(key)  # a refused key is active: keep it away from eviction
            self._trim(now)
        return self.decision(now, tat, allowed, retry_after)

    def decision(self, now: float, tat: float, allowed: bool, retry_after: float) -> LimitDecision:
        """The answer once the key's TAT is ``tat`` at ``now`` (after the charge, if any).

        Also builds the answers of the Redis-backed limiter (guards/shared.py), whose
        script returns the same TAT, so both give the same headers for the same state."""
        interval = self._interval
        burst = self._burst
        remaining = int((now - tat + self._tau) / interval + _EPS)
        if remaining < 0:
            remaining = 0
        elif remaining > burst:
            remaining = burst
        reset = tat - now
        return _decision(
            {
                "allowed": allowed,
                "limit": burst,
                "remaining": remaining,
                "reset_seconds": reset if reset > 0.0 else 0.0,
                "retry_after": retry_after,
                "name": self._name,
                "window": self._window,
            }
        )

    def retry_after(self, key: str) -> float:
        """Seconds until one more unit would conform for ``key`` (0 if now)."""
        now = self._clock()
        with self._lock:
            stored = self._tats.get(key)
        if stored is None:
            return 0.0
        wait = stored + self._interval - self._tau - now
        return wait if wait > 0.0 else 0.0

    def _trim(self, now: float) -> None:
        # Caller holds the lock.
        tats = self._tats
        for _ in range(_EXPIRE_PER_CALL):
            if not tats:
                return
            key = next(iter(tats))
            if tats[key] > now:
                break
            del tats[key]
        excess = len(tats) - self.max_keys
        while excess > 0:
            tats.popitem(last=False)
            self.evictions += 1
            excess -= 1
