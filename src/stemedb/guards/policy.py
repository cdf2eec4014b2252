"""Guards built from settings: the per-class rate limiters and the agents' breakers.

With ``[guards] redis_url`` set they are shared by every node through that Redis
(guards/shared.py), each falling back to the in-process one while Redis is unreachable;
unset, they are the in-process ones alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stemedb.guards.addresses import IPNetwork, address_key, client_address, parse_networks
from stemedb.guards.breaker import BreakerConfig, CircuitBreakers
from stemedb.guards.limiter import LimitDecision, LimitPolicy, RateLimiter

if TYPE_CHECKING:
    from stemedb.guards.link import RedisLink
    from stemedb.guards.shared import SharedBreakers, SharedRateLimiter

CLASSES = ("assert", "query", "admin")


class Guards:
    def __init__(self, settings: Any, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        rl = settings.rate_limit
        self.limiters: dict[str, RateLimiter | SharedRateLimiter] = {}
        for name in CLASSES:
            rate, burst = getattr(rl, f"{name}_rate"), getattr(rl, f"{name}_burst")
            if rate > 0:
                self.limiters[name] = RateLimiter(LimitPolicy(rate, burst, name), clock=clock,
                                                  max_keys=rl.max_keys)
        cidrs = [c.strip() for c in rl.trusted_proxies.split(",") if c.strip()]
        self.trusted_proxies: tuple[IPNetwork, ...] = parse_networks(cidrs)
        cb = settings.circuit_breaker
        self.breakers: CircuitBreakers | SharedBreakers = CircuitBreakers(
            BreakerConfig(failure_rate_threshold=cb.failure_rate_threshold,
                          min_requests=cb.min_requests, timeout_seconds=cb.timeout_seconds,
                          window_size=cb.window_size, half_open_probes=cb.half_open_probes),
            clock=clock, wall=wall, max_agents=cb.max_agents)
        self.link: RedisLink | None = None
        guards = getattr(settings, "guards", None)
        redis_url = getattr(guards, "redis_url", "")
        if redis_url:
            from stemedb.guards.shared import share

            local = {n: lim for n, lim in self.limiters.items() if isinstance(lim, RateLimiter)}
            assert isinstance(self.breakers, CircuitBreakers)
            self.link, shared, self.breakers = share(
                redis_url, local, self.breakers, wall=wall,
                timeout=getattr(guards, "redis_timeout_ms", 100) / 1000)
            self.limiters.update(shared)

    def limit(self, name: str, key: str, cost: int = 1) -> LimitDecision | None:
        """The limiter's decision, or None when that class is not limited."""
        limiter = self.limiters.get(name)
        return None if limiter is None else limiter.check(key, cost)

    def address(self, peer: str | None, forwarded_for: str | None) -> str:
        return address_key(client_address(peer, forwarded_for, self.trusted_proxies))

    def shared_status(self) -> tuple[bool, int] | None:
        """(shared through Redis right now, times fallen back), or None without Redis."""
        link = self.link
        return None if link is None else (link.shared, link.fallbacks)

    def close(self) -> None:
        """Stop talking to Redis (the in-process guards need no closing)."""
        if self.link is not None:
            self.link.close()
