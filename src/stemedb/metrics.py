"""Every Prometheus metric of StemeDB, declared here on one injectable registry.

``Metrics()`` owns a fresh ``CollectorRegistry`` (never the process-wide default), so each
app and each test gets its own. The hot-path methods (``observe_*``) cache their labelled
children and touch no I/O; the values that describe the database (LSNs, readiness, disk)
and the sliding per-minute rates are computed at scrape time by collectors.

Label values are bounded everywhere: methods, kinds, outcomes, reasons, states and
routes are checked against small sets, and agent ids go through :class:`AgentLabeler`
(the busiest ``agent_label_limit`` agents keep a 16-hex-digit prefix, the rest are
``other``), so a flood of new keys cannot blow up the series count.

The reference of every metric is ``docs/operations/monitoring.md``.
"""

from __future__ import annotations

import contextlib
import heapq
import platform
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

OTHER = "other"
UNMATCHED = "unmatched"

HTTP_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
FSYNC_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
GROUP_COMMIT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

WRITE_KINDS = frozenset({"assert", "retract"})
#: Outcomes of a signed write: stored, answered from an earlier write, or refused.
WRITE_OUTCOMES = frozenset(
    {
        "accepted",
        "quarantined",
        "replayed",
        "malformed",
        "invalid_signature",
        "forbidden",
        "not_enrolled",
        "revoked",
        "outside_namespace",
        "not_found",
        "conflict",
        "nonce_reused",
        "too_large",
        "unsupported_media_type",
        "validation",
        "rate_limited",
        "breaker_open",
        "rejected",
        "unavailable",
        "error",
    }
)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BREAKER_STATES = ("closed", "open", "half_open")
BREAKER_TRIGGERS = ("automatic", "manual")
ENDPOINT_CLASSES = ("assert", "query", "admin")

# Problem types (errors.py) to write outcomes; anything else is classed by its status.
_OUTCOME_OF_TYPE = {
    "malformed-body": "malformed",
    "invalid-signature": "invalid_signature",
    "forbidden": "forbidden",
    "agent-not-enrolled": "not_enrolled",
    "agent-revoked": "revoked",
    "outside-namespace": "outside_namespace",
    "not-found": "not_found",
    "conflict": "conflict",
    "nonce-reused": "nonce_reused",
    "payload-too-large": "too_large",
    "unsupported-media-type": "unsupported_media_type",
    "validation-failed": "validation",
    "already-decided": "conflict",
    "too-many-requests": "rate_limited",
    "rate-limited": "rate_limited",
    "circuit-breaker-open": "breaker_open",
    "bad-request": "rejected",
    "unauthorized": "rejected",
    "unavailable": "unavailable",
    "journal-read-only": "unavailable",
}
_MAX_OPEN_LABELS = 32  # distinct values kept for labels without a fixed set (reason, route)


def _outcome_label(outcome: str) -> str:
    """An outcome, or a problem type (``invalid-signature``), as a bounded label value."""
    if outcome in WRITE_OUTCOMES:
        return outcome
    return _OUTCOME_OF_TYPE.get(outcome, OTHER)


def write_outcome(error: BaseException) -> str:
    """The ``outcome`` label of a write refused with ``error`` (a StemeError or not)."""
    kind = getattr(error, "type", None)
    if isinstance(kind, str) and kind in _OUTCOME_OF_TYPE:
        return _OUTCOME_OF_TYPE[kind]
    status = getattr(error, "status", 500)
    if isinstance(status, int) and 400 <= status < 500:
        return "rejected"
    return "unavailable" if status == 503 else "error"


def result_outcome(http_status: int, body: Mapping[str, Any]) -> str:
    """The ``outcome`` label of a write that was answered without error."""
    if http_status == 200:
        return "replayed"
    return "quarantined" if body.get("status") == "quarantined" else "accepted"


class RateWindow:
    """Events over the last 60 seconds, from a ring of 60 one-second buckets.

    ``add`` is O(1); ``total`` (called at scrape time) is O(60).
    """

    __slots__ = ("_clock", "_counts", "_seconds")
    SIZE = 60

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts = [0] * self.SIZE
        self._seconds = [-self.SIZE] * self.SIZE

    def add(self, n: int = 1) -> None:
        """Callers serialise ``add`` (the Metrics lock)."""
        sec = int(self._clock())
        i = sec % self.SIZE
        if self._seconds[i] == sec:
            self._counts[i] += n
        else:
            self._seconds[i] = sec
            self._counts[i] = n

    def total(self) -> int:
        now = int(self._clock())
        return sum(
            c for c, s in zip(self._counts, self._seconds, strict=True) if now - s < self.SIZE
        )


