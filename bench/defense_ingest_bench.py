"""What content defense costs single ingest: ``stemedb serve`` with the defense gate and
with ``AcceptAllGate`` in its place (``bench/experiments/variants.py``: every write accepted
without looking - no allowlist, duplicate, trust or quality work - and the single write's
one index read is the nonce lookup alone). The writes are ones the defense accepts, so
both sides store the same rows.

Measured two ways:

- through HTTP, as ``ingest_single.rate`` is (``bench/experiments/ab_http.py``: real server
  processes side by side, wrk at 32 connections, alternating short runs, medians of the
  pairs): ``defense.ingest_cost_ratio`` = median of 1 − rate_with / rate_without, how much
  the defense lowers single-ingest throughput and so ``ingest_single.ratio`` (target ≤
  0.10); ``defense.ingest_cpu_cost_ratio``, the same from the server's CPU time per
  write; the spread of the pairs, median rates and CPU per write;
- in process (``bench/experiments/ab.py``: the ASGI app called directly, no sockets or
  HTTP parsing, so the share comes out larger): ``defense.inprocess_cost_ratio`` and
  ``defense.inprocess_cpu_cost_ratio``.
"""

from __future__ import annotations

from .experiments import ab, ab_http
from .experiments.variants import open_without_defense

TARGETS = {"defense.ingest_cost_ratio": ("<=", 0.10)}


def run() -> dict[str, float]:
    http = ab_http.compare("defense")
    inprocess = ab.compare(ab.Side(), ab.Side(open_database=open_without_defense), "defense")
    return {**ab_http.keyed(http, "defense.ingest_", {
        "ratio": "cost_ratio", "cpu_ratio": "cpu_cost_ratio", "ratio_min": "cost_ratio_min",
        "ratio_max": "cost_ratio_max", "rate_on": "rate_on", "rate_off": "rate_off",
        "cpu_us_on": "cpu_us_on", "cpu_us_off": "cpu_us_off",
        "other_cpu_cores": "other_cpu_cores"}),
        "defense.inprocess_cost_ratio": inprocess["ratio"],
        "defense.inprocess_cpu_cost_ratio": inprocess["cpu_ratio"]}


if __name__ == "__main__":
    print(run())
