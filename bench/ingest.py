"""Ingest figures: single-assertion ingest against its ceiling, batch ingest against
signature verification alone, and sampling profiles of the server under both.

Bodies are signed right before each run (timestamps must be within the server's clock
skew window) and each is sent once: a warm-up run estimates the rate, then enough bodies
for the measured run plus a margin are signed. If a run still exhausts its bodies, the
replays are answered 200 (retry) and are not counted as stored.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
import orjson

from stemedb.signing import decode_signature

from . import loadgen
from .ceiling_app import server_loop
from .context import Context, log
from .experiments import profile
from .loadgen import LoadError, WrkResult
from .servers import (
    CeilingServer,
    NaivePeerServer,
    Process,
    StemeServer,
    cpu_split,
    machine_busy_seconds,
    scrape_group_commit,
    wait_idle,
)
from .signer import Signed

SINGLE_CONNECTIONS = 32
BATCH_CONNECTIONS = 4
BATCH_ITEMS = 1000
BATCH_ATTEMPTS = 3  # measured runs, each with more bodies, until one does not run out
MARGIN = 1.6  # bodies signed per body expected to be sent
MAX_BODIES = 400_000


def _bodies_needed(rate: float, seconds: float, minimum: int, step: int = 1) -> int:
    n = max(minimum, min(MAX_BODIES, int(rate * seconds * MARGIN) + 2 * step))
    return int(math.ceil(n / step) * step)


def _check_single(r: WrkResult, what: str) -> None:
    if r.wrapped:
        log(f"  warning: {what} ran out of bodies ({r.wrapped} restarts); "
            f"{r.c200} replays answered 200 are not counted")
    if r.c202 > 0.01 * r.requests:
        log(f"  warning: {what}: {r.c202} of {r.requests} writes were quarantined (202)")


# -- single ingest -------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    result: WrkResult
    bodies: list[Signed]
    info: dict[str, float]  # server and load generator CPU use, records per fsync


def measured_run(server: Process, request_file: Path, connections: int, seconds: float,
                 mode: str = "status", timeout_s: float = 10.0) -> tuple[WrkResult, dict[str, float]]:
    """One wrk run, plus the CPU (in cores) the server, wrk and everything else on the
    machine used meanwhile and, when the server exports it, the mean group-commit size."""
    gc_before = scrape_group_commit(server.url)
    user_before, sys_before = cpu_split(server.pid)
    busy_before = machine_busy_seconds()
    r = loadgen.run_wrk(server.url, request_file, connections=connections, duration_s=seconds,
                        mode=mode, timeout_s=timeout_s)
    user_after, sys_after = cpu_split(server.pid)
    server_cpu = (user_after - user_before) + (sys_after - sys_before)
    other = machine_busy_seconds() - busy_before - server_cpu - r.loadgen_cpu_s
    server.check_alive()
    info = {"server_cpu_s": round(server_cpu, 3),
            "server_cpu_cores": round(server_cpu / r.duration_s, 2),
            "server_kernel_share": round((sys_after - sys_before) / max(server_cpu, 1e-9), 2),
            "loadgen_cpu_cores": round(r.loadgen_cpu_s / r.duration_s, 2),
            "other_cpu_cores": round(max(0.0, other) / r.duration_s, 2)}
    gc_after = scrape_group_commit(server.url) if gc_before is not None else None
    if gc_before is not None and gc_after is not None and gc_after[1] > gc_before[1]:
        info["records_per_fsync"] = round(
            (gc_after[0] - gc_before[0]) / (gc_after[1] - gc_before[1]), 2)
    return r, info


def cpu_us(info: dict[str, float], count: int) -> float:
    """Server CPU microseconds per operation in a run (all threads, user + system)."""
    return info["server_cpu_s"] * 1e6 / max(1, count)


def measure_single(ctx: Context, server: StemeServer, name: str) -> Measured:
    """Warm-up, then a measured run of single signed writes at 32 connections."""
    warm = ctx.signer.sign(_bodies_needed(3000, ctx.warmup_s, 4000))
    f = ctx.work / f"{name}-warm.txt"
    loadgen.write_posts(f, "/v1/assert", warm)
    w = loadgen.run_wrk(server.url, f, connections=SINGLE_CONNECTIONS, duration_s=ctx.warmup_s)
    rate = w.new_writes_rate
    wait_idle(server.pid)
    bodies = ctx.signer.sign(_bodies_needed(rate, ctx.duration_s, 5000))
    f = ctx.work / f"{name}.txt"
    loadgen.write_posts(f, "/v1/assert", bodies)
    r, info = measured_run(server, f, SINGLE_CONNECTIONS, ctx.duration_s)
    _check_single(r, name)
    log(f"  {name}: {r.new_writes_rate:,.0f} writes/s; " + ", ".join(
        f"{k} {v}" for k, v in info.items()))
    wait_idle(server.pid)
    return Measured(r, bodies, info)


def run_single(ctx: Context, server: StemeServer) -> list[Signed]:
    m = measure_single(ctx, server, "ingest-single")
    r = m.result
    ctx.put("ingest_single.rate", r.new_writes_rate)
    ctx.put("ingest_single.p50_ms", r.lat_p50_ms, "{:.2f}")
    ctx.put("ingest_single.p99_ms", r.lat_p99_ms, "{:.2f}")
    ctx.put("ingest_single.server_cpu_us", cpu_us(m.info, r.c201 + r.c202))
    if "records_per_fsync" in m.info:
        ctx.put("ingest_single.records_per_fsync", m.info["records_per_fsync"], "{:.2f}")
    ctx.notes["ingest_single"] = {"requests": r.requests, "stored_201": r.c201,
                                  "quarantined_202": r.c202, "bodies_signed": len(m.bodies),
                                  **m.info}
    return m.bodies


def run_ceiling(ctx: Context, bodies: list[Signed]) -> None:
    """The same bodies and load generator against the trivial handler on the same stack."""
    f = ctx.work / "ceiling.txt"
    loadgen.write_posts(f, "/ceiling", bodies)
    with CeilingServer(ctx.work) as c:
        c.start()
        loadgen.run_wrk(c.url, f, connections=SINGLE_CONNECTIONS, duration_s=ctx.warmup_s)
        wait_idle(c.pid)
        r, info = measured_run(c, f, SINGLE_CONNECTIONS, ctx.duration_s)
    ctx.notes["ingest_single_ceiling"] = {"requests": r.requests, "loop": server_loop(), **info}
    log("  ceiling: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    ctx.put("ingest_single.ceiling_rate", r.c201 / r.duration_s)
    ctx.put("ingest_single.ceiling_p99_ms", r.lat_p99_ms, "{:.2f}")
    ctx.put("ingest_single.ceiling_cpu_us", cpu_us(info, r.c201))
    if "ingest_single.rate" in ctx.results:
        ctx.put("ingest_single.ratio",
                ctx.results["ingest_single.rate"] / ctx.results["ingest_single.ceiling_rate"],
                "{:.3f}")
        # Both servers are CPU-bound on one core (the GIL), so on an idle machine the rate
        # ratio is about the inverse CPU-per-request ratio; this one holds on a busy one.
        ctx.put("ingest_single.cpu_ratio",
                ctx.results["ingest_single.ceiling_cpu_us"]
                / ctx.results["ingest_single.server_cpu_us"], "{:.3f}")


NAIVE_RATE_BOUND = 5000  # writes/s the naive peer is signed for (one fsync each: fewer)


def run_naive(ctx: Context) -> None:
    """Single writes like StemeDB's, same load generator, against the naive peer
    (``bench/naive_peer.py``): what StemeDB's are worth against the service a user would
    write. Its own fresh bodies, enough for it never to run out."""
    warm = ctx.signer.sign(_bodies_needed(NAIVE_RATE_BOUND, ctx.warmup_s, 4000))
    bodies = ctx.signer.sign(_bodies_needed(NAIVE_RATE_BOUND, ctx.duration_s, 5000))
    fw, f = ctx.work / "naive-warm.txt", ctx.work / "naive.txt"
    loadgen.write_posts(fw, "/v1/assert", warm)
    loadgen.write_posts(f, "/v1/assert", bodies)
    with NaivePeerServer(ctx.work) as n:
        n.start()
        loadgen.run_wrk(n.url, fw, connections=SINGLE_CONNECTIONS, duration_s=ctx.warmup_s)
        wait_idle(n.pid)
        r, info = measured_run(n, f, SINGLE_CONNECTIONS, ctx.duration_s)
    _check_single(r, "naive peer")
    ctx.notes["ingest_single_naive"] = {"requests": r.requests, **info}
    log("  naive peer: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    ctx.put("ingest_single.naive_rate", r.new_writes_rate)
    ctx.put("ingest_single.naive_p99_ms", r.lat_p99_ms, "{:.2f}")
    ctx.put("ingest_single.naive_cpu_us", cpu_us(info, r.c201))
    if "ingest_single.rate" in ctx.results:
        ctx.put("ingest_single.naive_ratio",
                ctx.results["ingest_single.rate"] / ctx.results["ingest_single.naive_rate"],
                "{:.3f}")


def run_profile(ctx: Context, server: StemeServer, seconds: float = 8.0) -> list[Path]:
    """Two profiled single-ingest runs: every non-idle thread, then only the GIL holder."""
    if profile.py_spy() is None:
        log("  py-spy not installed; skipping the profile")
        return []
    rate = ctx.results.get("ingest_single.rate", 2000.0)
    written = []
    for gil in (False, True):
        kind = "gil" if gil else "threads"
        bodies = ctx.signer.sign(_bodies_needed(rate, seconds + 2, 5000))
        f = ctx.work / f"profile-{kind}.txt"
        loadgen.write_posts(f, "/v1/assert", bodies)
        out = ctx.results_dir / f"profile-ingest-{kind}.folded"
        out.unlink(missing_ok=True)
        rec = profile.Recording(server.pid, seconds, out, gil_only=gil)
        time.sleep(0.5)  # let py-spy attach before the load starts
        r = loadgen.run_wrk(server.url, f, connections=SINGLE_CONNECTIONS,
                            duration_s=seconds + 1)
        if rec.wait():
            written.append(out)
            log(f"  profile ({kind}) at {r.new_writes_rate:,.0f} writes/s -> {out.name}")
        wait_idle(server.pid)
    return written


def run_batch_profile(ctx: Context, server: StemeServer, seconds: float = 8.0) -> list[Path]:
    """A profiled batch-ingest run: every non-idle thread (the verify pool included)."""
    if profile.py_spy() is None:
        return []
    rate = ctx.results.get("ingest_batch.rate", 3000.0)
    bodies = ctx.signer.sign(_bodies_needed(rate, seconds + 2, 10 * BATCH_ITEMS, BATCH_ITEMS))
    f = ctx.work / "profile-batch.txt"
    loadgen.write_batches(f, "/v1/assert/batch", bodies, BATCH_ITEMS)
    out = ctx.results_dir / "profile-batch-threads.folded"
    out.unlink(missing_ok=True)
    rec = profile.Recording(server.pid, seconds, out)
    time.sleep(0.5)
    r = loadgen.run_wrk(server.url, f, connections=BATCH_CONNECTIONS, duration_s=seconds + 1,
                        mode="items", timeout_s=30, check=False)
    if r.errors_status or r.cother:
        loadgen.check_errors(r, "batch profile run")
    wait_idle(server.pid)
    if rec.wait():
        log(f"  profile (batch, threads) at {r.items / r.duration_s:,.0f} items/s "
            f"-> {out.name}")
        return [out]
    return []


# -- batch ingest --------------------------------------------------------------------


def run_batch(ctx: Context, server: StemeServer) -> list[Signed]:
    warm = ctx.signer.sign(8 * BATCH_ITEMS)
    f = ctx.work / "batch-warm.txt"
    loadgen.write_batches(f, "/v1/assert/batch", warm, BATCH_ITEMS)
    # A warm-up request takes seconds on a slow machine: allow a run with none completed.
    w = loadgen.run_wrk(server.url, f, connections=BATCH_CONNECTIONS,
                        duration_s=max(ctx.warmup_s + 1, 4.0), mode="items", timeout_s=30,
                        check=False)
    if w.errors_status or w.cother:
        loadgen.check_errors(w, "batch warm-up")
    wait_idle(server.pid)
    rate = max(w.items / w.duration_s, 1000.0)
    f = ctx.work / "batch.txt"
    for attempt in range(BATCH_ATTEMPTS):
        bodies = ctx.signer.sign(_bodies_needed(rate, ctx.duration_s, 20 * BATCH_ITEMS,
                                                BATCH_ITEMS))
        loadgen.write_batches(f, "/v1/assert/batch", bodies, BATCH_ITEMS)
        r, info = measured_run(server, f, BATCH_CONNECTIONS, ctx.duration_s, mode="items",
                               timeout_s=30)
        if not r.wrapped or attempt == BATCH_ATTEMPTS - 1:
            break
        # Every body went out before the run ended: the rest of the run replayed them
        # (answered as retries, storing nothing), so items/s would be bodies/duration.
        # Measure again with enough bodies for the rate the requests went at.
        rate = max(2 * rate, r.requests * BATCH_ITEMS / r.duration_s)
        log(f"  batch run ran out of bodies; again with bodies for {rate:,.0f} items/s")
        wait_idle(server.pid)
    log("  batch: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if r.wrapped:
        log(f"  warning: batch run ran out of bodies ({r.wrapped} restarts)")
    else:
        missing = r.requests * BATCH_ITEMS - r.items
        if missing > loadgen.ERROR_TOLERANCE * r.requests * BATCH_ITEMS:
            raise LoadError(f"batch ingest: {missing} of {r.requests * BATCH_ITEMS} items "
                            "were not stored (item errors inside 200 answers)")
    ctx.put("ingest_batch.rate", r.items / r.duration_s)
    ctx.put("ingest_batch.request_p50_ms", r.lat_p50_ms, "{:.1f}")
    ctx.put("ingest_batch.server_cpu_us", cpu_us(info, r.items))
    ctx.notes["ingest_batch"] = {"requests": r.requests, "items_stored": r.items,
                                 "connections": BATCH_CONNECTIONS,
                                 "items_per_request": BATCH_ITEMS, **info}
    wait_idle(server.pid)
    return bodies


def verify_only_rate(bodies: list[Signed], seconds: float = 3.0,
                     threads: int | None = None) -> tuple[float, dict[str, float]]:
    """Ed25519 verifications per second with PyNaCl alone, one thread per core, over the
    given bodies (keys built and signatures decoded beforehand), and the CPU (in cores)
    this process and everything else used meanwhile."""
    threads = threads or os.cpu_count() or 2
    keys: dict[str, nacl.signing.VerifyKey] = {}
    items = []
    for s in bodies:
        agent = orjson.loads(s.body)["agent_id"]
        key = keys.get(agent)
        if key is None:
            key = keys[agent] = nacl.signing.VerifyKey(bytes.fromhex(agent))
        items.append((key, s.body, decode_signature(s.signature)))
    chunk = 256
    lock = threading.Lock()
    position = 0
    done = [0] * threads

    def worker(w: int, deadline: float) -> None:
        nonlocal position
        while time.perf_counter() < deadline:
            with lock:
                start = position
                position = (position + chunk) % len(items)
            part = items[start:start + chunk]
            for key, body, sig in part:
                key.verify(body, sig)
            done[w] += len(part)

    busy, own, started = machine_busy_seconds(), time.process_time(), time.perf_counter()
    pool = [threading.Thread(target=worker, args=(w, started + seconds))
            for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    own = time.process_time() - own
    other = max(0.0, machine_busy_seconds() - busy - own)
    return sum(done) / elapsed, {"threads": threads, "cpu_cores": round(own / elapsed, 2),
                                 "other_cpu_cores": round(other / elapsed, 2)}


def run_verify_only(ctx: Context, bodies: list[Signed]) -> None:
    rate, info = verify_only_rate(bodies[:50_000])
    ctx.notes["ingest_batch_verify_only"] = info
    log("  verify only: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    ctx.put("ingest_batch.verify_only_rate", rate)
    if "ingest_batch.rate" in ctx.results:
        ctx.put("ingest_batch.ratio", ctx.results["ingest_batch.rate"] / rate, "{:.3f}")
