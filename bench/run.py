"""Runs the benchmarks and writes bench/results/latest.json and latest.md.

    python -m bench.run                      # everything but scale (a few minutes)
    python -m bench.run --scale              # plus the scale figures (long)
    python -m bench.run --only ingest,read   # some groups; other keys keep old values

Groups: group_commit, ingest (single + ceiling), batch (batch + verify-only), read,
reindex, one group per figure module ``bench/<group>_bench.py`` (``run()`` returns its
keys, ``run_scale()`` the --scale ones; e.g. guards, ops, dashboard, beliefs), and scale.

A group that fails (a server answered errors, a process died, a step raised) is reported
and the others still run; their results are written, the failed group's keys keep their
previous values, ``meta.failed`` names it, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from . import group_commit, ingest, loadgen, reads, reindex, report, scale
from .context import Context, log
from .experiments import profile
from .servers import ROOT, StemeServer
from .signer import Signed, Signer


def figure_modules() -> dict[str, str]:
    """Figure modules beside the harness: every ``bench/<group>_bench.py``, whose ``run()``
    returns {key: number}, optional ``run_scale()`` the --scale ones, optional
    ``TARGETS`` {key: (">=" or "<=", value)}."""
    here = Path(__file__).resolve().parent
    return {p.stem.removesuffix("_bench"): f"bench.{p.stem}"
            for p in sorted(here.glob("*_bench.py"))}


MODULES = figure_modules()
GROUPS = ("group_commit", "ingest", "batch", "read", "reindex", *MODULES, "scale")
DEFAULT_GROUPS = tuple(g for g in GROUPS if g != "scale")
SERVER_GROUPS = ("ingest", "batch", "read")
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = ROOT / "docs" / "benchmarks.md"

T = TypeVar("T")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", action="store_true", help="also run the scale figures")
    p.add_argument("--scale-records", type=int, default=scale.RECORDS,
                   help="assertions stored for scale.ratio_* (default 5,000,000)")
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


class Runner:
    """Runs groups one by one; a failing group is recorded and the run goes on."""

    def __init__(self, ctx: Context, groups: list[str], scale_records: int) -> None:
        self.ctx = ctx
        self.groups = groups
        self.scale_records = scale_records
        self.failed: dict[str, str] = {}
        self.profiles: list[tuple[str, Path]] = []

    def attempt(self, group: str, phase: str, fn: Callable[[], T]) -> T | None:
        if group in self.failed:
            return None
        try:
            with self.ctx.phase(phase):
                return fn()
        except Exception as e:
            traceback.print_exc()
            self.failed[group] = f"{type(e).__name__}: {e}"[:1000]
            log(f"[{phase}] FAILED: {self.failed[group]}")
            return None

    def run(self) -> None:
        ctx, groups = self.ctx, self.groups
        if "group_commit" in groups:
            self.attempt("group_commit", "group commit",
                         functools.partial(group_commit.run_group_commit, ctx))
        data = ctx.work / "data"
        batch_bodies = self.server_groups(data)
        if batch_bodies:
            self.attempt("batch", "verify only",
                         functools.partial(ingest.run_verify_only, ctx, batch_bodies))
        batch_bodies = []
        if "reindex" in groups:
            data.mkdir(parents=True, exist_ok=True)
            found = self.attempt("reindex", "reindex", lambda: reindex.run_reindex(ctx, data))
            self.profiles += [("reindex", p) for p in found or []]
        shutil.rmtree(data, ignore_errors=True)
        for group, module in MODULES.items():
            if group in groups:
                self.attempt(group, group, functools.partial(self.module, module, "run"))
        if "scale" in groups:
            self.attempt("scale", "scale", lambda: scale.run_scale(ctx, self.scale_records))
            for group, module in MODULES.items():
                if group in groups:
                    self.attempt(f"scale:{group}", f"scale {group}",
                                 functools.partial(self.module, module, "run_scale"))

    def server_groups(self, data: Path) -> list[Signed]:
        """Single ingest, ceiling, batch, reads and their profiles on one server."""
        ctx = self.ctx
        wanted = [g for g in SERVER_GROUPS if g in self.groups]
        batch_bodies: list[Signed] = []
        if not wanted:
            return batch_bodies
        server = StemeServer(data)
        try:
            server.start()
        except Exception as e:
            traceback.print_exc()
            for g in wanted:
                self.failed[g] = f"server did not start: {e}"[:1000]
            return batch_bodies
        with server:
            if "ingest" in wanted:
                bodies = self.attempt("ingest", "single ingest",
                                      lambda: ingest.run_single(ctx, server))
                if bodies:
                    self.attempt("ingest", "single ingest ceiling",
                                 lambda: ingest.run_ceiling(ctx, bodies))
                    self.attempt("ingest", "single ingest naive peer",
                                 lambda: ingest.run_naive(ctx))
                del bodies
            if "batch" in wanted:
                batch_bodies = self.attempt("batch", "batch ingest",
                                            lambda: ingest.run_batch(ctx, server)) or []
            if "read" in wanted:
                self.attempt("read", "reads", lambda: reads.run_reads(ctx, server))
            if ctx.profile and profile.py_spy() is not None:
                runs = {"ingest": ("single ingest", ingest.run_profile),
                        "batch": ("batch ingest", ingest.run_batch_profile),
                        "read": ("point reads", reads.run_read_profile)}
                for g in wanted:
                    what, fn = runs[g]
                    # A failed profile is reported on its own; the figures stand.
                    found = self.attempt(f"profile:{g}", f"profile {what}",
                                         functools.partial(fn, ctx, server))
                    self.profiles += [(what, p) for p in found or []]
        return batch_bodies

    def module(self, name: str, function: str) -> None:
        """A figure module's ``run()`` / ``run_scale()``; skipped when it is absent."""
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            log(f"  {name} not present; skipped")
            return
        fn = getattr(mod, function, None)
        if fn is None:
            log(f"  {name} has no {function}(); skipped")
            return
        report.TARGETS.update(getattr(mod, "TARGETS", {}))
        for key, value in fn().items():
            self.ctx.put(key, value, "{:,.3f}")


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


