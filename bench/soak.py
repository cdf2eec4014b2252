"""Soak: a real ``stemedb serve`` under steady load for 10 minutes (``make soak``).

    python -m bench.soak                       # calibrate, then 10 minutes
    python -m bench.soak --minutes 2 --rate 500

Calibration is ``make bench``'s single-ingest measurement (wrk, 32 connections) on the
soak's own server, taken three times: the median is the rate (one 10-second run on a
fresh index varies by a third from run to run on a shared machine). The soak then offers
requests at 80 % of that rate: two in three
single signed writes, one in three a read (nine in ten point reads of earlier writes, one
in ten a list by subject), in an open loop: requests go out on schedule whatever the answers, and
a request's latency runs from when it was due, so falling behind is charged. Every body
is signed before the run, stamped with the time it is due.

Passes when: no request failed (every write 201, every read 200, no connection error);
the server's resident memory grew by at most 10 % from the end of the warm-up (2
minutes) to the end; the p99 of the last minute is at most 1.5 x the first minute's, and
so is every other minute's (a run that fell behind midway and caught up again by its
last minute has not held its load). Memory is judged on anonymous RSS (heap: where a
leak shows); file-backed pages of the growing index are page cache and are reported
beside it. Figures go to ``bench/results/soak.json``; the exit status is 1 when a
criterion fails.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import math
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from . import ingest
from .context import Context, log
from .openloop import _Conn, _pct
from .report import write_atomic
from .run import RESULTS, _git, _machine
from .servers import (
    HOST,
    DiskCounters,
    StemeServer,
    cpu_seconds,
    disk_counters,
    machine_busy_seconds,
)
from .signer import Signed, Signer, rfc3339

RATE_FRACTION = 0.8
CALIBRATIONS = 3  # single-ingest runs; their median is the rate
READ_SHARE = 1 / 3  # of the requests offered
MAX_RSS_GROWTH = 0.10
MAX_P99_RATIO = 1.5
CHUNK_S = 5.0  # seconds of writes stamped with one timestamp
MAX_CONNECTIONS = 256
# A kept-alive connection idle this long is not reused: the server closes idle ones after
# 5 s (uvicorn's default), and a request sent as it does would fail for the client's sake.
IDLE_REUSE_S = 2.0

Item = tuple[bytes, float, int, str, str | None]  # request, due, minute, kind, id written


@dataclass
class Minute:
    writes: int = 0
    reads: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    write_latencies: list[float] = field(default_factory=list)
    rss_mib: float = 0.0
    rss_anon_mib: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0  # the rest of the machine: neither the server nor this client
    disk: DiskCounters = DiskCounters(0, 0, 0)  # the data directory's device, this minute

    def summary(self, number: int) -> dict[str, Any]:
        all_, writes = sorted(self.latencies), sorted(self.write_latencies)
        return {"minute": number, "writes": self.writes, "reads": self.reads,
                "answered": len(self.latencies),
                "errors": sum(self.errors.values()), "error_kinds": dict(self.errors),
                "p50_ms": _ms(_pct(all_, 0.5)),
                "p99_ms": _ms(_pct(all_, 0.99)), "write_p99_ms": _ms(_pct(writes, 0.99)),
                "max_ms": _ms(all_[-1] if all_ else 0.0), "rss_mib": self.rss_mib,
                "rss_anon_mib": self.rss_anon_mib,
                "server_cpu_cores": round(self.server_cpu_s / 60, 2),
                "other_cpu_cores": round(max(0.0, self.other_cpu_s) / 60, 2),
                "disk_write_mb_s": round(self.disk.sectors * 512 / 60 / 1e6, 1),
                "disk_write_ms": round(self.disk.write_ms / self.disk.writes, 2)
                if self.disk.writes else 0.0}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, RssAnon) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return tuple(round(int(fields[k].split()[0]) / 1024, 1)  # type: ignore[return-value]
                 for k in ("VmRSS", "RssAnon"))


class Bodies:
    """Every write of the soak, signed before it starts (signing during the run would take
    CPU from the server), each ``CHUNK_S`` seconds' worth stamped with when it is due: a
    body must reach the server within its clock-skew window of its timestamp."""

    def __init__(self, signer: Signer, write_rate: float, seconds: float) -> None:
        per_chunk = math.ceil(write_rate * CHUNK_S) + 1
        start = time.time() + 0.5 * CHUNK_S
        self._chunks = collections.deque(
            signer.sign(per_chunk, rfc3339(start + k * CHUNK_S))
            for k in range(math.ceil(seconds / CHUNK_S) + 1))
        self._current: list[Signed] = []

    def next(self) -> Signed:
        if not self._current:
            self._current = self._chunks.popleft()
            self._current.reverse()
        return self._current.pop()


async def soak(url: str, pid: int, bodies: Bodies, request_rate: float, minutes: int,
               data_dir: Path) -> list[Minute]:
    """Offers writes and reads on schedule for ``minutes``; returns per-minute figures,
    the disk's among them: the writes of the device holding ``data_dir`` (every
    process's), a slow day of a shared disk shows there."""
    loop = asyncio.get_running_loop()
    host, port = HOST, int(url.rsplit(":", 1)[1])
    stats = [Minute() for _ in range(minutes)]
    idle: list[_Conn] = []
    inflight: dict[_Conn, tuple[int, str, str | None]] = {}  # minute, kind, id written
    waiting: collections.deque[Item] = collections.deque()  # no free connection yet
    idle_since: dict[_Conn, float] = {}
    subjects: dict[str, str] = {}  # id -> subject of writes in flight
    written: list[tuple[str, str]] = []  # (id, subject) of writes answered 201
    last_cpu = [cpu_seconds(pid), machine_busy_seconds(), _client_cpu_s()]
    last_disk = [disk_counters(data_dir)]
    outstanding = 0
    start = time.perf_counter() + 0.2

    def sample(m: Minute) -> None:
        m.rss_mib, m.rss_anon_mib = memory_mib(pid)
        now = [cpu_seconds(pid), machine_busy_seconds(), _client_cpu_s()]
        server, busy, client = (a - b for a, b in zip(now, last_cpu, strict=True))
        m.server_cpu_s += server
        m.other_cpu_s += busy - server - client  # includes the signing processes
        last_cpu[:] = now
        disk, before = disk_counters(data_dir), last_disk[0]
        if disk is not None and before is not None:
            m.disk = DiskCounters(m.disk.writes + disk.writes - before.writes,
                                  m.disk.sectors + disk.sectors - before.sectors,
                                  m.disk.write_ms + disk.write_ms - before.write_ms)
        last_disk[0] = disk

    def done(conn: _Conn, status: int, seconds: float) -> None:
        nonlocal outstanding
        minute, kind, new_id = inflight.pop(conn)
        outstanding -= 1
        m = stats[minute]
        m.latencies.append(seconds)
        ok = status == (201 if kind == "write" else 200)
        if kind == "write":
            m.write_latencies.append(seconds)
            subject = subjects.pop(new_id or "", None)
            if ok and new_id is not None and subject is not None:
                written.append((new_id, subject))
        if not ok:
            error(m, f"{kind} answered {status}")
        if waiting:
            send(conn, *waiting.popleft())
        else:
            idle.append(conn)
            idle_since[conn] = time.perf_counter()

    def lost(conn: _Conn) -> None:
        nonlocal outstanding
        if conn in inflight:
            minute, kind, _ = inflight.pop(conn)
            outstanding -= 1
            error(stats[minute], f"{kind}: connection closed before the answer")
        elif conn in idle:
            idle.remove(conn)
            del idle_since[conn]

    def error(m: Minute, kind: str) -> None:
        m.errors[kind] += 1
        if m.errors[kind] <= 2:
            log(f"  error: {kind}")

    def reusable() -> _Conn | None:
        while idle:
            conn = idle.pop()
            if time.perf_counter() - idle_since.pop(conn) < IDLE_REUSE_S:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    def send(conn: _Conn, request: bytes, due: float, minute: int, kind: str,
             new_id: str | None) -> None:
        inflight[conn] = (minute, kind, new_id)
        conn.send(request, due)

    async def connect(*item: Any) -> None:  # an Item
        nonlocal outstanding
        try:
            _, conn = await loop.create_connection(lambda: _Conn(done, lost), host, port)
        except OSError as exc:
            outstanding -= 1
            error(stats[item[2]], f"connect failed: {exc.strerror}")
            return
        send(conn, *item)

    tasks: set[asyncio.Task[None]] = set()
    total_s = minutes * 60
    n = 0
    while True:
        due = start + n / request_rate
        if due - start >= total_s:
            break
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        minute = int((due - start) // 60)
        is_read = written and int((n + 1) * READ_SHARE) > int(n * READ_SHARE)
        item = _read(written, n, due, minute) if is_read else _write(bodies, subjects, due,
                                                                     minute)
        n += 1
        outstanding += 1
        stats[minute].reads += item[3] == "read"
        stats[minute].writes += item[3] == "write"
        conn = reusable()
        if conn is not None:
            send(conn, *item)
        elif len(inflight) + len(tasks) < MAX_CONNECTIONS:
            task = loop.create_task(connect(*item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            waiting.append(item)
        if n % max(1, int(request_rate * 5)) == 0:
            sample(stats[minute])
    deadline = time.perf_counter() + 60
    while outstanding > 0 and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    if outstanding > 0:
        stats[-1].errors["unanswered a minute after the end"] += outstanding
    sample(stats[-1])
    for conn in idle + list(inflight):
        if conn.transport is not None:
            conn.transport.close()
    return stats


def _write(bodies: Bodies, subjects: dict[str, str], due: float, minute: int) -> Item:
    s = bodies.next()
    new_id = hashlib.sha256(s.body).hexdigest()
    subjects[new_id] = json.loads(s.body)["subject"]
    head = (f"POST /v1/assert HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"X-Agent-Signature: {s.signature}\r\nContent-Length: {len(s.body)}\r\n\r\n")
    return head.encode() + s.body, due, minute, "write", new_id


def _read(written: list[tuple[str, str]], n: int, due: float, minute: int) -> Item:
    assertion_id, subject = written[(n * 7919) % len(written)]
    path = (f"/v1/assertions?subject={subject.replace(' ', '%20')}&limit=10"
            if n % 10 == 5 else f"/v1/assertions/{assertion_id}")
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode(), due, minute, "read", None


def verdict(minutes: list[dict[str, Any]], warmup: int) -> dict[str, dict[str, Any]]:
    base, end = minutes[warmup - 1], minutes[-1]
    errors = sum(m["errors"] for m in minutes)
    growth = end["rss_anon_mib"] / base["rss_anon_mib"] - 1
    # A minute with requests never answered has no p99 to compare: it fails.
    whole = _answered_all(minutes[0]) and _answered_all(end)
    first = max(minutes[0]["p99_ms"], 1e-9)
    worst = max(minutes, key=lambda m: (not _answered_all(m), m["p99_ms"]))
    return {
        "errors": {"value": errors, "limit": 0, "met": errors == 0},
        "rss_anon_growth": {"value": round(growth, 4), "limit": MAX_RSS_GROWTH,
                            "met": growth <= MAX_RSS_GROWTH,
                            "from_mib": base["rss_anon_mib"], "to_mib": end["rss_anon_mib"]},
        "p99_last_over_first": _p99_ratio(end["p99_ms"] / first if whole else None,
                                          first_ms=minutes[0]["p99_ms"],
                                          last_ms=end["p99_ms"]),
        "p99_worst_over_first": _p99_ratio(
            worst["p99_ms"] / first if whole and _answered_all(worst) else None,
            minute=worst["minute"], worst_ms=worst["p99_ms"]),
    }


def _answered_all(minute: dict[str, Any]) -> bool:
    return bool(minute["answered"] == minute["writes"] + minute["reads"])


def _p99_ratio(ratio: float | None, **shown: Any) -> dict[str, Any]:
    """A criterion on a p99 over the first minute's; None (unanswered requests) fails."""
    return {"value": None if ratio is None else round(ratio, 3), "limit": MAX_P99_RATIO,
            "met": ratio is not None and ratio <= MAX_P99_RATIO, **shown}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--warmup-minutes", type=int, default=2)
    p.add_argument("--rate", type=float, default=None,
                   help="single-ingest rate to take 80 %% of (default: measure it)")
    p.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = p.parse_args(argv)
    if not 1 <= args.warmup_minutes < args.minutes:
        p.error("--warmup-minutes must be at least 1 and less than --minutes")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated soak still stops its server (the ``with`` below) and signing processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    commit = _git("rev-parse", "HEAD")
    work = Path(tempfile.mkdtemp(prefix="stemedb-soak-"))
    signer = Signer()
    try:
        server = StemeServer(work / "data")
        with server:
            server.start()
            rate = args.rate
            if rate is None:
                ctx = Context(work=work, results_dir=work, signer=signer)
                rate = statistics.median(
                    ingest.measure_single(ctx, server, f"soak-calibration-{k + 1}").result
                    .new_writes_rate for k in range(CALIBRATIONS))
            request_rate = RATE_FRACTION * rate
            write_rate, read_rate = (1 - READ_SHARE) * request_rate, READ_SHARE * request_rate
            log(f"soak: {args.minutes} min at {write_rate:,.0f} writes/s "
                f"+ {read_rate:,.0f} reads/s (single-ingest rate {rate:,.0f}/s)")
            bodies = Bodies(signer, write_rate, 60 * args.minutes)
            client_before = _client_cpu_s()
            stats = uvloop.run(soak(server.url, server.pid, bodies, request_rate, args.minutes,
                                    work / "data"))
            client_cores = (_client_cpu_s() - client_before) / (60 * args.minutes)
            server.check_alive()
            data_bytes = sum(p.stat().st_size for p in (work / "data").rglob("*")
                             if p.is_file())
    finally:
        signer.close()
        shutil.rmtree(work, ignore_errors=True)
    minutes = [m.summary(i + 1) for i, m in enumerate(stats)]
    for m in minutes:
        log("  minute {minute}: {writes} writes, {reads} reads, {errors} errors, "
            "p50 {p50_ms} ms, p99 {p99_ms} ms, RSS {rss_mib} MiB (anon {rss_anon_mib}), "
            "other processes {other_cpu_cores} cores, disk {disk_write_mb_s} MB/s written "
            "at {disk_write_ms} ms a write"
            .format(**m))
    criteria = verdict(minutes, args.warmup_minutes)
    passed = all(c["met"] for c in criteria.values())
    result = {
        "meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                 "git_commit": commit, "machine": _machine(),
                 "minutes": args.minutes, "warmup_minutes": args.warmup_minutes,
                 "data_dir_bytes_at_end": data_bytes,
                 "client_cpu_cores": round(client_cores, 2)},
        "single_ingest_rate": round(rate, 1), "rate_fraction": RATE_FRACTION,
        "offered_writes_per_s": round(write_rate, 1),
        "offered_reads_per_s": round(read_rate, 1),
        "criteria": criteria, "passed": passed, "per_minute": minutes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(result, indent=2) + "\n")
    log(f"soak {'passed' if passed else 'FAILED'}: " + "; ".join(
        f"{k} {c['value']} (limit {c['limit']})" for k, c in criteria.items())
        + f" -> {args.out}")
    return 0 if passed else 1


def _client_cpu_s() -> float:
    """CPU seconds of the load generator's own process (not its signing processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


if __name__ == "__main__":
    raise SystemExit(main())
