"""What content defense costs single ingest: signed single writes through the real ASGI
app with the defense gate and with it bypassed, measured by the shared A/B runner
(``bench/ab.py``: alternating pairs on fresh data directories, medians).

"Bypassed" replaces the gate's ``verdicts`` in the benchmark process with one that
accepts everything (no allowlist, duplicate, trust or quality work); the writes are ones
the defense accepts, so both sides store the same rows.

``run()`` returns ``defense.ingest_cost_ratio`` = median over pairs of 1 − rate_with /
rate_without: how much the defense lowers single-ingest throughput (target ≤ 0.10), the
same from process CPU time per write, the spread of the pairs and both median rates.
"""

from __future__ import annotations

from typing import Any

from . import ab

TARGETS = {"defense.ingest_cost_ratio": ("<=", 0.10)}


def _app(with_defense: bool) -> ab.MakeApp:
    def make(db: Any) -> Any:
        from stemedb.http import create_app

        if not with_defense:
            db.defense.verdicts = lambda items: [None] * len(items)
        return create_app(db, close_on_shutdown=False)

    return make


def run() -> dict[str, float]:
    r = ab.compare(_app(True), _app(False), "defense")
    return {"defense.ingest_cost_ratio": r["ratio"],
            "defense.ingest_cpu_cost_ratio": r["cpu_ratio"],
            "defense.ingest_cost_ratio_min": r["ratio_min"],
            "defense.ingest_cost_ratio_max": r["ratio_max"],
            "defense.ingest_rate_on": r["rate_on"], "defense.ingest_rate_off": r["rate_off"]}


if __name__ == "__main__":
    print(run())
