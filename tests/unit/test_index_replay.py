"""Applying records in batches (the live path) and in bulk (reindex, restore) gives the
same index as applying them one at a time, on journals with every awkward case: a write
or a nonce journaled twice, supersedes and retractions of earlier, later and unknown
assertions, quarantine decisions, purges, and text that needs NFC or escaping; and the
full-text index, which trails the rows on the live path, comes out the same whenever it
is brought up."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from stemedb import records
from stemedb.index import Entry, IndexStore
from stemedb.model import trusted_assertion, trusted_retraction
from tests.helpers import journaled_entries

TEXTS = ["plain", "e\u0301t\u00e9", "  spaced  ", "nul\x00in", "emoji \U0001f600", "tab\tnl\n",
         "\u212b", "Stra\u00dfe"]


def _journal(seed: int, n: int, admin_rate: float) -> list[dict[str, Any]]:
    """Decoded journal payloads, in LSN order."""
    rnd = random.Random(seed)
    agents = [hashlib.sha256(f"agent{i}".encode()).hexdigest() for i in range(4)]
    signed: list[dict[str, Any]] = []
    aids: list[str] = []
    qids: list[str] = []
    out: list[dict[str, Any]] = []
    at = 1_700_000_000_000_000
    later = _later(rnd, agents, -1)  # an assertion referred to before it is journaled
    for i in range(n):
        at += rnd.choice([1, 1000, -5])  # the clock may step back
        r = rnd.random()
        if r < 0.05 and signed:  # the same write journaled again
            out.append(dict(rnd.choice(signed), at=at))
            continue
        if r < 0.05 + admin_rate and qids:
            action = rnd.choice(["quarantine.approve", "quarantine.reject", "quarantine.note",
                                 "quarantine.purge", "allowlist.add", "breaker.open"])
            fields: dict[str, Any] = {}
            if action == "quarantine.purge":
                fields["before"] = at + rnd.choice([-10**6, 10**9])
            elif action.startswith("quarantine."):
                fields = {"id": rnd.choice(qids), "note": rnd.choice(TEXTS), "reason": "r"}
            elif action == "allowlist.add":
                fields = {"agent_id": rnd.choice(agents), "expires_at": "2030-01-01T00:00:00Z",
                          "expires_us": 1_900_000_000_000_000, "reason": "r"}
            else:
                fields = {"agent_id": rnd.choice(agents), "reason": "x", "duration_seconds": 3.5}
            out.append(orjson.loads(records.admin_record(action, "admin", at, **fields)))
            continue
        if rnd.random() < 0.03:  # the assertion earlier records referred to arrives
            data = orjson.loads(records.SignedWrite(records.ASSERT, later, "c2ln", at).encode())
            signed.append(data)
            out.append(data)
            aids.append(hashlib.sha256(later).hexdigest())
            later = _later(rnd, agents, i)
            continue
        agent = rnd.choice(agents)
        nonce = f"nonce-{i:08d}"
        if rnd.random() < 0.04 and signed:  # a nonce of the same agent used again
            prior = orjson.loads(rnd.choice(signed)["body"])
            agent, nonce = prior["agent_id"], prior["nonce"]
        verdict = None
        if r < 0.15 and aids:
            body = {"retracts": rnd.choice(aids + [hashlib.sha256(later).hexdigest()]),
                    "agent_id": agent, "timestamp": "2026-01-01T00:00:00Z", "nonce": nonce,
                    "reason": rnd.choice(TEXTS)}
            kind = records.RETRACT
        else:
            body = {"subject": f"{rnd.choice(TEXTS)} {i % 11}", "predicate": rnd.choice(["is", " has "]),
                    "object": rnd.choice([rnd.choice(TEXTS), {"b": 1, "a": ["e\u0301"]}, 42, 0.1 + 0.2]),
                    "confidence": rnd.choice([0.5, 1, 0.30000000000000004, rnd.random()]),
                    "agent_id": agent, "timestamp": "2026-02-11T10:23:45.123+01:00", "nonce": nonce}
            if rnd.random() < 0.5:
                body["context"] = rnd.choice(TEXTS)
            if rnd.random() < 0.5:
                body["evidence"] = [f"https://example.org/{i}"]
            if rnd.random() < 0.3 and aids:
                body["supersedes"] = rnd.choice(aids)
            elif rnd.random() < 0.05:  # an assertion that arrives later (or never)
                body["supersedes"] = hashlib.sha256(later).hexdigest()
            kind = records.ASSERT
            if rnd.random() < 0.2:
                verdict = {"reason": rnd.choice(["Duplicate", "LowQuality"]),
                           "score": rnd.choice([0.25, 1, 0.1 + 0.7]), "signals": ["s"]}
        raw = orjson.dumps(body)
        data = orjson.loads(records.SignedWrite(kind, raw, "c2ln", at, verdict).encode())
        signed.append(data)
        out.append(data)
        if kind == records.ASSERT:
            aid = hashlib.sha256(raw).hexdigest()
            aids.append(aid)
            if verdict is not None:
                qids.append(hashlib.sha256(b"quarantine:" + aid.encode()).hexdigest()[:32])
    return out


def _later(rnd: random.Random, agents: list[str], i: int) -> bytes:
    return orjson.dumps({"subject": f"later {i}", "predicate": "is", "object": "plain",
                         "confidence": 0.5, "agent_id": rnd.choice(agents),
                         "timestamp": "2026-01-01T00:00:00Z", "nonce": f"later-{i:08d}"})


def _entries(journaled: list[Entry], parsed: bool) -> list[Entry]:
    out = []
    for e in journaled:
        d = e.data
        if parsed and d["t"] in records.SIGNED_KINDS:
            # as the live path hands them over (journals written before control characters
            # were refused still hold some: replay must apply them the same way)
            parse = trusted_assertion if d["t"] == records.ASSERT else trusted_retraction
            e = e._replace(parsed=parse(d["body"].encode()))
        out.append(e)
    return out


def _state(store: IndexStore) -> tuple[str, list[int], str]:
    store.flush_search()  # as every search does first
    assert store.search_lag_records == 0
    conn = sqlite3.connect(store.path)  # the full-text index agrees with its rows
    try:
        conn.execute("INSERT INTO assertions_fts (assertions_fts) VALUES ('integrity-check')")
    finally:
        conn.close()
    found = [r[0] for r in store.query(
        "SELECT rowid FROM assertions_fts WHERE assertions_fts MATCH 'plain OR strasse OR ete'"
        " ORDER BY rowid", [])]
    check = store.query("PRAGMA integrity_check", [])[0][0]
    return store.digest(), found, check


@pytest.mark.parametrize(("seed", "admin_rate"), [(1, 0.08), (2, 0.08), (3, 0.002)])
def test_batches_and_bulk_equal_one_record_at_a_time(tmp_path: Path, seed: int,
                                                     admin_rate: float) -> None:
    payloads = journaled_entries(tmp_path / "journal", _journal(seed, 1200, admin_rate))

    one = IndexStore(tmp_path / "one.sqlite3")
    for e in _entries(payloads, parsed=False):
        one.apply([e])
    expected = _state(one)
    one.close()
    assert expected[1] and expected[2] == "ok"

    live = IndexStore(tmp_path / "live.sqlite3")
    entries = _entries(payloads, parsed=True)
    rnd = random.Random(seed)
    i = 0
    while i < len(entries):
        k = rnd.randint(1, 64)
        live.apply(entries[i:i + k])
        i += k
        if rnd.random() < 0.3:  # the checkpoint thread's rounds, or a search
            live.flush_search()
    assert _state(live) == expected
    live.close()

    for batch in (97, 5000):
        bulk = IndexStore(tmp_path / f"bulk{batch}.sqlite3", bulk=True)
        assert bulk.rebuild_from(iter(_entries(payloads, parsed=False)), batch=batch) == 1200
        assert bulk.finish_bulk(digest=True) == expected[0]
        assert _state(bulk) == expected
        bulk.close()


def test_rebuild_reports_a_failed_batch_and_keeps_the_batches_before(tmp_path: Path) -> None:
    payloads = journaled_entries(tmp_path / "journal", _journal(4, 300, 0.0))
    entries = _entries(payloads, parsed=False)
    bad = Entry(301, b"\x00" * 32, {"t": "nonsense", "at": 1})
    store = IndexStore(tmp_path / "x.sqlite3", bulk=True)
    with pytest.raises(KeyError):
        store.rebuild_from(iter([*entries, bad]), batch=100)
    assert store.applied()[0] == 300
    store.close()
