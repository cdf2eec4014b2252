"""Group commit: records per fsync with 1, 8 and 64 concurrent writers.

Writer threads call the Journal directly (real ``os.fsync``, a scratch directory on the
same filesystem as the other data dirs), each appending one record and waiting for it to
be durable, in a loop, for a fixed time. The Journal's batching options are the
server's defaults from Settings.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time

from stemedb import records
from stemedb.journal import Journal
from stemedb.settings import Settings

from .context import Context

WRITERS = (1, 8, 64)


def measure(ctx: Context, writers: int, seconds: float, payload: bytes) -> dict[str, float]:
    directory = ctx.work / f"group-commit-{writers}"
    j = Settings().journal
    counting = threading.Event()
    lock = threading.Lock()
    commits: list[tuple[int, float]] = []

    def stats(n: int, fsync_s: float, nbytes: int) -> None:
        if counting.is_set():
            with lock:
                commits.append((n, fsync_s))

    journal = Journal(directory, segment_bytes=j.segment_bytes, max_batch=j.group_commit_max_batch,
                      max_wait_us=j.group_commit_max_wait_us, on_commit_stats=stats)
    stop = threading.Event()
    go = threading.Barrier(writers + 1)

    def writer() -> None:
        go.wait()
        while not stop.is_set():
            journal.append([payload])

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(writers)]
    try:
        for t in threads:
            t.start()
        go.wait()
        time.sleep(min(0.5, seconds / 4))  # every writer running before counting starts
        counting.set()
        started = time.perf_counter()
        time.sleep(seconds)
        counting.clear()
        elapsed = time.perf_counter() - started
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        journal.close()
        shutil.rmtree(directory, ignore_errors=True)
    n_records = sum(n for n, _ in commits)
    return {
        "records_per_fsync": n_records / max(1, len(commits)),
        "rate": n_records / elapsed,
        "fsync_p50_ms": statistics.median(s for _, s in commits) * 1000 if commits else 0.0,
    }


def run_group_commit(ctx: Context, seconds: float = 3.0) -> None:
    signed = ctx.signer.sign(1)[0]
    payload = records.SignedWrite(records.ASSERT, signed.body, signed.signature,
                                  records.now_us()).encode()
    for n in WRITERS:
        m = measure(ctx, n, seconds, payload)
        ctx.put(f"group_commit.records_per_fsync_{n}", m["records_per_fsync"], "{:.2f}")
        ctx.put(f"group_commit.rate_{n}", m["rate"])
        if n == 1:
            ctx.put("group_commit.fsync_p50_ms", m["fsync_p50_ms"], "{:.3f}")
