"""A/B of one feature's cost on the write path: the same signed single writes through
the real ASGI app in process, with the feature and without.

Requests are driven by 32 concurrent tasks calling the app directly (no sockets, no
HTTP parsing), so the figure isolates the server-side work; without the HTTP stack's
cost in the denominator the share a feature takes comes out larger than through a
socket, never smaller.

On a 2-core machine shared with other work a single pair of runs is noisy (three runs of
the metrics A/B gave 0.011, 0.065 and 0.009). So ``compare`` runs ``ROUNDS`` pairs, each
side on a fresh data directory after a warm-up, in alternating order (A B, B A, ...), and
reports the median of the per-pair ratios, for throughput and for process CPU time per
write (``time.process_time``: every thread of the process, insensitive to what other
processes do).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.settings import load_settings
from stemedb.signing import AgentKey

WRITES = 1500
WARMUP = 200
CONCURRENCY = 32
ROUNDS = 5
ENV = {"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0", "STEMEDB_RATE_LIMIT_QUERY_RATE": "0",
       "STEMEDB_LOG_LEVEL": "WARNING"}


def default_app(database: Database) -> Any:
    # ``side`` closes the database after the run; the app must not close it first.
    return create_app(database, close_on_shutdown=False)


@dataclass(frozen=True)
class Side:
    """How one side is built: ``open_database(settings)`` opens the engine (a variant
    passes its collaborators, e.g. ``functools.partial(Database, defense=...)``), and
    ``make_app(database)`` builds the ASGI app around it."""

    open_database: Callable[..., Database] = Database
    make_app: Callable[[Database], Any] = default_app


def bodies(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    """n signed single writes from 64 agents that content defense accepts."""
    keys = [AgentKey.generate() for _ in range(64)]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = []
    for i in range(n):
        k = keys[i % len(keys)]
        body = orjson.dumps({"subject": f"city {tag} {i}", "predicate": "population",
                             "object": 1000 + i, "confidence": 0.8,
                             "evidence": ["https://example.org/census"], "agent_id": k.agent_id,
                             "timestamp": now, "nonce": f"{tag}-{i:09d}"})
        out.append((body, k.sign_b64(body).encode()))
    return out


async def drive(app: Any, signed: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """POST every body to /v1/assert, 32 at a time: (writes/s, CPU seconds per write)."""
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(body: bytes, sig: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "path": "/v1/assert", "raw_path": b"/v1/assert",
                 "query_string": b"", "root_path": "", "scheme": "http",
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 18180),
                 "headers": [(b"content-type", b"application/json"),
                             (b"x-agent-signature", sig),
                             (b"content-length", str(len(body)).encode())]}
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        async with sem:
            await app(scope, receive, send)
        if status != 201:
            raise RuntimeError(f"write answered {status}")

    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*[one(b, s) for b, s in signed])
    wall = time.perf_counter() - start
    return len(signed) / wall, (time.process_time() - cpu) / len(signed)


def side(how: Side, tag: str, writes: int = WRITES) -> tuple[float, float]:
    """One measured run on a fresh data directory: (writes/s, CPU seconds per write)."""
    warm, measured = bodies(WARMUP, f"{tag}w"), bodies(writes, tag)
    with tempfile.TemporaryDirectory() as d:
        db = how.open_database(load_settings(env=ENV,
                                             overrides={"server.data_dir": str(Path(d))}))
        try:
            app = how.make_app(db)

            async def go() -> tuple[float, float]:
                await drive(app, warm)
                return await drive(app, measured)

            return asyncio.run(go())
        finally:
            db.close()


def compare(with_feature: Side, without: Side, tag: str, rounds: int = ROUNDS,
            writes: int = WRITES) -> dict[str, float]:
    """``ratio``: median over pairs of 1 − rate_with / rate_without (the share of
    throughput the feature takes); ``cpu_ratio``: median of cpu_with / cpu_without − 1;
    ``ratio_min`` / ``ratio_max``: the spread of the pairs; ``rate_on`` / ``rate_off``:
    median rates."""
    ratios, cpu_ratios, on, off = [], [], [], []
    for i in range(rounds):
        sides = [("on", with_feature), ("off", without)]
        got = {}
        for label, how in sides if i % 2 == 0 else sides[::-1]:
            got[label] = side(how, f"{tag}-{label}{i}", writes)
        on.append(got["on"][0])
        off.append(got["off"][0])
        ratios.append(1 - got["on"][0] / got["off"][0])
        cpu_ratios.append(got["on"][1] / got["off"][1] - 1)
    # Medians are reported as measured: one below 0 means the difference is below noise.
    return {"ratio": round(statistics.median(ratios), 4),
            "cpu_ratio": round(statistics.median(cpu_ratios), 4),
            "ratio_min": round(min(ratios), 4), "ratio_max": round(max(ratios), 4),
            "rate_on": round(statistics.median(on), 1), "rate_off": round(statistics.median(off), 1)}
