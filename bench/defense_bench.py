"""Content defense: cost per verdict and the quarantine list at 100,000 pending items.

``run()`` returns

- ``defense.median_us``: median microseconds of one ``decide`` (quality signals,
  injection scan, precedence) over every assertion of the labelled corpus
  (``tests/testdata/defense/corpus.jsonl``), each timed on its own, 20 rounds.
- ``quarantine.list_ms``: median milliseconds of listing one agent's pending items
  (``limit`` 1000, what ``GET /v1/admin/quarantine?agent_id=`` runs) in an index holding
  100,000 pending items from 400 agents (one of them with 40% of the items).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "testdata" / "defense" / "corpus.jsonl"
TARGETS = {"defense.median_us": ("<=", 50.0), "quarantine.list_ms": ("<=", 200.0)}


def _defense_median_us(rounds: int = 20) -> float:
    from stemedb.defense import Thresholds, decide
    from stemedb.model import Assertion

    items = []
    for line in CORPUS.read_text().splitlines():
        a = orjson.loads(line)["assertion"]
        a = {**a, "agent_id": "a" * 64, "timestamp": "2026-01-01T00:00:00Z", "nonce": "abcdefgh"}
        items.append(Assertion.model_validate(a))
    t = Thresholds()
    samples = []
    timer = time.perf_counter_ns
    for _ in range(rounds):
        for a in items:
            start = timer()
            decide(a, thresholds=t, is_duplicate=False, trusted=True)
            samples.append(timer() - start)
    return statistics.median(samples) / 1000


def _quarantine_list_ms(items: int = 100_000, agents: int = 400) -> float:
    from stemedb import records
    from stemedb.index import IndexStore, entries_from
    from stemedb.index import admin as q
    from stemedb.journal import Journal

    flooder = "f" * 64
    ids = [flooder if i % 5 < 2 else f"{i % agents:064x}" for i in range(items)]
    verdict = {"reason": "LowQuality", "score": 0.1, "signals": []}
    with tempfile.TemporaryDirectory() as d:
        store = IndexStore(Path(d) / "index.sqlite3", bulk=True)

        def payloads():  # unsigned bodies: the index does not verify, only the engine does
            for i, agent in enumerate(ids, start=1):
                body = orjson.dumps({"subject": f"s{i}", "predicate": "p", "object": i,
                                     "confidence": 0.5, "agent_id": agent,
                                     "timestamp": "2026-01-01T00:00:00Z", "nonce": f"n{i:08d}"})
                yield records.SignedWrite("assert", body, "", i, verdict).encode()

        with Journal(Path(d) / "journal") as j:  # the index reads the bodies back from it
            written = j.append(list(payloads()))
        store.rebuild_from(entries_from(written), batch=10_000)
        store.finish_bulk()
        samples = []
        for _ in range(15):
            start = time.perf_counter()
            page = q.list_quarantine(store, status="pending", agent_prefix=flooder[:12],
                                     reason=None, limit=1000, cursor=None)
            samples.append(time.perf_counter() - start)
        assert len(page["items"]) == 1000 and page["total"] == items * 2 // 5
        store.close()
    return statistics.median(samples) * 1000


def run() -> dict[str, float]:
    return {"defense.median_us": round(_defense_median_us(), 2),
            "quarantine.list_ms": round(_quarantine_list_ms(), 2)}


if __name__ == "__main__":
    print(run())
