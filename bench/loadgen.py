"""The load generator for every HTTP figure: ``wrk`` replaying a file of pre-built
requests with ``wrk/replay.lua``, in its own process.

Request files hold one request per line (METHOD, PATH, SIGNATURE or "-", BODY or "-",
tab-separated); the JSON bodies never contain a raw tab or newline.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from .signer import Signed

LUA = Path(__file__).resolve().parent / "wrk" / "replay.lua"
THREADS = 1  # one wrk thread: the load generator shares the 2 cores with the server
ERROR_TOLERANCE = 0.001  # share of failed requests above which a run fails loudly


class LoadError(RuntimeError):
    """The server answered errors, or the load generator could not run."""


@dataclass(frozen=True)
class WrkResult:
    duration_s: float
    requests: int
    c200: int
    c201: int
    c202: int
    cother: int
    items: int  # batch items answered with http_status 201
    wrapped: int  # times a thread ran out of requests and started its file over
    errors_status: int
    errors_socket: int
    lat_p50_ms: float
    lat_p90_ms: float
    lat_p99_ms: float
    lat_p999_ms: float
    lat_mean_ms: float
    lat_max_ms: float
    loadgen_cpu_s: float  # CPU seconds wrk used (user + system)
    first_error: str = ""  # status and start of the body of the first unexpected answer

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s

    @property
    def new_writes_rate(self) -> float:
        """Writes that stored something new (201 stored, 202 quarantined) per second."""
        return (self.c201 + self.c202) / self.duration_s


def write_posts(path: Path, url_path: str, signed: Iterable[Signed]) -> int:
    n = 0
    with open(path, "wb") as f:
        for s in signed:
            f.write(b"POST\t%s\t%s\t%s\n" % (url_path.encode(), s.signature.encode(), s.body))
            n += 1
    return n


def write_batches(path: Path, url_path: str, signed: list[Signed], per_request: int) -> int:
    n = 0
    with open(path, "wb") as f:
        for i in range(0, len(signed), per_request):
            items = [{"body": s.body.decode(), "signature": s.signature}
                     for s in signed[i:i + per_request]]
            f.write(b"POST\t%s\t-\t%s\n" % (url_path.encode(), orjson.dumps({"items": items})))
            n += 1
    return n


def write_gets(path: Path, url_paths: Iterable[str]) -> int:
    n = 0
    with open(path, "wb") as f:
        for p in url_paths:
            f.write(b"GET\t%s\t-\t-\n" % p.encode())
            n += 1
    return n


def wrk_version() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    text = (out.stdout + out.stderr).strip()
    return " ".join(text.split()[:2]) if text else "?"  # "wrk 4.1.0-..." without the notice


def run_wrk(url: str, request_file: Path, *, connections: int, duration_s: float,
            mode: str = "status", threads: int = THREADS, timeout_s: float = 10.0,
            check: bool = True) -> WrkResult:
    """Runs wrk against ``url`` (base URL; paths come from the file) and parses its
    BENCH_JSON line. With ``check``, fails loudly when more than ERROR_TOLERANCE of the
    requests failed (status > 399, other non-2xx, or socket errors)."""
    exe = shutil.which("wrk")
    if exe is None:
        raise LoadError("wrk is not installed; run `bash scripts/bench-deps.sh`")
    threads = max(1, min(threads, connections))
    argv = [exe, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s",
            "--timeout", f"{timeout_s:g}s", "-s", str(LUA), url, "--",
            str(request_file), str(threads), mode]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise LoadError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    d = json.loads(line[len("BENCH_JSON "):])
    result = WrkResult(
        duration_s=d["duration_us"] / 1e6,
        requests=d["requests"],
        c200=d["c200"], c201=d["c201"], c202=d["c202"], cother=d["cother"],
        items=d["items"], wrapped=d["wrapped"],
        errors_status=d["err_status"],
        errors_socket=d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"],
        lat_p50_ms=d["lat_p50_us"] / 1000, lat_p90_ms=d["lat_p90_us"] / 1000,
        lat_p99_ms=d["lat_p99_us"] / 1000, lat_p999_ms=d["lat_p999_us"] / 1000,
        lat_mean_ms=d["lat_mean_us"] / 1000, lat_max_ms=d["lat_max_us"] / 1000,
        loadgen_cpu_s=cpu,
        first_error=d.get("first_error", ""),
    )
    if check:
        check_errors(result, url)
    return result


def check_errors(r: WrkResult, what: str) -> None:
    failed = max(r.errors_status, r.cother) + r.errors_socket  # cother includes status > 399
    if r.requests == 0:
        raise LoadError(f"{what}: no request completed")
    if failed > ERROR_TOLERANCE * r.requests:
        raise LoadError(
            f"{what}: {failed} of {r.requests} requests failed "
            f"(status>399: {r.errors_status}, other non-2xx: {r.cother}, "
            f"socket errors/timeouts: {r.errors_socket})"
            + (f"; first: {r.first_error}" if r.first_error else "")
        )
