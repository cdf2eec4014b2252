"""What metrics cost the write path: the same signed single writes through the real ASGI
app, with metrics (middleware, hooks, commit listener) and without.

``run()`` returns ``metrics.overhead_ratio`` = 1 − rate_on / rate_off: the share of
single-ingest throughput that metrics take (target ≤ 0.05), plus both rates. Requests
are driven in process by 32 concurrent tasks calling the ASGI app directly (no sockets),
so the figure isolates the server-side cost; each side is measured three times,
alternating, and the best of each is kept.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

TARGETS = {"metrics.overhead_ratio": ("<=", 0.05)}
WRITES = 1500
CONCURRENCY = 32
ENV = {"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0", "STEMEDB_RATE_LIMIT_QUERY_RATE": "0"}


def _bodies(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    from stemedb.signing import AgentKey

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


async def _drive(app: Any, bodies: list[tuple[bytes, bytes]]) -> float:
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

    start = time.perf_counter()
    await asyncio.gather(*[one(b, s) for b, s in bodies])
    return len(bodies) / (time.perf_counter() - start)


def _rate(with_metrics: bool, tag: str) -> float:
    from stemedb.engine import Database
    from stemedb.http import create_app
    from stemedb.settings import load_settings

    with tempfile.TemporaryDirectory() as d:
        db = Database(load_settings(env=ENV, overrides={"server.data_dir": str(Path(d))}))
        try:
            app = create_app(db, close_on_shutdown=False, with_metrics=with_metrics)
            bodies = _bodies(WRITES, tag)
            return asyncio.run(_drive(app, bodies))
        finally:
            db.close()


def run() -> dict[str, float]:
    on, off = [], []
    for i in range(3):
        off.append(_rate(False, f"off{i}"))
        on.append(_rate(True, f"on{i}"))
    rate_on, rate_off = max(on), max(off)
    return {"metrics.overhead_ratio": round(max(0.0, 1 - rate_on / rate_off), 4),
            "metrics.rate_on": round(rate_on, 1), "metrics.rate_off": round(rate_off, 1)}


if __name__ == "__main__":
    print(run())
