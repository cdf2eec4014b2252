"""What metrics cost single ingest: ``stemedb serve`` with metrics (middleware, hooks,
commit listener, ``/metrics``) and built ``create_app(with_metrics=False)``.

Measured two ways:

- through HTTP, as ``ingest_single.rate`` is (``bench/experiments/ab_http.py``: real server
  processes side by side, wrk at 32 connections, alternating short runs, medians of the
  pairs): ``metrics.overhead_ratio`` = median of 1 − rate_on / rate_off, the share of
  single-ingest throughput metrics take (target ≤ 0.05); ``metrics.cpu_overhead_ratio``,
  the same from the server's CPU time per write; the spread of the pairs, median rates
  and CPU per write;
- in process (``bench/experiments/ab.py``: the ASGI app called directly, no sockets or
  HTTP parsing, so the share comes out larger): ``metrics.inprocess_overhead_ratio`` and
  ``metrics.inprocess_cpu_overhead_ratio``.
"""

from __future__ import annotations

from .experiments import ab, ab_http
from .experiments.variants import app_without_metrics

TARGETS = {"metrics.overhead_ratio": ("<=", 0.05)}


def run() -> dict[str, float]:
    http = ab_http.compare("metrics")
    inprocess = ab.compare(ab.Side(), ab.Side(make_app=app_without_metrics), "metrics")
    return {**ab_http.keyed(http, "metrics.", {
        "ratio": "overhead_ratio", "cpu_ratio": "cpu_overhead_ratio",
        "ratio_min": "overhead_ratio_min", "ratio_max": "overhead_ratio_max",
        "rate_on": "rate_on", "rate_off": "rate_off", "cpu_us_on": "cpu_us_on",
        "cpu_us_off": "cpu_us_off", "other_cpu_cores": "other_cpu_cores"}),
        "metrics.inprocess_overhead_ratio": inprocess["ratio"],
        "metrics.inprocess_cpu_overhead_ratio": inprocess["cpu_ratio"]}


if __name__ == "__main__":
    print(run())
