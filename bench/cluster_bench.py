"""Cluster mode: ``stemedb serve`` on PostgreSQL, alone and two nodes behind nginx, against
the embedded store in the same run.

Everything is started here from the installed binaries (``bench/cluster_services.py``):
one PostgreSQL (fresh ``initdb``, ``fsync`` and ``synchronous_commit`` on, defaults
otherwise), one Redis, nginx, and the nodes, as the other figures' servers are run:
quiet logs, no dashboard, rate limits raised out of reach (their checks stay in the
path). The load is the one ``ingest_single.rate`` uses: ``wrk`` replaying signed single
writes, each body sent once, signed right before its run; every measured run must get
2xx answers (``loadgen`` fails it loudly otherwise).

CPU is read from ``/proc`` as every other figure does, and for PostgreSQL it is the whole
cluster of processes: the postmaster, every backend, the WAL writer, checkpointer and
autovacuum, the exited ones included (they are in the postmaster's reaped-children
time). Per stored write means: that CPU ÷ the writes answered 201/202 in the run.

``run()`` returns

- ``cluster.ingest_single.rate`` (writes/s), ``.p50_ms``, ``.p99_ms``: one node on
  PostgreSQL (in-process guards, no Redis: this is the storage backend against the
  embedded one), wrk at 32 connections; the median of ``PAIRS`` runs of ``SECONDS``.
- ``cluster.embedded_rate``: the same load on an embedded node (``stemedb serve`` on a
  data directory), in runs alternating with the PostgreSQL node's (E P, P E, ...), both
  servers up side by side, so each pair sees the same machine.
- ``cluster.server_cpu_us``: CPU per stored write on the PostgreSQL side, node plus
  PostgreSQL; split into ``cluster.node_cpu_us`` and ``cluster.postgres_cpu_us``.
  ``cluster.embedded_cpu_us``: the embedded node's CPU per stored write.
- ``cluster.cpu_per_record_ratio``: median over the pairs of server_cpu_us ÷
  embedded_cpu_us. Target ≤ 1.3.
- ``cluster.ingest_single.records_per_txn``: records per PostgreSQL transaction in those
  runs, and ``cluster.records_per_txn_64`` with 64 connections (``RUN_64_SECONDS``), both
  from the node's ``stemedb_wal_group_commit_size`` histogram (the PostgreSQL store
  observes it once per COMMIT), sum ÷ count over the run. Target ≥ 8 at 64;
  ``cluster.rate_64``: writes/s in that run.
- ``cluster.two_nodes_rate`` (writes/s), ``.two_nodes_p99_ms``: two nodes on one fresh
  PostgreSQL database and one Redis (shared guards), behind nginx (plain HTTP, round
  robin, kept-alive upstream connections), wrk at 32 connections to nginx for
  ``TWO_NODES_SECONDS``. On 2 cores the two nodes, PostgreSQL, Redis, nginx and wrk share
  the machine, so no scaling is expected; ``cluster.two_nodes_cpu_us_per_record`` is the
  CPU of all of them but wrk per stored write, ``cluster.two_nodes_node_cpu_us`` the two
  nodes' own share of it.
- ``cluster.other_cpu_cores``: mean CPU (cores) used during the measured runs by
  everything else on the machine (busy time minus the servers above and wrk). Well above
  0: the rates are low by about that share; the CPU-per-write figures barely move.

Run alone: ``python -m bench.cluster_bench``.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from . import loadgen
from .cluster_services import Backends, Nginx, backends, node
from .context import Context, log
from .ingest import SINGLE_CONNECTIONS, _bodies_needed
from .servers import (
    Process,
    StemeServer,
    machine_busy_seconds,
    scrape_group_commit,
    tree_cpu_seconds,
    wait_idle,
)
from .signer import Signer

PAIRS = 3  # alternating embedded / PostgreSQL runs
SECONDS = 5.0
WARMUP = 2.0
WRITERS_64 = 64
RUN_64_SECONDS = 5.0
TWO_NODES_SECONDS = 10.0

TARGETS = {
    "cluster.cpu_per_record_ratio": ("<=", 1.3),
    "cluster.records_per_txn_64": (">=", 8),
}


@dataclass
class Side:
    """What one measured run loads (``url``) and whose CPU it counts."""

    name: str
    url: str
    nodes: list[Process]  # their /metrics give the group-commit sizes
    cpu: dict[str, Callable[[], float]]  # part -> CPU seconds so far
    quiet: list[tuple[int, Callable[[int], float]]] = field(default_factory=list)
    rate_hint: float = 1000.0  # the fastest rate seen: sizes the next run's bodies

    def settle(self) -> None:
        """Waits until the servers are idle: requests cut off at the end of a run must
        not be processed during the next one."""
        for pid, cpu in self.quiet:
            wait_idle(pid, max_s=15.0, cpu=cpu)


@dataclass(frozen=True)
class Run:
    rate: float
    stored: int
    cpu_s: dict[str, float]
    other_cores: float
    p50_ms: float
    p99_ms: float
    records: float  # group-committed records and commits, summed over the side's nodes
    commits: float

    def cpu_us(self, *parts: str) -> float:
        """CPU µs per stored write of some parts (all of them when none are named)."""
        chosen = parts or tuple(self.cpu_s)
        return sum(self.cpu_s[p] for p in chosen) * 1e6 / max(1, self.stored)

    @property
    def per_txn(self) -> float:
        return self.records / self.commits if self.commits else 0.0


def _group_commit(side: Side) -> tuple[float, float]:
    records = commits = 0.0
    for n in side.nodes:
        got = scrape_group_commit(n.url)
        if got is not None:
            records, commits = records + got[0], commits + got[1]
    return records, commits


def measure(ctx: Context, side: Side, label: str, seconds: float,
            connections: int = SINGLE_CONNECTIONS) -> Run:
    """One wrk run of fresh signed single writes against ``side``."""
    f = ctx.work / f"{label}.txt"
    loadgen.write_posts(f, "/v1/assert",
                        ctx.signer.sign(_bodies_needed(2 * side.rate_hint, seconds, 3000)))
    gc_before = _group_commit(side)
    before = {part: read() for part, read in side.cpu.items()}
    busy = machine_busy_seconds()
    r = loadgen.run_wrk(side.url, f, connections=connections, duration_s=seconds)
    busy = machine_busy_seconds() - busy
    cpu = {part: read() - before[part] for part, read in side.cpu.items()}
    gc_after = _group_commit(side)
    for n in side.nodes:
        n.check_alive()
    if r.wrapped:
        raise loadgen.LoadError(f"{label} ran out of bodies")
    other = max(0.0, busy - sum(cpu.values()) - r.loadgen_cpu_s) / r.duration_s
    run = Run(rate=r.new_writes_rate, stored=r.c201 + r.c202, cpu_s=cpu, other_cores=other,
              p50_ms=r.lat_p50_ms, p99_ms=r.lat_p99_ms, records=gc_after[0] - gc_before[0],
              commits=gc_after[1] - gc_before[1])
    side.rate_hint = max(side.rate_hint, run.rate)
    log(f"  {label}: {run.rate:,.0f} writes/s, {run.cpu_us():,.0f} µs/write ("
        + ", ".join(f"{p} {s / r.duration_s:.2f} cores" for p, s in cpu.items())
        + f"), wrk {r.loadgen_cpu_s / r.duration_s:.2f}, other processes {other:.2f} cores"
        + (f", {run.per_txn:.1f} records per commit" if run.commits else ""))
    side.settle()
    return run


def warm(ctx: Context, side: Side) -> None:
    measure(ctx, side, f"{side.name}-warm", WARMUP)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def single_node(ctx: Context, b: Backends, others: list[float]) -> dict[str, float]:
    """The embedded node and one PostgreSQL node side by side, alternating runs; then 64
    writers on the PostgreSQL node."""
    url = b.postgres.create_database("bench_single")
    postmaster = b.postgres.proc.pid if b.postgres.proc else 0
    with StemeServer(ctx.work / "embedded") as emb, node(ctx.work / "pg-node", url) as pg:
        emb.start()
        pg.start()
        sides = {
            "embedded": Side("embedded", emb.url, [emb],
                             {"node": lambda: tree_cpu_seconds(emb.pid)},
                             [(emb.pid, tree_cpu_seconds)]),
            "postgres": Side("postgres", pg.url, [pg],
                             {"node": lambda: tree_cpu_seconds(pg.pid),
                              "postgres": b.postgres_cpu},
                             [(pg.pid, tree_cpu_seconds), (postmaster, tree_cpu_seconds)]),
        }
        for side in sides.values():
            warm(ctx, side)
        runs: dict[str, list[Run]] = {"embedded": [], "postgres": []}
        for i in range(PAIRS):
            order = ["embedded", "postgres"] if i % 2 == 0 else ["postgres", "embedded"]
            for name in order:
                runs[name].append(measure(ctx, sides[name], f"{name}-{i}", SECONDS))
        r64 = measure(ctx, sides["postgres"], "postgres-64", RUN_64_SECONDS, WRITERS_64)
    pg_runs, emb_runs = runs["postgres"], runs["embedded"]
    others += [r.other_cores for r in (*pg_runs, *emb_runs, r64)]
    records = sum(r.records for r in pg_runs)
    commits = sum(r.commits for r in pg_runs)
    return {
        "cluster.ingest_single.rate": _median([r.rate for r in pg_runs]),
        "cluster.ingest_single.p50_ms": _median([r.p50_ms for r in pg_runs]),
        "cluster.ingest_single.p99_ms": _median([r.p99_ms for r in pg_runs]),
        "cluster.ingest_single.records_per_txn": round(records / commits, 2) if commits else 0,
        "cluster.embedded_rate": _median([r.rate for r in emb_runs]),
        "cluster.server_cpu_us": _median([r.cpu_us() for r in pg_runs]),
        "cluster.node_cpu_us": _median([r.cpu_us("node") for r in pg_runs]),
        "cluster.postgres_cpu_us": _median([r.cpu_us("postgres") for r in pg_runs]),
        "cluster.embedded_cpu_us": _median([r.cpu_us() for r in emb_runs]),
        "cluster.cpu_per_record_ratio": _median(
            [p.cpu_us() / e.cpu_us() for p, e in zip(pg_runs, emb_runs, strict=True)]),
        "cluster.records_per_txn_64": round(r64.per_txn, 2),
        "cluster.rate_64": round(r64.rate, 1),
    }


def _guard_fallbacks(nodes: list[Process]) -> float:
    total = 0.0
    for n in nodes:
        for line in httpx.get(n.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith("stemedb_guards_fallbacks"):
                total += float(line.split()[-1])
    return total


def two_nodes(ctx: Context, b: Backends, others: list[float]) -> dict[str, float]:
    """Two PostgreSQL nodes with shared guards in Redis, behind nginx."""
    url = b.postgres.create_database("bench_two")
    postmaster = b.postgres.proc.pid if b.postgres.proc else 0
    redis_pid = b.redis.proc.pid if b.redis.proc else 0
    with node(ctx.work / "node-a", url, b.redis.url) as a, \
            node(ctx.work / "node-b", url, b.redis.url) as bn:
        # Started one after the other: both would create the schema at once, and one
        # waits on the other's advisory lock anyway.
        a.start()
        bn.start()
        with Nginx(ctx.work / "nginx", [a.port, bn.port]) as lb:
            lb.start(timeout=15)
            side = Side("two-nodes", lb.url, [a, bn],
                        {"node_a": lambda: tree_cpu_seconds(a.pid),
                         "node_b": lambda: tree_cpu_seconds(bn.pid),
                         "postgres": b.postgres_cpu, "redis": b.redis_cpu,
                         "nginx": lambda: tree_cpu_seconds(lb.pid)},
                        [(a.pid, tree_cpu_seconds), (bn.pid, tree_cpu_seconds),
                         (postmaster, tree_cpu_seconds), (redis_pid, tree_cpu_seconds)])
            warm(ctx, side)
            r = measure(ctx, side, "two-nodes", TWO_NODES_SECONDS)
            fallbacks = _guard_fallbacks([a, bn])
    if fallbacks:
        log(f"  warning: the nodes fell back to in-process guards {fallbacks:.0f} times "
            "(Redis too slow or gone): the two-node figures are not all on shared guards")
    others.append(r.other_cores)
    return {
        "cluster.two_nodes_rate": round(r.rate, 1),
        "cluster.two_nodes_p99_ms": round(r.p99_ms, 2),
        "cluster.two_nodes_cpu_us_per_record": round(r.cpu_us(), 1),
        "cluster.two_nodes_node_cpu_us": round(r.cpu_us("node_a", "node_b"), 1),
        "cluster.two_nodes_records_per_txn": round(r.per_txn, 2),
    }


def run() -> dict[str, float]:
    signer = Signer()
    others: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="stemedb-bench-cluster-") as d, \
                backends() as b:
            ctx = Context(work=Path(d), results_dir=Path(d), signer=signer,
                          duration_s=SECONDS, warmup_s=WARMUP, profile=False)
            out = single_node(ctx, b, others)
            out.update(two_nodes(ctx, b, others))
    finally:
        signer.close()
    out["cluster.other_cpu_cores"] = round(statistics.mean(others), 2)
    return out


if __name__ == "__main__":
    print(run())
