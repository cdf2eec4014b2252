"""Dashboard: how fast the review pages answer with a large quarantine.

``run()`` returns

- ``dashboard.quarantine_ms``: median server time (ms) to render the first page of
  ``/quarantine`` (grouped by agent: pending count, counts per reason, the per-agent
  GROUP BY, and the ten busiest agents with trust, breaker state and their newest items)
  with 100,000 pending items. Target: at most 300 ms.
- ``dashboard.quarantine_items_ms``: the same for the flat list (``?view=items``, 50 per
  page), ``dashboard.quarantine_agent_ms`` for the flooding agent's own list, and
  ``dashboard.quarantine_page_ms`` for a page far down that list (cursor pagination);
- ``dashboard.overview_ms``: the overview (rates, pending history of the last hour).

The data directory is built in-process: signed assertions are journaled through the
engine's journal with a quarantine verdict (one group commit per 1,000 records), so the
index holds exactly what 100,000 quarantined writes leave - without the HTTP round trips,
the per-agent pending cap and the breakers that would stop a real flood. One agent floods
(60 %), 400 others share the rest. Requests go to the dashboard app in-process (the ASGI
app, no sockets), signed in like a browser; each figure is the median of ``ROUNDS``.

Run alone: ``python -m bench.dashboard_bench``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

PENDING = 100_000
FLOOD_SHARE = 0.6
OTHER_AGENTS = 400
CHUNK = 1000
ROUNDS = 15


def _verdict(i: int) -> dict[str, Any]:
    reason = ("LowQuality", "LowQuality", "Duplicate", "UntrustedHighConfidence")[i % 4]
    signals = [
        {"name": "placeholder_text", "amount": 0.6, "detail": "subject is a placeholder"},
        {"name": "empty_text", "amount": 0.7, "detail": "object has no letters"},
    ]
    return {
        "reason": reason,
        "score": 0.0 if reason == "LowQuality" else 0.8,
        "quality": 0.0,
        "signals": signals if reason == "LowQuality" else [],
        "trust": 0.5,
        "trusted": False,
    }


def build(data_dir: Path, pending: int = PENDING) -> dict[str, Any]:
    """A data directory holding ``pending`` quarantined writes; returns its agents."""
    from stemedb import records
    from stemedb.engine import Database
    from stemedb.settings import load_settings
    from stemedb.signing import AgentKey

    flooder = AgentKey.generate()
    others = [AgentKey.generate() for _ in range(OTHER_AGENTS)]
    db = Database(
        load_settings(
            env={}, overrides={"server.data_dir": str(data_dir), "server.log_level": "WARNING"}
        )
    )
    try:
        now = time.time()
        n_flood = int(pending * FLOOD_SHARE)
        batch: list[bytes] = []
        for i in range(pending):
            key = flooder if i < n_flood else others[i % OTHER_AGENTS]
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            body = orjson.dumps(
                {
                    "subject": f"asdf{i}",
                    "predicate": "qwerty",
                    "object": "!!!!!!!!",
                    "confidence": 0.9,
                    "evidence": [],
                    "context": f"c{i % 97}",
                    "agent_id": key.agent_id,
                    "timestamp": ts,
                    "nonce": f"bench-{i:09d}",
                }
            )
            # Spread the writes over the last 50 minutes, as a flood in progress would be.
            at = int((now - 3000 + 3000 * i / pending) * 1_000_000)
            batch.append(
                records.SignedWrite(
                    records.ASSERT, body, key.sign_b64(body), at, _verdict(i)
                ).encode()
            )
            if len(batch) == CHUNK:
                db.journal.append(batch)
                batch = []
        if batch:
            db.journal.append(batch)
    finally:
        db.close()
    return {"flooder": flooder.agent_id, "flood": n_flood}


async def _measure(data_dir: Path, flooder: str) -> dict[str, float]:
    import httpx

    from stemedb.dashboard import create_dashboard
    from stemedb.engine import Database
    from stemedb.settings import load_settings

    db = Database(load_settings(env={}, overrides={"server.data_dir": str(data_dir)}))
    try:
        app = create_dashboard(db, token="bench-token")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dashboard"
        ) as c:
            login = await c.get("/login")
            m = re.search(r'name="login_token" value="([^"]+)"', login.text)
            assert m
            r = await c.post("/login", data={"token": "bench-token", "login_token": m.group(1)})
            assert r.status_code == 303, r.text

            async def median_ms(url: str) -> float:
                samples = []
                for _ in range(ROUNDS + 2):
                    t0 = time.perf_counter()
                    resp = await c.get(url)
                    samples.append((time.perf_counter() - t0) * 1000)
                    assert resp.status_code == 200, (url, resp.status_code, resp.text[:500])
                return statistics.median(samples[2:])  # the first two warm caches up

            first = await c.get("/quarantine")
            assert f"{PENDING:,} pending" in first.text, "the quarantine is not as built"
            # A page deep in the flooding agent's list: follow the cursor 20 pages down.
            url = f"/quarantine?agent={flooder}"
            for _ in range(20):
                page = await c.get(url)
                nxt = re.search(r'href="([^"]+)" rel="next"', page.text)
                assert nxt, "no next page"
                url = nxt.group(1).replace("&amp;", "&")
            return {
                "dashboard.quarantine_ms": round(await median_ms("/quarantine"), 1),
                "dashboard.quarantine_items_ms": round(
                    await median_ms("/quarantine?view=items"), 1
                ),
                "dashboard.quarantine_agent_ms": round(
                    await median_ms(f"/quarantine?agent={flooder}"), 1
                ),
                "dashboard.quarantine_page_ms": round(await median_ms(url), 1),
                "dashboard.overview_ms": round(await median_ms("/"), 1),
            }
    finally:
        db.close()


def run(work_dir: Path | None = None) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="stemedb-dashboard-bench-", dir=work_dir))
    try:
        data = tmp / "data"
        built = build(data)
        return asyncio.run(_measure(data, built["flooder"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    started = time.perf_counter()
    print(json.dumps(run(), indent=2))
    print(f"({time.perf_counter() - started:.0f} s)")