class AgentLabeler:
    """Maps agent ids to a bounded set of label values: at most ``limit`` agents keep
    their own label (the first 16 hex digits of the id); every other agent is ``other``.

    Recent counts come from a Misra–Gries summary of ``capacity`` counters (amortized
    O(1) per event; memory O(capacity)), halved every ``period`` seconds so that "busy"
    means busy lately. An agent gets its own label once its count reaches
    ``promote_after`` while a slot is free; once per ``period`` the slots are re-ranked by
    count (holders win ties, so quiet holders keep their slot until someone busier needs
    it) and every displaced label is passed to ``on_evict``, which removes its series.
    A flood of one-off agents therefore never earns a label, and labels change at most
    once per period. Not thread-safe: the caller serialises calls.
    """

    def __init__(
        self,
        limit: int = 50,
        *,
        capacity: int | None = None,
        promote_after: int = 3,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self.capacity = capacity if capacity is not None else max(4 * limit, 64)
        self.promote_after = max(1, promote_after)
        self.period = period
        self.on_evict = on_evict
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._labeled: set[str] = set()
        self._next_rank = clock() + period

    @staticmethod
    def key(agent_id: str) -> str:
        return agent_id[:16].lower()

    @property
    def labeled(self) -> frozenset[str]:
        return frozenset(self._labeled)

    def observe(self, agent_id: str) -> str:
        """Counts one event of ``agent_id`` and returns its label value."""
        if self._clock() >= self._next_rank:
            self._rerank()
        key = self.key(agent_id)
        counts = self._counts
        n = counts.get(key)
        if n is not None:
            counts[key] = n + 1
        elif len(counts) < self.capacity:
            counts[key] = 1
        else:  # Misra–Gries: the newcomer and every counter lose one
            for k, v in list(counts.items()):
                if v > 1:
                    counts[k] = v - 1
                else:
                    del counts[k]
        if key in self._labeled:
            return key
        if len(self._labeled) < self.limit and counts.get(key, 0) >= self.promote_after:
            self._labeled.add(key)
            return key
        return OTHER

    def label(self, agent_id: str) -> str:
        """The current label of ``agent_id``, without counting an event."""
        key = self.key(agent_id)
        return key if key in self._labeled else OTHER

    def _rerank(self) -> None:
        self._next_rank = self._clock() + self.period
        counts = self._counts
        scored = [(counts.get(k, 0), 1, k) for k in self._labeled]
        scored += [
            (v, 0, k)
            for k, v in counts.items()
            if v >= self.promote_after and k not in self._labeled
        ]
        keep = {k for _, _, k in heapq.nlargest(self.limit, scored)}
        evicted = self._labeled - keep
        self._labeled = keep
        self._counts = {k: v >> 1 for k, v in counts.items() if v > 1}
        if self.on_evict is not None:
            for k in sorted(evicted):
                self.on_evict(k)


class _BoundedValues:
    """Keeps label values of an open set up to ``limit`` distinct ones; later ones map to
    ``other``."""

    __slots__ = ("_allowed", "_limit", "_seen")

    def __init__(self, allowed: Iterable[str] = (), limit: int = _MAX_OPEN_LABELS) -> None:
        self._allowed = frozenset(allowed)
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, value: str) -> str:
        if value in self._allowed or value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return OTHER


