"""What metrics cost the write path: signed single writes through the real ASGI app, with
metrics (middleware, hooks, commit listener) and without (``create_app(with_metrics=
False)``), measured by the shared A/B runner (``bench/ab.py``: alternating pairs on fresh
data directories, medians).

``run()`` returns ``metrics.overhead_ratio`` = median over pairs of 1 − rate_on /
rate_off, the share of single-ingest throughput that metrics take (target ≤ 0.05);
``metrics.cpu_overhead_ratio``, the same from process CPU time per write; the spread of
the pairs and both median rates.
"""

from __future__ import annotations

from typing import Any

from . import ab

TARGETS = {"metrics.overhead_ratio": ("<=", 0.05)}


def _app(with_metrics: bool) -> ab.MakeApp:
    def make(db: Any) -> Any:
        from stemedb.http import create_app

        return create_app(db, close_on_shutdown=False, with_metrics=with_metrics)

    return make


def run() -> dict[str, float]:
    r = ab.compare(_app(True), _app(False), "metrics")
    return {"metrics.overhead_ratio": r["ratio"], "metrics.cpu_overhead_ratio": r["cpu_ratio"],
            "metrics.overhead_ratio_min": r["ratio_min"],
            "metrics.overhead_ratio_max": r["ratio_max"],
            "metrics.rate_on": r["rate_on"], "metrics.rate_off": r["rate_off"]}


if __name__ == "__main__":
    print(run())
