"""Point reads: ``GET /v1/assertions/{id}`` of stored ids at 32 connections.

``read.p99_ms`` is measured by ``wrk`` at 32 connections, a closed loop that keeps the
server saturated: its latency is mostly the queue the 32 connections keep full (mean ≈
32 / ``read.rate``). ``read.open_p99_ms`` is the supplementary figure at a fixed offered
load (``read.open_rate`` requests per second, open loop, bench/openloop.py).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import orjson

from . import loadgen, openloop
from .context import Context, log
from .experiments import profile
from .ingest import cpu_us, measured_run
from .loadgen import LoadError
from .servers import StemeServer, wait_idle

CONNECTIONS = 32
PRELOAD = 10_000
OPEN_RATE = 1000.0  # requests per second offered by the open-loop figure


def preload(ctx: Context, server: StemeServer, n: int = PRELOAD) -> list[str]:
    """Stores n known assertions through the batch endpoint; returns their ids."""
    ids: list[str] = []
    bodies = ctx.signer.sign(n)
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        for i in range(0, n, 1000):
            items = [{"body": s.body.decode(), "signature": s.signature}
                     for s in bodies[i:i + 1000]]
            resp = client.post("/v1/assert/batch", content=orjson.dumps({"items": items}),
                               headers={"Content-Type": "application/json"})
            if resp.status_code != 200:
                raise LoadError(f"preload batch answered {resp.status_code}: {resp.text[:300]}")
            for res in resp.json()["results"]:
                if res.get("status") in ("accepted", "quarantined") and "id" in res:
                    ids.append(res["id"])
    if len(ids) < 0.99 * n:
        raise LoadError(f"preload stored only {len(ids)} of {n} assertions")
    return ids


def run_reads(ctx: Context, server: StemeServer) -> list[str]:
    ids = preload(ctx, server)
    wait_idle(server.pid)
    random.Random(7).shuffle(ids)
    f = ctx.work / "reads.txt"
    loadgen.write_gets(f, (f"/v1/assertions/{i}" for i in ids))
    loadgen.run_wrk(server.url, f, connections=CONNECTIONS, duration_s=ctx.warmup_s, mode="none")
    wait_idle(server.pid)
    r, info = measured_run(server, f, CONNECTIONS, ctx.duration_s, mode="none")
    ctx.notes["read"] = {"requests": r.requests, "ids": len(ids), **info}
    log("  reads: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    ctx.put("read.p50_ms", r.lat_p50_ms, "{:.2f}")
    ctx.put("read.p99_ms", r.lat_p99_ms, "{:.2f}")
    ctx.put("read.rate", r.rate)
    ctx.put("read.server_cpu_us", cpu_us(info, r.requests))
    wait_idle(server.pid)
    # The same at one connection: latency without queueing behind 31 other requests.
    r1 = loadgen.run_wrk(server.url, f, connections=1, duration_s=min(5.0, ctx.duration_s),
                         mode="none")
    ctx.put("read.one_connection_p99_ms", r1.lat_p99_ms, "{:.2f}")
    wait_idle(server.pid)
    # The same reads at a fixed offered load, well below saturation.
    paths = [f"/v1/assertions/{i}" for i in ids]
    o = openloop.run(server.url, paths, rate=OPEN_RATE, seconds=ctx.duration_s)
    ctx.notes["read"]["open_loop"] = {"requests": o.requests, "max_ms": o.max_ms,
                                      "client_late_ms": o.late_ms}
    ctx.put("read.open_rate", o.rate)
    ctx.put("read.open_p50_ms", o.p50_ms, "{:.2f}")
    ctx.put("read.open_p99_ms", o.p99_ms, "{:.2f}")
    wait_idle(server.pid)
    return ids


def run_read_profile(ctx: Context, server: StemeServer, seconds: float = 6.0) -> list[Path]:
    if profile.py_spy() is None:
        return []
    f = ctx.work / "reads.txt"
    out = ctx.results_dir / "profile-read-gil.folded"
    out.unlink(missing_ok=True)
    rec = profile.Recording(server.pid, seconds, out, gil_only=True)
    time.sleep(0.5)
    loadgen.run_wrk(server.url, f, connections=CONNECTIONS, duration_s=seconds + 1, mode="none")
    wait_idle(server.pid)
    if rec.wait():
        log(f"  profile (reads, gil) -> {out.name}")
        return [out]
    return []
