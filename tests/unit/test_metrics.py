"""Metrics: declarations, the hot-path methods, scrape-time collectors, bounded labels."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from stemedb import errors
from stemedb.engine import Database
from stemedb.metrics import (
    OTHER,
    AgentLabeler,
    Metrics,
    RateWindow,
    result_outcome,
    write_outcome,
)
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import ROOT, assertion_body


def agent(i: int | str) -> str:
    """A distinct 64-hex agent id (distinct in its first 16 digits too)."""
    return hashlib.sha256(str(i).encode()).hexdigest()


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def families(m: Metrics) -> dict[str, Metric]:
    """Metric families by name; the ``*_created`` gauges prometheus_client adds to
    counters and histograms are left out."""
    text = generate_latest(m.registry).decode()
    return {
        f.name: f for f in text_string_to_metric_families(text) if not f.name.endswith("_created")
    }


def value(m: Metrics, name: str, **labels: str) -> float | None:
    """The value of the one sample called ``name`` with exactly ``labels``."""
    text = generate_latest(m.registry).decode()
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def label_values(m: Metrics, name: str, label: str) -> set[str]:
    text = generate_latest(m.registry).decode()
    return {
        s.labels[label]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and label in s.labels
    }


def _db(tmp_path: Path) -> Database:
    return Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))


# -- declarations -------------------------------------------------------------------

SEED = {  # the runbook's names and types, exactly
    "stemedb_quarantine_pending": "gauge",
    "stemedb_quarantine": "counter",  # stemedb_quarantine_total
    "stemedb_quarantine_approved": "counter",
    "stemedb_quarantine_rejected": "counter",
    "stemedb_quarantine_rate_per_minute": "gauge",
    "stemedb_quarantine_rate_per_agent": "gauge",
    "stemedb_ingest_rate_per_minute": "gauge",
}

DECLARED = {
    **SEED,
    "stemedb_writes": "counter",
    "stemedb_http_requests": "counter",
    "stemedb_http_request_duration_seconds": "histogram",
    "stemedb_http_requests_in_flight": "gauge",
    "stemedb_wal_fsync_duration_seconds": "histogram",
    "stemedb_wal_group_commit_size": "histogram",
    "stemedb_wal_bytes": "counter",
    "stemedb_circuit_breaker_state": "gauge",
    "stemedb_circuit_breaker_opens": "counter",
    "stemedb_rate_limit_rejections": "counter",
    "stemedb_backup_last_success_timestamp_seconds": "gauge",
    "stemedb_wal_archive_lag_seconds": "gauge",
    "stemedb_wal_archive_lag_segments": "gauge",
    "stemedb_build_info": "gauge",
}

BOUND = {  # only after bind(database)
    "stemedb_wal_last_lsn": "gauge",
    "stemedb_index_applied_lsn": "gauge",
    "stemedb_index_lag_records": "gauge",
    "stemedb_search_lag_records": "gauge",
    "stemedb_journal_read_only": "gauge",
    "stemedb_ready": "gauge",
    "stemedb_disk_free_bytes": "gauge",
    "stemedb_disk_min_free_bytes": "gauge",
}


def test_every_metric_is_declared_with_its_type_and_prefix() -> None:
    got = {name: f.type for name, f in families(Metrics()).items()}
    assert got == DECLARED


def test_bind_adds_the_database_gauges(tmp_path: Path) -> None:
    m = Metrics()
    db = _db(tmp_path)
    try:
        m.bind(db)
        got = {name: f.type for name, f in families(m).items()}
        assert got == {**DECLARED, **BOUND}
    finally:
        db.close()


def test_each_instance_has_its_own_registry_never_the_global_one() -> None:
    a, b = Metrics(), Metrics()
    assert a.registry is not b.registry and a.registry is not REGISTRY
    a.observe_write("assert", "accepted")
    assert value(a, "stemedb_writes_total", kind="assert", outcome="accepted") == 1
    assert value(b, "stemedb_writes_total", kind="assert", outcome="accepted") == 0
    assert not any(n.startswith("stemedb_") for n in REGISTRY._names_to_collectors)


def test_an_injected_registry_is_used() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    assert m.registry is registry
    assert "stemedb_writes_total" in generate_latest(registry).decode()


def test_build_info() -> None:
    from stemedb import __version__

    (sample,) = families(Metrics())["stemedb_build_info"].samples
    assert sample.value == 1
    assert sample.labels["version"] == __version__
    assert re.fullmatch(r"3\.\d+\.\d+.*", sample.labels["python"])


# -- writes ---------------------------------------------------------------------------


def test_observe_write_counts_by_kind_and_outcome_and_feeds_the_ingest_rate() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock)
    m.observe_write("assert", "accepted")
    m.observe_write("assert", "accepted", n=4)
    m.observe_write("assert", "quarantined")
    m.observe_write("retract", "accepted")
    m.observe_write("assert", "replayed")
    m.observe_write("assert", "invalid_signature")
    m.observe_write("assert", "validation-failed")  # a problem type names the refusal too
    m.observe_write("retract", "circuit-breaker-open")
    m.observe_write("bogus", "made-up")
    assert value(m, "stemedb_writes_total", kind="assert", outcome="accepted") == 5
    assert value(m, "stemedb_writes_total", kind="retract", outcome="accepted") == 1
    assert value(m, "stemedb_writes_total", kind="assert", outcome="invalid_signature") == 1
    assert value(m, "stemedb_writes_total", kind="assert", outcome="validation") == 1
    assert value(m, "stemedb_writes_total", kind="retract", outcome="breaker_open") == 1
    assert value(m, "stemedb_writes_total", kind=OTHER, outcome=OTHER) == 1
    # stored writes only: accepted and quarantined, not replays or refusals
    assert value(m, "stemedb_ingest_rate_per_minute") == 7


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (errors.SignatureInvalid("x"), "invalid_signature"),
        (errors.ValidationFailed([{"field": "f", "message": "m"}]), "validation"),
        (errors.NonceReused("x"), "nonce_reused"),
        (errors.MalformedBody("x"), "malformed"),
        (errors.PayloadTooLarge("x"), "too_large"),
        (errors.UnsupportedMediaType("x"), "unsupported_media_type"),
        (errors.Forbidden("x"), "forbidden"),
        (errors.AgentNotEnrolled("x"), "not_enrolled"),
        (errors.AgentRevoked("x"), "revoked"),
        (errors.OutsideNamespace("x"), "outside_namespace"),
        (errors.NotFound("x"), "not_found"),
        (errors.Conflict("x"), "conflict"),
        (errors.TooManyRequests("x"), "rate_limited"),
        (errors.Unavailable("x"), "unavailable"),
        (errors.JournalReadOnly("x"), "unavailable"),
        (errors.Unauthorized("x"), "rejected"),
        (RuntimeError("boom"), "error"),
    ],
)
def test_write_outcome_of_errors(error: BaseException, outcome: str) -> None:
    assert write_outcome(error) == outcome


def test_result_outcome() -> None:
    assert result_outcome(201, {"status": "accepted"}) == "accepted"
    assert result_outcome(201, {"status": "retracted"}) == "accepted"
    assert result_outcome(202, {"status": "quarantined"}) == "quarantined"
    assert result_outcome(200, {"status": "accepted"}) == "replayed"


# -- journal --------------------------------------------------------------------------


def test_observe_commit_feeds_fsync_group_commit_and_bytes() -> None:
    m = Metrics()
    m.observe_commit(1, 0.0004, 300)
    m.observe_commit(64, 0.002, 20_000)
    assert value(m, "stemedb_wal_fsync_duration_seconds_count") == 2
    assert value(m, "stemedb_wal_fsync_duration_seconds_bucket", le="0.0005") == 1
    assert value(m, "stemedb_wal_group_commit_size_sum") == 65
    assert value(m, "stemedb_wal_group_commit_size_bucket", le="1.0") == 1
    assert value(m, "stemedb_wal_group_commit_size_bucket", le="64.0") == 2
    assert value(m, "stemedb_wal_bytes_total") == 20_300


# -- sliding windows ------------------------------------------------------------------


def test_rate_window_counts_the_last_60_seconds() -> None:
    clock = FakeClock(500.0)
    w = RateWindow(clock)
    w.add()
    clock.t += 30
    w.add(2)
    assert w.total() == 3
    clock.t += 29.5  # 59.5 s after the first event: still in the window
    assert w.total() == 3
    clock.t += 1
    assert w.total() == 2
    clock.t += 30
    assert w.total() == 0
    clock.t += 3600  # a slot reused much later starts from zero
    w.add()
    assert w.total() == 1


def test_rates_per_minute_are_computed_at_scrape_time() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock)
    for _ in range(10):
        m.observe_quarantine("ab" * 32, "LowQuality")
    assert value(m, "stemedb_quarantine_rate_per_minute") == 10
    assert sum(s.value for s in families(m)["stemedb_quarantine_rate_per_agent"].samples) == 10
    clock.t += 61
    assert value(m, "stemedb_quarantine_rate_per_minute") == 0
    assert value(m, "stemedb_quarantine_rate_per_agent", agent_id="abababababababab") == 0


# -- quarantine and bounded agent labels ----------------------------------------------


def test_quarantine_counts_by_agent_prefix_and_reason() -> None:
    m = Metrics()
    busy, quiet = "8f3a2b1c" * 8, "7d2e5f9a" * 8
    for _ in range(20):
        m.observe_quarantine(busy, "LowQuality")
    m.observe_quarantine(busy, "Duplicate")
    m.observe_quarantine(quiet, "Duplicate")
    # the busy agent is labelled from its 3rd event on; earlier ones count as "other"
    assert value(m, "stemedb_quarantine_total", agent_id=busy[:16], reason="LowQuality") == 18
    assert value(m, "stemedb_quarantine_total", agent_id=busy[:16], reason="Duplicate") == 1
    assert value(m, "stemedb_quarantine_total", agent_id=OTHER, reason="LowQuality") == 2
    assert value(m, "stemedb_quarantine_total", agent_id=OTHER, reason="Duplicate") == 1
    assert value(m, "stemedb_quarantine_rate_per_agent", agent_id=busy[:16]) == 19
    assert value(m, "stemedb_quarantine_rate_per_minute") == 22


def test_decisions_pending_and_reasons_are_bounded() -> None:
    m = Metrics()
    m.observe_decision(True)
    m.observe_decision(False)
    m.observe_decision(False)
    m.set_pending(123)
    assert value(m, "stemedb_quarantine_approved_total") == 1
    assert value(m, "stemedb_quarantine_rejected_total") == 2
    assert value(m, "stemedb_quarantine_pending") == 123
    for i in range(100):
        m.observe_quarantine("cd" * 32, f"reason-{i}")
    assert len(label_values(m, "stemedb_quarantine_total", "reason")) <= 33


def test_100000_distinct_agents_stay_within_the_label_bound() -> None:
    limit = 50
    clock = FakeClock()
    m = Metrics(agent_label_limit=limit, clock=clock)
    keys = [agent(i) for i in range(100_000)]
    busy = [agent(f"busy-{i}") for i in range(5)]
    for n, key in enumerate(keys):
        m.observe_quarantine(key, "LowQuality")
        m.observe_quarantine(busy[n % 5], "LowQuality")
        if n % 1000 == 0:
            clock.t += 7  # re-ranks happen along the way
    agents = label_values(m, "stemedb_quarantine_total", "agent_id")
    assert len(agents) <= limit + 1
    assert {b[:16] for b in busy} <= agents and OTHER in agents
    assert len(label_values(m, "stemedb_quarantine_rate_per_agent", "agent_id")) <= limit + 1
    assert len(m.agents._counts) <= m.agents.capacity


def test_agents_churning_through_the_slots_leave_no_stale_series() -> None:
    limit = 10
    clock = FakeClock()
    m = Metrics(agent_label_limit=limit, clock=clock)
    evicted: list[str] = []
    remove_series = m.agents.on_evict
    assert remove_series is not None

    def on_evict(label: str) -> None:
        evicted.append(label)
        remove_series(label)

    m.agents.on_evict = on_evict
    for i in range(600):  # each agent floods in a burst, then goes quiet for good
        for _ in range(50):
            m.observe_quarantine(agent(i), "Duplicate")
        clock.t += 5
    assert len(evicted) > limit  # slots changed hands many times...
    agents = label_values(m, "stemedb_quarantine_total", "agent_id")
    assert len(agents) <= limit + 1  # ...and each holder's series left with it
    assert not agents & set(evicted) - m.agents.labeled
    assert len(m._agent_windows) <= limit + 1
    assert len(m._quarantine_children) <= limit + 1


def test_labeler_keeps_the_busiest_and_evicts_quiet_agents_at_rerank() -> None:
    clock = FakeClock()
    evicted: list[str] = []
    lab = AgentLabeler(2, clock=clock, period=60, on_evict=evicted.append)
    a, b, c = "aa" * 32, "bb" * 32, "cc" * 32
    for _ in range(5):
        lab.observe(a)
        lab.observe(b)
    assert lab.labeled == {a[:16], b[:16]}
    for _ in range(50):
        assert lab.observe(c) == OTHER  # no free slot until the next re-rank
    clock.t += 61
    lab.observe(c)  # re-rank: c is busier than both holders, which tie (a loses on key)
    assert lab.labeled == {b[:16], c[:16]}
    assert evicted == [a[:16]]
    assert lab.label(c) == c[:16] and lab.label("ee" * 32) == OTHER


def test_labeler_one_off_agents_never_get_a_label() -> None:
    lab = AgentLabeler(50)
    assert all(lab.observe(agent(i)) == OTHER for i in range(10_000))
    assert lab.labeled == frozenset()


def test_labeler_limit_zero_labels_nothing() -> None:
    lab = AgentLabeler(0)
    assert all(lab.observe("ab" * 32) == OTHER for _ in range(100))


# -- guards and operations ------------------------------------------------------------


def test_breakers_rate_limits_backups_and_archive() -> None:
    m = Metrics()
    m.set_breaker_states({"CLOSED": 10, "OPEN": 2, "HALF_OPEN": 1})
    assert value(m, "stemedb_circuit_breaker_state", state="closed") == 10
    assert value(m, "stemedb_circuit_breaker_state", state="open") == 2
    assert value(m, "stemedb_circuit_breaker_state", state="half_open") == 1
    m.set_breaker_states({"open": 1})
    assert value(m, "stemedb_circuit_breaker_state", state="closed") == 0
    assert value(m, "stemedb_circuit_breaker_state", state="open") == 1
    m.observe_breaker_open("automatic")
    m.observe_breaker_open("manual")
    m.observe_breaker_open("manual")
    m.observe_breaker_open("cosmic-ray")
    assert value(m, "stemedb_circuit_breaker_opens_total", trigger="automatic") == 1
    assert value(m, "stemedb_circuit_breaker_opens_total", trigger="manual") == 2
    assert value(m, "stemedb_circuit_breaker_opens_total", trigger=OTHER) == 1
    m.observe_rate_limited("assert")
    assert value(m, "stemedb_rate_limit_rejections_total", endpoint_class="assert") == 1
    assert value(m, "stemedb_rate_limit_rejections_total", endpoint_class="admin") == 0
    assert value(m, "stemedb_backup_last_success_timestamp_seconds") is None  # until set
    assert value(m, "stemedb_wal_archive_lag_seconds") is None
    m.set_backup_success(1_700_000_000)
    m.set_wal_archive_lag(42.5, 3)
    assert value(m, "stemedb_backup_last_success_timestamp_seconds") == 1_700_000_000
    assert value(m, "stemedb_wal_archive_lag_seconds") == 42.5
    assert value(m, "stemedb_wal_archive_lag_segments") == 3


def test_http_labels_are_bounded() -> None:
    m = Metrics()
    m.observe_request("GET", "/healthz", 200, 0.001)
    m.observe_request("BREW", "/healthz", 418, 0.001)
    for i in range(1000):
        m.observe_request("GET", f"/raw/{i}", 404, 0.001)
    assert label_values(m, "stemedb_http_requests_total", "method") == {"GET", OTHER}
    assert len(label_values(m, "stemedb_http_requests_total", "route")) <= 257


# -- bound to a real database ---------------------------------------------------------


def test_bind_reads_the_database_at_scrape_time_and_listens_to_commits(tmp_path: Path) -> None:
    m = Metrics()
    db = _db(tmp_path)
    try:
        m.bind(db)
        m.bind(db)  # re-binding does not register twice
        assert db.events is m
        assert value(m, "stemedb_wal_last_lsn") == 0
        assert value(m, "stemedb_ready") == 1
        assert value(m, "stemedb_journal_read_only") == 0
        assert value(m, "stemedb_disk_free_bytes") > 0  # type: ignore[operator]
        assert value(m, "stemedb_disk_min_free_bytes") == db.settings.journal.min_free_bytes
        key = AgentKey.generate()
        for i in range(3):
            body = assertion_body(key, subject=f"s{i}")
            asyncio.run(db.write("assert", body, key.sign_b64(body)))
        assert value(m, "stemedb_wal_last_lsn") == 3
        assert value(m, "stemedb_index_applied_lsn") == 3
        assert value(m, "stemedb_index_lag_records") == 0
        assert 0 <= value(m, "stemedb_search_lag_records") <= 3  # type: ignore[operator]
        db.reads.search("s0", 10, db.reads.applied_lsn, None)  # brings search up first
        assert value(m, "stemedb_search_lag_records") == 0
        assert value(m, "stemedb_wal_group_commit_size_sum") == 3
        assert value(m, "stemedb_wal_bytes_total") > 0  # type: ignore[operator]
        # the engine's observation hooks report to these metrics while bound
        assert value(m, "stemedb_writes_total", kind="assert", outcome="accepted") == 3
        assert value(m, "stemedb_ingest_rate_per_minute") == 3
        assert value(m, "stemedb_quarantine_pending") == 0  # read from the index
        assert value(m, "stemedb_circuit_breaker_state", state="open") == 0
        m.unbind()
        assert db.events is not m
        assert value(m, "stemedb_ready") is None
    finally:
        db.close()


def test_a_database_that_cannot_be_read_does_not_break_the_scrape(tmp_path: Path) -> None:
    class Broken:
        data_dir = tmp_path / "gone"

        @property
        def store(self) -> object:
            raise RuntimeError("closed")

        @property
        def reads(self) -> object:
            raise RuntimeError("closed")

        def readiness(self) -> tuple[bool, str]:
            raise RuntimeError("closed")

    m = Metrics()
    m.bind(Broken())
    text = generate_latest(m.registry).decode()
    assert "stemedb_ready 0.0" in text
    for name in (
        "stemedb_wal_last_lsn",
        "stemedb_index_applied_lsn",
        "stemedb_disk_free_bytes",
        "stemedb_index_lag_records",
        "stemedb_journal_read_only",
    ):
        assert f"\n{name} " not in text


def test_ready_and_read_only_follow_the_database(tmp_path: Path) -> None:
    class Journal:
        last_lsn = 10
        read_only_reason: str | None = "fsync failed: EIO"

    class Index:
        applied_lsn = 7
        search_lag_records = 0

    class Fake:
        store = Journal()
        reads = Index()
        data_dir = tmp_path

        def readiness(self) -> tuple[bool, str]:
            return False, "journal is read-only"

    m = Metrics()
    fake = Fake()
    m.bind(fake)
    m.set_pending(7)  # the fake has no quarantine table: the pushed value is kept
    assert value(m, "stemedb_quarantine_pending") == 7
    assert value(m, "stemedb_journal_read_only") == 1
    assert value(m, "stemedb_ready") == 0
    assert value(m, "stemedb_index_lag_records") == 3
    assert value(m, "stemedb_disk_min_free_bytes") is None  # no settings: left out


# -- cost -----------------------------------------------------------------------------


def test_every_metric_and_alert_is_documented() -> None:
    doc = (ROOT / "docs" / "operations" / "monitoring.md").read_text()
    names = {n + ("_total" if t == "counter" else "") for n, t in {**DECLARED, **BOUND}.items()}
    missing = sorted(n for n in names if f"`{n}" not in doc)
    assert not missing, f"not in docs/operations/monitoring.md: {missing}"
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    alerts = re.findall(r"alert: (\w+)", rules)
    assert len(alerts) == 16
    assert not [a for a in alerts if a not in doc]
