"""Reindex: records per second rebuilding the SQLite index from the journal.

Runs on the data directory the HTTP figures filled (server stopped), topped up with
signed records written straight to the journal when it holds fewer than MIN_RECORDS.
Times ``stemedb.ops.reindex.reindex`` - what ``stemedb reindex`` runs - without the
progress bar.
"""

from __future__ import annotations

import time
from pathlib import Path

from stemedb.ops.reindex import reindex

from . import fill
from .context import Context, log

MIN_RECORDS = 150_000


def run_reindex(ctx: Context, data_dir: Path) -> None:
    have = fill.journal_records(data_dir)
    if have < MIN_RECORDS:
        log(f"  journal holds {have:,} records; adding {MIN_RECORDS - have:,} signed records")
        fill.fill(data_dir, ctx.signer, MIN_RECORDS - have)
    started = time.perf_counter()
    n, _digest = reindex(data_dir)
    elapsed = time.perf_counter() - started
    ctx.notes["reindex"] = {"records": n, "seconds": round(elapsed, 2)}
    ctx.put("reindex.rate", n / elapsed)
