"""Scale: single-ingest rate with 5M assertions stored, divided by the rate on an empty
store (``--scale`` only).

The full store is filled by appending valid signed records straight to the journal
(bench.fill); the server then builds its index from the journal at start (catch-up).
Both rates are measured the same way as ``ingest_single.rate``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .context import Context, log
from .fill import fill
from .ingest import measure_single
from .servers import StemeServer

RECORDS = 5_000_000


def label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def run_scale(ctx: Context, records: int = RECORDS) -> None:
    tag = label(records)
    empty = ctx.work / "scale-empty"
    with StemeServer(empty) as server:
        server.start()
        r_empty = measure_single(ctx, server, "scale-empty").result
    shutil.rmtree(empty, ignore_errors=True)
    ctx.put("scale.rate_empty", r_empty.new_writes_rate)

    full = ctx.work / f"scale-{tag}"
    full.mkdir(parents=True)
    log(f"  filling the journal with {records:,} signed assertions")
    rate = fill(full, ctx.signer, records,
                progress=lambda n, s: log(f"  ... {n:,} records in {s:.0f} s"))
    ctx.put(f"scale.fill_rate_{tag}", rate)
    started = time.perf_counter()
    with StemeServer(full) as server:
        server.start(timeout=4 * 3600)  # the index catches up before the server listens
        catch_up = time.perf_counter() - started
        ctx.put(f"scale.catchup_rate_{tag}", records / catch_up)
        r_full = measure_single(ctx, server, f"scale-{tag}").result
    ctx.put(f"scale.rate_{tag}", r_full.new_writes_rate)
    ctx.put(f"scale.ratio_{tag}", r_full.new_writes_rate / r_empty.new_writes_rate, "{:.3f}")
    ctx.notes["scale"] = {"records": records, "catch_up_seconds": round(catch_up, 1),
                          "data_dir_bytes": _du(full)}
    shutil.rmtree(full, ignore_errors=True)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