def write_profiles(ctx: Context, profiles: list[tuple[str, Path]]) -> None:
    if not profiles:
        return
    parts = ["# Where the time goes (py-spy)", "",
             "Written by `make bench`; the analysis is in `docs/benchmarks.md`. "
             "`profile-*.folded.gz` hold the raw stacks (`zcat` them into flamegraph.pl or "
             "speedscope).",
             "",
             "Server threads: `MainThread` runs the event loop (HTTP parsing, routing, "
             "middleware, the engine's checks); `stemedb-journal` is the group-commit thread "
             "(write, fsync, index apply); `stemedb-verify` verifies batch signatures; "
             "`AnyIO worker thread` runs sync routes. In the reindex profile `MainThread` "
             "decodes records into rows (and digests at the end), `stemedb-index-rebuild` "
             "writes them and `stemedb-index-build` builds the indexes.",
             ""]
    for what, path in profiles:
        gil = path.name.endswith("-gil.folded")
        title = f"{what}: {'GIL holder only' if gil else 'all non-idle threads'}"
        note = ("Only samples of the thread holding the GIL: what serialises the server."
                if gil else "Every thread that was running or runnable.")
        parts.append(profile.to_markdown(title, profile.summarise(path), note))
        profile.compress(path)
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
            "an idle machine (see other_cpu_cores in meta.notes)")
    work = Path(tempfile.mkdtemp(prefix="stemedb-bench-", dir=args.work_dir))
    signer = Signer()
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(work=work, results_dir=args.out, signer=signer, duration_s=args.duration,
                  warmup_s=args.warmup, profile=not args.no_profile)
    runner = Runner(ctx, args.groups, args.scale_records)
    started = time.perf_counter()
    try:
        runner.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; nothing written. measured so far: {ctx.results}",
              file=sys.stderr)
        return 130
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
        "failed": runner.failed,
        "measured_run_s": args.duration,
        "warmup_s": args.warmup,
        "durations_s": ctx.timings,
        "total_s": round(time.perf_counter() - started, 1),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "notes": ctx.notes,
    }
    data = report.write(args.out, ctx.results, meta)
    write_profiles(ctx, runner.profiles)
    if args.out.resolve() == RESULTS and report.update_docs(DOCS, data):
        log(f"table updated in {DOCS.relative_to(ROOT)}")
    print()
    print(report.table(data))
    print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.md'} "
          f"in {meta['total_s']:.0f} s")
    if runner.failed:
        print("\nBENCHMARK FAILED in: " + "; ".join(f"{g}: {e}" for g, e in runner.failed.items()),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
