"""Reindex: records per second rebuilding the SQLite index from the journal.

Runs on the data directory the HTTP figures filled (server stopped), topped up with
signed records written straight to the journal when it holds fewer than MIN_RECORDS.
A child process times ``stemedb.ops.reindex.reindex`` - what ``stemedb reindex`` runs -
without the progress bar; a second child is profiled (the whole rebuild, up to 30 s).

``index.bytes_per_assertion`` is the rebuilt index's size on disk (the file and its WAL)
over the assertions in it: what each stored write costs in the derived index.

Child: ``python -m bench.reindex DATA_DIR`` prints ``{"records": n, "seconds": s,
"index_bytes": b, "assertions": a}``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from . import fill
from .context import Context, log
from .experiments import profile
from .servers import ROOT

MIN_RECORDS = 150_000
PROFILE_MAX_S = 30


def _child(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench.reindex", str(data_dir)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_reindex(ctx: Context, data_dir: Path) -> list[Path]:
    have = fill.journal_records(data_dir)
    if have < MIN_RECORDS:
        log(f"  journal holds {have:,} records; adding {MIN_RECORDS - have:,} signed records")
        fill.fill(data_dir, ctx.signer, MIN_RECORDS - have)
    child = _child(data_dir)
    out, err = child.communicate(timeout=3600)
    if child.returncode != 0:
        raise RuntimeError(f"reindex failed ({child.returncode}):\n{err[-2000:]}")
    d = json.loads(out.strip().splitlines()[-1])
    ctx.notes["reindex"] = {"records": d["records"], "seconds": round(d["seconds"], 2)}
    ctx.put("reindex.rate", d["records"] / d["seconds"])
    if d.get("assertions"):
        ctx.notes["reindex"].update(index_bytes=d["index_bytes"], assertions=d["assertions"])
        ctx.put("index.bytes_per_assertion", d["index_bytes"] / d["assertions"])
    if not ctx.profile or profile.py_spy() is None:
        return []
    path = ctx.results_dir / "profile-reindex.folded"
    path.unlink(missing_ok=True)
    child = _child(data_dir)
    try:
        time.sleep(0.5)  # past interpreter start-up
        # The whole rebuild (py-spy stops when the child exits), at most PROFILE_MAX_S.
        seconds = min(PROFILE_MAX_S, d["seconds"] + 2)
        rec = profile.Recording(child.pid, seconds, path)
        ok = rec.wait(timeout=seconds + 60)
    finally:
        if child.poll() is None:
            child.terminate()
        child.communicate(timeout=60)
    return [path] if ok else []


def index_size(data_dir: Path) -> tuple[int, int]:
    """(bytes of the index file and its WAL, assertions in it)."""
    from stemedb.datadir import index_files, index_path

    size = sum(p.stat().st_size for p in index_files(data_dir) if not p.name.endswith("-shm"))
    conn = sqlite3.connect(f"file:{index_path(data_dir)}?mode=ro", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM assertions").fetchone()
    finally:
        conn.close()
    return size, int(count)


def main() -> None:
    from stemedb.ops.reindex import reindex

    data_dir = Path(sys.argv[1])
    started = time.perf_counter()
    n, _digest = reindex(data_dir)
    seconds = time.perf_counter() - started
    size, count = index_size(data_dir)
    print(json.dumps({"records": n, "seconds": seconds, "index_bytes": size,
                      "assertions": count}), flush=True)


if __name__ == "__main__":
    main()
