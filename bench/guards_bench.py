"""Guards: per-request overhead and memory under a flood of fresh keys.

``run()`` returns

- ``guards.overhead_us``: median microseconds of one request's guard work - a rate-limit
  check, a breaker admit and a breaker record - over 200,000 requests from 10,000 agents
  (10% of outcomes failures), with the real monotonic clock. Each request is timed on its
  own with ``perf_counter_ns``, so the figure includes the timer's own cost.
- ``guards.rss_mb_1m_keys``: growth of the resident set (``VmRSS`` in
  ``/proc/self/status``) of a fresh interpreter after 1,000,000 distinct 64-character keys
  each went through a check, an admit and a failed record, with the default
  ``max_keys`` / ``max_agents`` (100,000). The clock is frozen, so no key expires and
  both bounds are what holds memory: this is the worst case.

Run alone: ``python bench/guards_bench.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REQUESTS = 200_000
AGENTS = 10_000
FLOOD_KEYS = 1_000_000


def _overhead_us() -> float:
    from stemedb.guards import BreakerConfig, CircuitBreakers, LimitPolicy, RateLimiter

    limiter = RateLimiter(LimitPolicy(rate=50.0, burst=100, name="assert"))
    breakers = CircuitBreakers(BreakerConfig())
    keys = [f"{i:064x}" for i in range(AGENTS)]
    timer = time.perf_counter_ns
    samples = [0] * REQUESTS
    check, admit, record = limiter.check, breakers.admit, breakers.record
    for i in range(REQUESTS):
        key = keys[i % AGENTS]
        failure = i % 10 == 0
        t0 = timer()
        decision = check(key)
        if decision.allowed:
            admission = admit(key)
            if admission.allowed:
                record(key, failure, probe=admission.probe)
        samples[i] = timer() - t0
    return statistics.median(samples) / 1000.0


def _vm_rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _flood_child() -> None:
    """In a fresh interpreter: RSS growth from FLOOD_KEYS fresh keys, as JSON on stdout."""
    import gc

    from stemedb.guards import BreakerConfig, CircuitBreakers, LimitPolicy, RateLimiter

    frozen = 1000.0
    limiter = RateLimiter(LimitPolicy(rate=50.0, burst=100, name="assert"), clock=lambda: frozen)
    breakers = CircuitBreakers(BreakerConfig(), clock=lambda: frozen, wall=lambda: 1.7e9)
    gc.collect()
    before = _vm_rss_kib()
    for i in range(FLOOD_KEYS):
        key = f"{i:064x}"
        limiter.check(key)
        breakers.admit(key)
        breakers.record(key, True)
    gc.collect()
    after = _vm_rss_kib()
    print(
        json.dumps(
            {
                "rss_mb": (after - before) / 1024.0,
                "limiter_keys": len(limiter),
                "breaker_agents": len(breakers),
            }
        )
    )


def _flood() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--flood-child"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run() -> dict[str, float]:
    flood = _flood()
    return {
        "guards.overhead_us": round(_overhead_us(), 3),
        "guards.rss_mb_1m_keys": round(flood["rss_mb"], 1),
    }


if __name__ == "__main__":
    if "--flood-child" in sys.argv:
        _flood_child()
    else:
        print(json.dumps(run(), indent=2))