class Metrics:
    """All StemeDB metrics on one registry (a fresh one unless ``registry`` is given)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        agent_label_limit: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._lock = threading.Lock()
        self._clock = clock

        # writes (stemedb_ingest_rate_per_minute: _ScrapeCollector)
        self.writes = Counter(
            "stemedb_writes", "Signed writes by kind and outcome.", ["kind", "outcome"], registry=r
        )
        # quarantine (stemedb_quarantine_pending and the per-minute rates: _ScrapeCollector)
        self.quarantine = Counter(
            "stemedb_quarantine",
            "Writes quarantined, by agent (busiest agents, else 'other') and reason.",
            ["agent_id", "reason"],
            registry=r,
        )
        self.quarantine_approved = Counter(
            "stemedb_quarantine_approved", "Quarantine items approved by a reviewer.", registry=r
        )
        self.quarantine_rejected = Counter(
            "stemedb_quarantine_rejected", "Quarantine items rejected by a reviewer.", registry=r
        )
        # HTTP
        self.http_requests = Counter(
            "stemedb_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "stemedb_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "stemedb_http_requests_in_flight", "HTTP requests being served.", registry=r
        )
        # journal (LSNs, lag, read-only, readiness, disk: _DatabaseCollector)
        self.wal_fsync = Histogram(
            "stemedb_wal_fsync_duration_seconds",
            "Duration of each journal fsync (one per group commit).",
            buckets=FSYNC_BUCKETS,
            registry=r,
        )
        self.wal_group_commit = Histogram(
            "stemedb_wal_group_commit_size",
            "Records made durable by one group commit (fsync).",
            buckets=GROUP_COMMIT_BUCKETS,
            registry=r,
        )
        self.wal_bytes = Counter("stemedb_wal_bytes", "Bytes written to the journal.", registry=r)
        # guards (stemedb_circuit_breaker_state: _ScrapeCollector)
        self.breaker_opens = Counter(
            "stemedb_circuit_breaker_opens",
            "Circuit breakers opened, automatically or by an admin.",
            ["trigger"],
            registry=r,
        )
        self.rate_limited = Counter(
            "stemedb_rate_limit_rejections",
            "Requests refused with 429 by a rate limit.",
            ["endpoint_class"],
            registry=r,
        )
        # operations: exposed only once set in this process, so that they never shadow
        # the same names written by `stemedb backup` / `stemedb wal archive` for
        # node_exporter's textfile collector (the usual source, see ops/textfile.py)
        self._ops = _OptionalGauges(
            {
                "stemedb_backup_last_success_timestamp_seconds": (
                    "Unix time of the last successful backup."
                ),
                "stemedb_wal_archive_lag_seconds": (
                    "Age of the oldest sealed journal segment not yet archived (0: none)."
                ),
                "stemedb_wal_archive_lag_segments": "Sealed journal segments not yet archived.",
            }
        )
        r.register(self._ops)
        self.build_info = Gauge(
            "stemedb_build_info",
            "Version of StemeDB and Python (always 1).",
            ["version", "python"],
            registry=r,
        )
        from .version import __version__

        self.build_info.labels(__version__, platform.python_version()).set(1)

        # state read at scrape time: pushed values, or sources found by bind()
        self._ingest_window = RateWindow(clock)
        self._quarantine_window = RateWindow(clock)
        self._agent_windows: dict[str, RateWindow] = {}
        self.agents = AgentLabeler(agent_label_limit, clock=clock, on_evict=self._evict_agent)
        self._pending = 0.0
        self._breaker_counts: dict[str, float] = dict.fromkeys(BREAKER_STATES, 0.0)
        self._pending_source: Callable[[], float] | None = None
        self._rates_source: Callable[[], tuple[int, int]] | None = None
        self._breaker_source: Callable[[], Mapping[str, int]] | None = None
        r.register(_ScrapeCollector(self))
        r.register(_SharedGuardsCollector(self))
        self._db_collector: _DatabaseCollector | None = None
        self._bound: Any = None
        self._previous_events: Any = None

        # bounded label sets and cached children (the hot path is one dict lookup)
        self._reasons = _BoundedValues()
        self._routes = _BoundedValues((UNMATCHED,), limit=256)
        self._states = _BoundedValues(BREAKER_STATES, limit=8)
        self._classes = _BoundedValues(ENDPOINT_CLASSES, limit=8)
        self._write_children: dict[tuple[str, str], Any] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._quarantine_children: dict[tuple[str, str], Any] = {}
        for kind in sorted(WRITE_KINDS):
            for outcome in ("accepted", "quarantined", "replayed", "unavailable"):
                self.writes.labels(kind, outcome)
        for trigger in BREAKER_TRIGGERS:
            self.breaker_opens.labels(trigger)
        for endpoint_class in ENDPOINT_CLASSES:
            self.rate_limited.labels(endpoint_class)

    # -- binding to a database ------------------------------------------------------

    def bind(self, database: Any) -> None:
        """Observe ``database`` (duck-typed; what it lacks is skipped):

        - scrape-time gauges: LSNs, index lag, read-only, readiness, disk, and, when
          available, pending quarantine items and agents per breaker state;
        - its ``WriteEvents`` (writes, quarantines, rate limits, breakers, decisions,
          group commits): these metrics become the database's ``events``.

        Re-binding replaces the previous database; ``unbind`` undoes it all."""
        self.unbind()
        self._db_collector = _DatabaseCollector(database)
        self.registry.register(self._db_collector)
        if hasattr(database, "events"):
            self._previous_events = database.events
            database.events = self
        self._pending_source = _pending_source(database)
        self._rates_source = _rates_source(database)
        try:
            counts = database.guards.breakers.counts
        except Exception:  # no breakers
            counts = None
        self._breaker_source = counts if callable(counts) else None
        self._bound = database

    def unbind(self) -> None:
        if self._db_collector is not None:
            self.registry.unregister(self._db_collector)
            self._db_collector = None
        db = self._bound
        if db is not None and getattr(db, "events", None) is self:
            db.events = self._previous_events
        self._previous_events = None
        self._pending_source = self._breaker_source = None
        self._rates_source = None
        self._bound = None

    # -- hot path -------------------------------------------------------------------

    def observe_write(self, kind: str, outcome: str, n: int = 1) -> None:
        """``n`` signed writes of ``kind`` ended with ``outcome``: one of WRITE_OUTCOMES,
        or the problem type of the refusal (``invalid-signature``, see errors.py)."""
        child = self._write_children.get((kind, outcome))
        if child is None:
            child = self.writes.labels(
                kind if kind in WRITE_KINDS else OTHER, _outcome_label(outcome)
            )
            if len(self._write_children) < 256:
                self._write_children[(kind, outcome)] = child
        child.inc(n)
        if outcome == "accepted" or outcome == "quarantined":
            with self._lock:
                self._ingest_window.add(n)

    def observe_commit(self, records: int, fsync_seconds: float, nbytes: int) -> None:
        """One group commit (called on the storage backend's commit thread)."""
        self.wal_fsync.observe(fsync_seconds)
        self.wal_group_commit.observe(records)
        self.wal_bytes.inc(nbytes)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request; ``route`` is the route template or ``unmatched``."""
        children = self._request_children.get((method, route, status))
        if children is None:
            m = method if method in HTTP_METHODS else OTHER
            rt = self._routes(route)
            children = (
                self.http_requests.labels(m, rt, str(status)),
                self.http_duration.labels(m, rt),
            )
            if len(self._request_children) < 4096:
                self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_quarantine(self, agent_id: str, reason: str) -> None:
        """One write quarantined (``observe_write(kind, "quarantined")`` counts it too)."""
        with self._lock:
            label = self.agents.observe(agent_id)
            key = (label, self._reasons(reason))
            child = self._quarantine_children.get(key)
            if child is None:
                child = self._quarantine_children[key] = self.quarantine.labels(*key)
            window = self._agent_windows.get(label)
            if window is None:
                window = self._agent_windows[label] = RateWindow(self._clock)
            window.add()
            self._quarantine_window.add()
        child.inc()

    def observe_decision(self, approved: bool) -> None:
        """A reviewer approved (True) or rejected (False) one quarantine item."""
        (self.quarantine_approved if approved else self.quarantine_rejected).inc()

    def set_pending(self, n: int) -> None:
        """Pending quarantine items (not needed once bound to a database that has them)."""
        self._pending = float(n)

    def observe_breaker_open(self, trigger: str) -> None:
        """``trigger``: ``automatic`` (failure rate) or ``manual`` (admin API)."""
        self.breaker_opens.labels(trigger if trigger in BREAKER_TRIGGERS else OTHER).inc()

    def set_breaker_states(self, counts: Mapping[str, int]) -> None:
        """Agents per breaker state, e.g. ``CircuitBreakers.counts()``
        (``{"CLOSED": 10, "OPEN": 2, "HALF_OPEN": 0}``; any case). Not needed once bound
        to a database that has breakers."""
        self._breaker_counts = self._state_counts(counts)

    def observe_rate_limited(self, endpoint_class: str) -> None:
        self.rate_limited.labels(self._classes(endpoint_class)).inc()

    def set_backup_success(self, unix_seconds: float) -> None:
        """For a backup taken inside the server process (from then on exposed here)."""
        self._ops.set("stemedb_backup_last_success_timestamp_seconds", unix_seconds)

    def set_wal_archive_lag(self, seconds: float, segments: int) -> None:
        """For WAL archiving run inside the server process (from then on exposed here)."""
        self._ops.set("stemedb_wal_archive_lag_seconds", seconds)
        self._ops.set("stemedb_wal_archive_lag_segments", segments)

    # -- internals --------------------------------------------------------------------

    def _state_counts(self, counts: Mapping[str, int]) -> dict[str, float]:
        """Lower-case, bounded state labels; the known states always present."""
        out = dict.fromkeys(BREAKER_STATES, 0.0)
        for state, n in counts.items():
            label = self._states(state.lower())
            out[label] = out.get(label, 0.0) + n
        return out

    def _evict_agent(self, label: str) -> None:
        """An agent lost its own label (called by the labeler, under self._lock)."""
        self._agent_windows.pop(label, None)
        for key in [k for k in self._quarantine_children if k[0] == label]:
            del self._quarantine_children[key]
            self.quarantine.remove(*key)

    def _scrape_state(self) -> _ScrapeState:
        with self._lock:
            per_agent = sorted((label, w.total()) for label, w in self._agent_windows.items())
            ingest, quarantined = self._ingest_window.total(), self._quarantine_window.total()
        pending = self._pending
        if self._pending_source is not None:
            with contextlib.suppress(Exception):  # e.g. a closed database: last pushed value
                pending = float(self._pending_source())
        states = self._breaker_counts
        if self._breaker_source is not None:
            with contextlib.suppress(Exception):
                states = self._state_counts(self._breaker_source())
        if self._rates_source is not None:
            with contextlib.suppress(Exception):  # the database is away: this node's own
                ingest, quarantined = self._rates_source()
        return _ScrapeState(ingest, quarantined, per_agent, pending, states)


def _rates_source(database: Any) -> Callable[[], tuple[int, int]] | None:
    """On a store several nodes share, the ingest and quarantine rates of the last minute
    counted in the store, so every node's /metrics shows the cluster's figures."""
    if not getattr(database, "shared_store", False):
        return None

    def rates() -> tuple[int, int]:
        reads = database.reads
        since = reads.last_lsn_at(int((time.time() - 60) * 1_000_000))
        return reads.assertions_after(since), reads.quarantined_between(since, 2**62)

    return rates


def _pending_source(database: Any) -> Callable[[], float] | None:
    """Pending quarantine items, read from the database's index at scrape time (a scrape
    where that fails keeps the value given to ``set_pending``)."""
    return lambda: database.reads.pending_count()


@dataclass(frozen=True, slots=True)
class _ScrapeState:
    ingest: int
    quarantined: int
    per_agent: list[tuple[str, int]]
    pending: float
    breaker_states: Mapping[str, float]


class _OptionalGauges(Collector):
    """Unlabelled gauges that have no sample until they are first set."""

    def __init__(self, docs: Mapping[str, str]) -> None:
        self._docs = dict(docs)
        self._values: dict[str, float] = {}

    def set(self, name: str, value: float) -> None:
        if name not in self._docs:
            raise KeyError(name)
        self._values[name] = float(value)

    def describe(self) -> Iterator[Metric]:
        for name, doc in self._docs.items():
            yield GaugeMetricFamily(name, doc)

    def collect(self) -> Iterator[Metric]:
        values = dict(self._values)
        for name, doc in self._docs.items():
            yield GaugeMetricFamily(name, doc, value=values.get(name))


class _ScrapeCollector(Collector):
    """Gauges computed at scrape time: the per-minute rates over the last 60 seconds,
    pending quarantine items and agents per breaker state."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return self._families(_ScrapeState(0, 0, [], 0.0, {}))

    def collect(self) -> Iterator[Metric]:
        return self._families(self._metrics._scrape_state())

    @staticmethod
    def _families(s: _ScrapeState) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "stemedb_ingest_rate_per_minute",
            "Writes stored (accepted or quarantined) in the last 60 s.",
            value=s.ingest,
        )
        yield GaugeMetricFamily(
            "stemedb_quarantine_pending", "Quarantine items waiting for review.", value=s.pending
        )
        yield GaugeMetricFamily(
            "stemedb_quarantine_rate_per_minute",
            "Writes quarantined in the last 60 s.",
            value=s.quarantined,
        )
        agents = GaugeMetricFamily(
            "stemedb_quarantine_rate_per_agent",
            "Writes quarantined in the last 60 s, by agent (busiest agents, else 'other').",
            labels=["agent_id"],
        )
        for label, n in s.per_agent:
            agents.add_metric([label], n)
        yield agents
        states = GaugeMetricFamily(
            "stemedb_circuit_breaker_state",
            "Agents whose circuit breaker is in each state.",
            labels=["state"],
        )
        for state, count in s.breaker_states.items():
            states.add_metric([state], count)
        yield states


