"""Guards in front of the engine: GCRA rate limits and per-agent circuit breakers.

Both are in-memory, thread-safe, bounded in memory and take an injectable clock. See
docs/guards.md for the state machine, the settings and the response headers.
"""

from stemedb.guards.addresses import IPNetwork, address_key, client_address, parse_networks
from stemedb.guards.breaker import (
    REASON_FAILURE_RATE,
    REASON_PROBE_FAILED,
    Admission,
    BreakerConfig,
    BreakerState,
    BreakerView,
    CircuitBreakers,
)
from stemedb.guards.limiter import (
    LimitDecision,
    LimitPolicy,
    RateLimiter,
    retry_after_header,
)
from stemedb.guards.policy import CLASSES, Guards

__all__ = [
    "REASON_FAILURE_RATE",
    "REASON_PROBE_FAILED",
    "Admission",
    "BreakerConfig",
    "BreakerState",
    "BreakerView",
    "CLASSES",
    "CircuitBreakers",
    "Guards",
    "IPNetwork",
    "LimitDecision",
    "LimitPolicy",
    "RateLimiter",
    "address_key",
    "client_address",
    "parse_networks",
    "retry_after_header",
]
