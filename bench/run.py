"""Runs the benchmarks and writes bench/results/latest.json and latest.md.

    python -m bench.run                      # everything but scale (a few minutes)
    python -m bench.run --scale              # plus the 5M-assertion scale figure (long)
    python -m bench.run --only ingest,read   # some groups; other keys keep old values

Groups: guards (bench/guards_bench.py, when present), group_commit, ingest (single +
ceiling + profile), batch (batch + verify-only), read, reindex, scale. Exits non-zero, leaving the previous results in place, when a
server answered errors or a step failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import group_commit, ingest, loadgen, profile, reads, reindex, report, scale
from .context import Context, log
from .servers import ROOT, StemeServer
from .signer import Signer

GROUPS = ("guards", "group_commit", "ingest", "batch", "read", "reindex", "scale")
DEFAULT_GROUPS = GROUPS[:-1]
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = ROOT / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", action="store_true", help="also run the scale figure")
    p.add_argument("--scale-records", type=int, default=scale.RECORDS,
                   help="assertions stored for the scale figure (default 5,000,000)")
    p.add_argument("--only", default="", help=f"comma-separated groups of {', '.join(GROUPS)}")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds per warm-up run")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="parent of the scratch directory (default: the system temp dir)")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()] or list(DEFAULT_GROUPS)
    if args.scale and "scale" not in groups:
        groups.append("scale")
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        p.error(f"unknown groups: {', '.join(unknown)}")
    args.groups = groups
    return args


def _git(*argv: str) -> str:
    try:
        out = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0.0
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1),
            "kernel": platform.release()}


def run_groups(ctx: Context, groups: list[str], scale_records: int) -> list[tuple[str, Path]]:
    profiles: list[tuple[str, Path]] = []
    if "guards" in groups:
        with ctx.phase("guards"):
            run_guards(ctx)
    if "group_commit" in groups:
        with ctx.phase("group commit"):
            group_commit.run_group_commit(ctx)
    data = ctx.work / "data"
    batch_bodies = []
    if {"ingest", "batch", "read"} & set(groups):
        with StemeServer(data) as server:
            server.start()
            if "ingest" in groups:
                with ctx.phase("single ingest"):
                    bodies = ingest.run_single(ctx, server)
                with ctx.phase("single ingest ceiling"):
                    ingest.run_ceiling(ctx, bodies)
                del bodies
            if "batch" in groups:
                with ctx.phase("batch ingest"):
                    batch_bodies = ingest.run_batch(ctx, server)
            if "read" in groups:
                with ctx.phase("reads"):
                    reads.run_reads(ctx, server)
            if ctx.profile:
                with ctx.phase("profiles"):
                    if "ingest" in groups:
                        profiles += [("single ingest", p) for p in ingest.run_profile(ctx, server)]
                    if "batch" in groups:
                        profiles += [("batch ingest", p)
                                     for p in ingest.run_batch_profile(ctx, server)]
                    if "read" in groups:
                        profiles += [("point reads", p) for p in reads.run_read_profile(ctx, server)]
    if batch_bodies:
        with ctx.phase("verify only"):
            ingest.run_verify_only(ctx, batch_bodies)
        del batch_bodies
    if "reindex" in groups:
        with ctx.phase("reindex"):
            data.mkdir(parents=True, exist_ok=True)
            profiles += [("reindex", p) for p in reindex.run_reindex(ctx, data)]
    shutil.rmtree(data, ignore_errors=True)
    if "scale" in groups:
        with ctx.phase("scale"):
            scale.run_scale(ctx, scale_records)
    return profiles


def run_guards(ctx: Context) -> None:
    """The rate limiter and breaker figures of bench/guards_bench.py (``run()`` returns
    its keys), skipped when that module is absent."""
    try:
        guards_bench = importlib.import_module("bench.guards_bench")
    except ModuleNotFoundError as e:
        if e.name != "bench.guards_bench":
            raise
        log("  bench/guards_bench.py not present; skipped")
        return
    for key, value in guards_bench.run().items():
        ctx.put(key, value, "{:,.3f}")


def write_profiles(ctx: Context, profiles: list[tuple[str, Path]]) -> None:
    if not profiles:
        return
    parts = ["# Where the time goes (py-spy)", "",
             "Written by `make bench`; the analysis is in `docs/benchmarks.md`. "
             "`*.folded` files hold the raw stacks (flamegraph.pl / speedscope can draw them).",
             "",
             "Server threads: `MainThread` runs the event loop (HTTP parsing, routing, "
             "middleware, the engine's checks); `stemedb-journal` is the group-commit thread "
             "(write, fsync, index apply); `stemedb-verify` verifies batch signatures; "
             "`AnyIO worker thread` runs sync routes. In the reindex profile `MainThread` is "
             "the rebuild loop.",
             ""]
    for what, path in profiles:
        gil = path.name.endswith("-gil.folded")
        title = f"{what}: {'GIL holder only' if gil else 'all non-idle threads'}"
        note = ("Only samples of the thread holding the GIL: what serialises the server."
                if gil else "Every thread that was running or runnable.")
        parts.append(profile.to_markdown(title, profile.summarise(path), note))
    report.write_atomic(ctx.results_dir / "profile.md", "\n".join(parts))
    log(f"profile summary -> {ctx.results_dir / 'profile.md'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed; run `bash scripts/bench-deps.sh` "
              "(make bench does)", file=sys.stderr)
        return 2
    load_start = os.getloadavg()
    log(f"groups: {', '.join(args.groups)}; load average {load_start[0]:.2f}")
    if load_start[0] > 0.5:
        log("warning: something else is using the CPU; the figures will be lower than on "
            "an idle machine")
    work = Path(tempfile.mkdtemp(prefix="stemedb-bench-", dir=args.work_dir))
    signer = Signer()
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(work=work, results_dir=args.out, signer=signer, duration_s=args.duration,
                  warmup_s=args.warmup, profile=not args.no_profile)
    started = time.perf_counter()
    try:
        profiles = run_groups(ctx, args.groups, args.scale_records)
    except (Exception, KeyboardInterrupt) as e:
        traceback.print_exc()
        print(f"\nBENCHMARK FAILED: {e}\nmeasured so far (not written): {ctx.results}",
              file=sys.stderr)
        return 1
    finally:
        signer.close()
        if args.keep_work:
            log(f"scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": _machine(),
        "python": platform.python_version(),
        "wrk": loadgen.wrk_version(),
        "groups": args.groups,
        "measured_run_s": args.duration,
        "warmup_s": args.warmup,
        "durations_s": ctx.timings,
        "total_s": round(time.perf_counter() - started, 1),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "notes": ctx.notes,
    }
    data = report.write(args.out, ctx.results, meta)
    write_profiles(ctx, profiles)
    if args.out.resolve() == RESULTS and report.update_docs(DOCS, data):
        log(f"table updated in {DOCS.relative_to(ROOT)}")
    print()
    print(report.table(data))
    print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.md'} "
          f"in {meta['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
