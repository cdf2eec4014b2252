"""Beliefs: ``GET /v1/beliefs`` latency on one subject/predicate with 1,000 assertions
from 200 agents, against a real ``stemedb serve`` process; the load comes from ``wrk`` in
its own process.

``run()`` returns

- ``beliefs.p50_ms``: median latency at one connection (target ≤ 20 ms);
- ``beliefs.p99_ms``: 99th percentile at 32 connections (target ≤ 50 ms);
- ``beliefs.rate``: requests per second at 32 connections;
- ``beliefs.server_cpu_us``: server CPU (all threads) per request at 32 connections;
- ``beliefs.open_p99_ms`` (and ``_p50_ms``): latency at a fixed offered load of
  ``beliefs.open_rate`` requests per second (open loop, bench/openloop.py): the 32-
  connection figures are a closed loop at saturation, where latency is mostly queueing
  (mean ≈ 32 / rate);
- ``beliefs.healthz_p99_ms``: the same 32-connection load on ``/healthz`` right after, the
  floor the server stack and the machine set for any endpoint;
- ``beliefs.compute_ms``: median time to compute the same answer from the index with no
  cache (in process, after the server stopped): the cost of the first read after a write
  touching that subject/predicate or the trust of one of its agents;
- ``beliefs.compute_as_of_ms``: the same at an earlier ``as_of`` LSN (trust recounted from
  the rows);
- ``disputes.compute_ms``: computing the whole dispute list of that store, no cache;
- ``*_cpu_ms``: the CPU time of those computations (steadier than wall time on a busy
  machine).

The data: 200 fresh agents each make 5 claims on ("bench river", "flows_into"), each
naming a different sea (so nothing is a duplicate), with evidence shared by groups of
10 agents; all are accepted, so by the end every agent is trusted. Answers at a stable
LSN are served from the server's re-validated cache; see docs/beliefs.md.

Run alone: ``python -m bench.beliefs_bench``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson

from stemedb.signing import AgentKey

from . import loadgen, openloop
from .loadgen import LoadError
from .servers import StemeServer, cpu_seconds, wait_idle
from .signer import rfc3339

AGENTS = 200
PER_AGENT = 5
SUBJECT, PREDICATE = "bench river", "flows_into"
SEAS = ["black sea", "baltic sea", "north sea", "caspian sea", "aral sea"]
CONNECTIONS = 32
P50_SECONDS = 5.0
P99_SECONDS = 10.0
WARMUP_SECONDS = 2.0
OPEN_RATE = 500.0


def _bodies() -> list[dict[str, str]]:
    items = []
    keys = [AgentKey.generate() for _ in range(AGENTS)]
    ts = rfc3339()
    for round_ in range(PER_AGENT):
        for a, key in enumerate(keys):
            body = orjson.dumps(
                {
                    "subject": SUBJECT,
                    "predicate": PREDICATE,
                    "object": SEAS[(a + round_) % len(SEAS)],
                    "confidence": 0.8,
                    "evidence": [f"https://survey-{a // 10}.example/rivers/{round_}"],
                    "agent_id": key.agent_id,
                    "timestamp": ts,
                    "nonce": f"beliefs-bench-{a:04d}-{round_}",
                }
            )
            items.append({"body": body.decode(), "signature": key.sign_b64(body)})
    return items


def _load(url: str) -> None:
    items = _bodies()
    with httpx.Client(base_url=url, timeout=300.0) as client:
        for i in range(0, len(items), 250):
            r = client.post(
                "/v1/assert/batch",
                content=orjson.dumps({"items": items[i : i + 250]}),
                headers={"Content-Type": "application/json"},
            )
            if r.status_code != 200:
                raise LoadError(f"batch answered {r.status_code}: {r.text[:300]}")
            bad = [x for x in r.json()["results"] if x.get("status") != "accepted"]
            if bad:
                raise LoadError(f"{len(bad)} bench assertions not accepted, e.g. {bad[0]}")


def _path(**params: str) -> str:
    return "/v1/beliefs?" + urlencode({"subject": SUBJECT, "predicate": PREDICATE, **params})


def _check(url: str) -> int:
    answer = httpx.get(url + _path(), timeout=30.0).json()
    agents = sum(c["agents"] for c in answer["candidates"])
    if agents != AGENTS or len(answer["candidates"]) != len(SEAS):
        raise LoadError(f"unexpected answer: {agents} agents, {len(answer['candidates'])} objects")
    return int(answer["as_of_lsn"])


def _timed(fn, repeat: int = 30) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median wall and CPU milliseconds of one call."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return round(statistics.median(wall), 3), round(statistics.median(cpu), 3)


def _compute_figures(data_dir: Path, lsn: int) -> dict[str, float]:
    from stemedb.datadir import INDEX_FILE
    from stemedb.index import IndexStore
    from stemedb.index import beliefs as ib

    store = IndexStore(data_dir / INDEX_FILE)
    try:

        def beliefs(n: int | None, current: bool) -> None:
            with ib.snapshot(store) as conn:
                at, _ = ib.pin(conn, n)
                ib.compute_beliefs(conn, SUBJECT, PREDICATE, None, at, current)

        def disputes() -> None:
            with ib.snapshot(store) as conn:
                at, current = ib.pin(conn, None)
                ib.compute_disputes(conn, at, current, None, None)

        out = {}
        for name, fn, repeat in (
            ("beliefs.compute", lambda: beliefs(None, True), 30),
            ("beliefs.compute_as_of", lambda: beliefs(lsn - 100, False), 30),
            ("disputes.compute", disputes, 10),
        ):
            out[f"{name}_ms"], out[f"{name}_cpu_ms"] = _timed(fn, repeat)
        return out
    finally:
        store.close()


def run(work: Path | None = None) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="beliefs-bench-", dir=work))
    try:
        data = scratch / "data"
        server = StemeServer(data).start()
        try:
            _load(server.url)
            lsn = _check(server.url)
            wait_idle(server.pid)
            requests = scratch / "beliefs.txt"
            loadgen.write_gets(requests, [_path()])
            loadgen.run_wrk(
                server.url, requests, connections=4, duration_s=WARMUP_SECONDS, mode="none"
            )
            wait_idle(server.pid)
            one = loadgen.run_wrk(
                server.url, requests, connections=1, duration_s=P50_SECONDS, mode="none"
            )
            wait_idle(server.pid)
            cpu_before = cpu_seconds(server.pid)
            many = loadgen.run_wrk(
                server.url, requests, connections=CONNECTIONS, duration_s=P99_SECONDS, mode="none"
            )
            cpu = cpu_seconds(server.pid) - cpu_before
            wait_idle(server.pid)
            fixed = openloop.run(server.url, [_path()], rate=OPEN_RATE, seconds=P99_SECONDS)
            wait_idle(server.pid)
            # The floor on this machine: the same load on a trivial endpoint.
            floor_file = scratch / "healthz.txt"
            loadgen.write_gets(floor_file, ["/healthz"])
            floor = loadgen.run_wrk(
                server.url, floor_file, connections=CONNECTIONS, duration_s=P99_SECONDS, mode="none"
            )
            server.check_alive()
        finally:
            server.stop()
        out = {
            "beliefs.p50_ms": round(one.lat_p50_ms, 3),
            "beliefs.p99_ms": round(many.lat_p99_ms, 3),
            "beliefs.rate": round(many.rate, 1),
            "beliefs.server_cpu_us": round(cpu * 1e6 / max(1, many.requests), 1),
            "beliefs.open_rate": OPEN_RATE,
            "beliefs.open_p50_ms": fixed.p50_ms,
            "beliefs.open_p99_ms": fixed.p99_ms,
            "beliefs.healthz_p99_ms": round(floor.lat_p99_ms, 3),
        }
        out.update(_compute_figures(data, lsn))
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
