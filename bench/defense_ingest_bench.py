"""What content defense costs single ingest: signed single writes through the real ASGI
app with the defense gate and with it bypassed, measured by the shared A/B runner
(``bench/ab.py``: alternating pairs on fresh data directories, medians).

"Bypassed" replaces, in the benchmark process, the gate's ``verdicts`` with one that
accepts everything (no allowlist, duplicate, trust or quality work) and the single
write's combined index read with the nonce lookup alone (no duplicate key or counters);
the writes are ones the defense accepts, so both sides store the same rows.

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
        from stemedb.index import lookups

        app = create_app(db, close_on_shutdown=False)
        if with_defense:
            return app
        db.defense.verdicts = lambda items, known=None: [None] * len(items)
        facts = lookups.assertion_facts

        def nonce_only(store: Any, nonce: str, key: Any, since: int) -> Any:
            return lookups.writes_by_nonce(store, [(key[0], nonce)]), set(), {}

        lookups.assertion_facts = nonce_only

        def undo() -> None:
            lookups.assertion_facts = facts

        return app, undo

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