class _SharedGuardsCollector(Collector):
    """Whether the bound database's guards are shared through Redis right now, and how
    often they fell back to in-process ones; no series at all without a Redis."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return iter(())  # present only for some databases: declared at collect time

    def collect(self) -> Iterator[Metric]:
        status = None
        with contextlib.suppress(Exception):  # nothing bound, or guards without Redis
            status = self._metrics._bound.guards.shared_status()
        if status is None:
            return
        shared, fallbacks = status
        yield GaugeMetricFamily(
            "stemedb_guards_shared",
            "1 while rate limits and breakers are shared through Redis, 0 while this node "
            "falls back to its in-process guards.",
            value=1 if shared else 0,
        )
        yield CounterMetricFamily(
            "stemedb_guards_fallbacks",
            "Times this node lost Redis and fell back to its in-process guards.",
            value=fallbacks,
        )


class _DatabaseCollector(Collector):
    """The state of a database, read at scrape time; a value that cannot be read is left
    out of the scrape rather than failing it."""

    def __init__(self, database: Any) -> None:
        self._db = database

    def describe(self) -> Iterator[Metric]:
        return self._families({}, describe=True)

    def collect(self) -> Iterator[Metric]:
        return self._families(self._read(), describe=False)

    def _read(self) -> dict[str, float]:
        db = self._db
        out: dict[str, float] = {}
        readers: list[tuple[str, Callable[[], float]]] = [
            ("last", lambda: db.store.last_lsn),
            ("applied", lambda: db.reads.applied_lsn),
            ("search_lag", lambda: db.reads.search_lag_records),
            ("read_only", lambda: 1 if db.store.read_only_reason else 0),
            ("ready", lambda: 1 if db.readiness()[0] else 0),
            ("free", lambda: shutil.disk_usage(db.data_dir).free),
            ("floor", lambda: db.settings.journal.min_free_bytes),
        ]
        for name, read in readers:
            try:
                out[name] = float(read())
            except Exception:  # closed database, missing attribute, vanished directory
                if name == "ready":
                    out[name] = 0.0
        if "last" in out and "applied" in out:
            out["lag"] = max(0.0, out["last"] - out["applied"])
        return out

    @staticmethod
    def _families(v: Mapping[str, float], *, describe: bool) -> Iterator[Metric]:
        table = (
            ("last", "stemedb_wal_last_lsn", "Last durable journal LSN."),
            ("applied", "stemedb_index_applied_lsn", "Last journal LSN applied to the index."),
            ("lag", "stemedb_index_lag_records", "Journal records not yet in the index."),
            (
                "search_lag",
                "stemedb_search_lag_records",
                "Assertions in the index not yet in its full-text index (search brings it "
                "up before it runs).",
            ),
            (
                "read_only",
                "stemedb_journal_read_only",
                "1 when a failed write or fsync made the journal read-only.",
            ),
            ("ready", "stemedb_ready", "1 when /readyz answers 200."),
            ("free", "stemedb_disk_free_bytes", "Free bytes on the data directory's filesystem."),
            (
                "floor",
                "stemedb_disk_min_free_bytes",
                "Free space below which writes are refused (journal.min_free_bytes).",
            ),
        )
        for key, name, doc in table:
            if describe or key in v:
                yield GaugeMetricFamily(name, doc, value=None if describe else v[key])
