"""Latency at a fixed offered load: an open-loop HTTP/1.1 GET client.

``wrk`` is a closed loop: each of its connections sends the next request only when the
previous answer is in, so at saturation a latency percentile mostly measures the queue the
client itself keeps full (mean latency ≈ connections / throughput). Here requests go out
on a fixed schedule, ``rate`` per second, whatever the answers: a request's latency runs
from the moment it was *due* (not from when a connection was free), so a server that
falls behind is charged for it (no coordinated omission). Connections are opened as
needed, up to ``max_connections``, and kept alive.

The client is asyncio protocols on uvloop (tens of µs of CPU per request); requests are
sent to their schedule within about a millisecond. Keep the rate well below what the
server manages on the cores it shares with the client.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import uvloop

from .loadgen import LoadError


@dataclass(frozen=True)
class OpenLoopResult:
    rate: float  # offered, requests per second
    requests: int
    errors: int  # answers other than 200, and failed connections
    p50_ms: float
    p99_ms: float
    max_ms: float
    late_ms: float  # how far behind its schedule the client itself fell, at most


class _Conn(asyncio.Protocol):
    """One kept-alive connection with at most one request in flight."""

    def __init__(self, done: Callable[[_Conn, int, float], None],
                 lost: Callable[[_Conn], None]) -> None:
        self.done, self.lost = done, lost
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.due = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        length = 0
        for line in self.buf[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        self.buf = self.buf[end + 4 + length:]
        self.done(self, status, time.perf_counter() - self.due)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost(self)


def _pct(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _run(host: str, port: int, paths: Sequence[str], rate: float, seconds: float,
               max_connections: int) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    idle: list[_Conn] = []
    busy: set[_Conn] = set()
    waiting: collections.deque[tuple[bytes, float]] = collections.deque()  # no connection yet
    latencies: list[float] = []
    errors = 0
    late = 0.0
    total = int(rate * seconds)
    finished = loop.create_future()
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]

    def settle() -> None:
        if len(latencies) + errors >= total and not finished.done():
            finished.set_result(None)

    def done(conn: _Conn, status: int, seconds_: float) -> None:
        nonlocal errors
        latencies.append(seconds_)
        if status != 200:
            errors += 1
        if waiting:
            conn.send(*waiting.popleft())
        else:
            busy.discard(conn)
            idle.append(conn)
        settle()

    def lost(conn: _Conn) -> None:
        nonlocal errors
        if conn in busy:
            busy.discard(conn)
            errors += 1
            settle()
        elif conn in idle:
            idle.remove(conn)

    async def opened(request: bytes, due: float) -> None:
        nonlocal errors
        try:
            _, conn = await loop.create_connection(lambda: _Conn(done, lost), host, port)
        except OSError:
            errors += 1
            settle()
            return
        busy.add(conn)
        conn.send(request, due)

    connecting: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.05
    for i, request in zip(range(total), itertools.cycle(requests), strict=False):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        late = max(late, time.perf_counter() - due)
        if idle:
            conn = idle.pop()
            busy.add(conn)
            conn.send(request, due)
        elif len(busy) + len(connecting) < max_connections:
            task = loop.create_task(opened(request, due))
            connecting.add(task)
            task.add_done_callback(connecting.discard)
        else:
            waiting.append((request, due))
    await asyncio.wait_for(finished, timeout=seconds + 60)
    for conn in idle + list(busy):
        if conn.transport is not None:
            conn.transport.close()
    latencies.sort()
    return OpenLoopResult(
        rate=rate, requests=len(latencies), errors=errors,
        p50_ms=round(_pct(latencies, 0.50) * 1000, 3),
        p99_ms=round(_pct(latencies, 0.99) * 1000, 3),
        max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 3),
        late_ms=round(late * 1000, 3),
    )


def run(url: str, paths: Sequence[str], *, rate: float, seconds: float,
        max_connections: int = 64) -> OpenLoopResult:
    """GET ``paths`` (cycled) from ``url`` (``http://host:port``) at ``rate`` per second
    for ``seconds``; fails loudly when more than 0.1% of the requests failed."""
    hostport = url.removeprefix("http://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    started = time.perf_counter()
    result = uvloop.run(_run(host, int(port), paths, rate, seconds, max_connections))
    if result.errors > 0.001 * max(1, result.requests + result.errors):
        raise LoadError(f"open loop at {rate:g}/s: {result.errors} of "
                        f"{result.requests + result.errors} requests failed")
    if time.perf_counter() - started > seconds * 3 + 30:
        raise LoadError(f"open loop at {rate:g}/s took far longer than {seconds:g} s")
    return result
