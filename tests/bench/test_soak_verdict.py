"""The soak's verdict (``bench.soak.verdict``) on made-up minutes: what passes, and that a
run which fell behind midway fails even when its last minute has caught up."""

from __future__ import annotations

from typing import Any

from bench.soak import verdict


def minute(number: int, p99_ms: float, rss: float = 80.0, errors: int = 0,
           unanswered: int = 0) -> dict[str, Any]:
    return {"minute": number, "writes": 600, "reads": 300, "answered": 900 - unanswered,
            "errors": errors, "p99_ms": p99_ms, "rss_anon_mib": rss}


def run(*p99s: float) -> list[dict[str, Any]]:
    return [minute(i + 1, p) for i, p in enumerate(p99s)]


def test_a_steady_run_passes() -> None:
    criteria = verdict(run(40, 45, 50, 42, 55), warmup=2)
    assert all(c["met"] for c in criteria.values()), criteria
    assert criteria["p99_worst_over_first"]["minute"] == 5
    assert criteria["p99_worst_over_first"]["value"] == 1.375


def test_falling_behind_midway_fails_though_the_last_minute_caught_up() -> None:
    criteria = verdict(run(40, 45, 2500, 900, 50), warmup=2)
    assert criteria["p99_last_over_first"]["met"]
    worst = criteria["p99_worst_over_first"]
    assert not worst["met"] and worst["minute"] == 3 and worst["worst_ms"] == 2500


def test_a_minute_with_unanswered_requests_fails_both_ratios() -> None:
    minutes = run(40, 45, 50)
    minutes[1] = minute(2, 45, unanswered=3)
    criteria = verdict(minutes, warmup=1)
    assert criteria["p99_last_over_first"]["met"]
    assert not criteria["p99_worst_over_first"]["met"]
    assert criteria["p99_worst_over_first"]["value"] is None


def test_memory_growth_and_errors_fail() -> None:
    minutes = run(40, 41, 42, 43)
    minutes[-1] = minute(4, 43, rss=90.0)
    criteria = verdict(minutes, warmup=2)
    assert not criteria["rss_anon_growth"]["met"]
    minutes[-1] = minute(4, 43, errors=1)
    assert not verdict(minutes, warmup=2)["errors"]["met"]
