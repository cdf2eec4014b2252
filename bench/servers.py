"""Server processes for the benchmarks: ``stemedb serve`` and the ceiling app.

Both run as real child processes on free loopback ports; the load generator is a third
process. Logs go to a file beside the data directory and are shown when start-up fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Process:
    """A child server process; stop() always ends it (TERM, then KILL after a grace)."""

    ready_path = "/healthz"

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=ROOT)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(self.url + self.ready_path, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.argv[:4]} not ready after {timeout:.0f} s\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# Every load comes from one address and a few dozen agents, far above the default
# per-address and per-agent rate limits: the limits are raised out of reach (not
# disabled), so the limiter's per-request check stays in the measured path.
SERVER_ENV = {
    "STEMEDB_LOG_LEVEL": "WARNING",
    "STEMEDB_RATE_LIMIT_QUERY_RATE": "1000000000",
    "STEMEDB_RATE_LIMIT_QUERY_BURST": "1000000000",
    "STEMEDB_RATE_LIMIT_ASSERT_RATE": "1000000000",
    "STEMEDB_RATE_LIMIT_ASSERT_BURST": "1000000000",
}


VARIANT_SERVER = "bench.experiments.variant_server"


class StemeServer(Process):
    """``python -m stemedb serve`` on its own data directory: quiet logs, no dashboard,
    rate limits out of reach (SERVER_ENV), everything else at its defaults. ``without``
    starts it through ``bench.experiments.variant_server`` with that feature taken out
    (``"nothing"``: the same launcher, everything in)."""

    ready_path = "/readyz"

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 without: str | None = None) -> None:
        self.data_dir = data_dir
        launcher = ["stemedb"] if without is None else [VARIANT_SERVER, "--without", without]
        argv = [sys.executable, "-m", *launcher, "serve", "--port", "{port}",
                "--data-dir", str(data_dir), "--dashboard-port", "0"]
        super().__init__(argv, data_dir.parent / f"{data_dir.name}-server.log",
                         {**SERVER_ENV, **(env or {})})


class NaivePeerServer(Process):
    """``python -m bench.naive_peer``: FastAPI + PyNaCl + SQLite, one commit per write."""

    def __init__(self, log_dir: Path) -> None:
        argv = [sys.executable, "-m", "bench.naive_peer", "--port", "{port}",
                "--db", str(log_dir / "naive-peer.db")]
        super().__init__(argv, log_dir / "naive-peer-server.log")


class CeilingServer(Process):
    """``python -m bench.ceiling_app``: the trivial handler on the same stack."""

    def __init__(self, log_dir: Path, loop: str = "server") -> None:
        argv = [sys.executable, "-m", "bench.ceiling_app", "--port", "{port}", "--loop", loop]
        super().__init__(argv, log_dir / f"ceiling-{loop}-server.log")


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    return sum(cpu_split(pid))


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and all its descendants, from /proc: the live
    ones' own time plus what each has reaped (cutime, cstime), so a child that exited
    meanwhile (a PostgreSQL backend whose client left) still counts."""
    procs: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone since the scan
            continue
        procs[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _ticks) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            total += procs[pid][1]
            todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, max_s: float = 30.0, busy: float = 0.05,
              cpu: Callable[[int], float] = cpu_seconds) -> float:
    """Waits until the process uses less than ``busy`` of a core (work queued by a load
    run that was cut off must not leak into the next measurement); ``cpu`` reads its CPU
    seconds (``tree_cpu_seconds`` for a server with children). Returns seconds waited."""
    started = time.monotonic()
    last = cpu(pid)
    while time.monotonic() - started < max_s:
        time.sleep(0.25)
        now = cpu(pid)
        if now - last < busy * 0.25:
            break
        last = now
    return time.monotonic() - started


def scrape_group_commit(url: str) -> tuple[float, float] | None:
    """(records, commits) so far from the server's group-commit size histogram in
    /metrics, or None when the server does not export one."""
    try:
        text = httpx.get(url + "/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = _GROUP_COMMIT.match(line)
        if m:
            found[m.group(1)] = found.get(m.group(1), 0.0) + float(m.group(2))
    if "sum" in found and "count" in found:
        return found["sum"], found["count"]
    return None


_GROUP_COMMIT = re.compile(r"^stemedb_\w*group_commit\w*_(sum|count)(?:\{[^}]*\})? ([0-9.eE+-]+)$")


@dataclass(frozen=True)
class DiskCounters:
    """A block device's write counters since boot (``/proc/diskstats``)."""

    writes: int  # writes completed
    sectors: int  # 512-byte sectors written
    write_ms: int  # milliseconds spent writing (summed over the writes in flight)


def disk_counters(path: Path) -> DiskCounters | None:
    """The write counters of the block device holding ``path``; None when the kernel
    lists no such device (tmpfs, for one)."""
    try:
        dev = os.stat(path).st_dev
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if len(f) > 10 and (int(f[0]), int(f[1])) == (os.major(dev), os.minor(dev)):
            return DiskCounters(int(f[7]), int(f[9]), int(f[10]))
    return None


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
