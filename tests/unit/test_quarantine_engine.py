"""Quarantine lifecycle in process: verdicts journaled, cap, retention, replay identity."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.ops.reindex import reindex
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, signed_headers

JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}


def _db(data: Path, **env: str) -> Database:
    return Database(load_settings(env=env, overrides={"server.data_dir": str(data)}))


def _run(db: Database, scenario: Any) -> Any:
    app = create_app(db, close_on_shutdown=False)
    auth = {"Authorization": f"Bearer {app.state.admin_token}"}

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            return await scenario(c, auth)

    return asyncio.run(go())


async def _post(c: httpx.AsyncClient, key: AgentKey, **fields: Any) -> httpx.Response:
    b = assertion_body(key, **fields)
    return await c.post("/v1/assert", content=b, headers=signed_headers(key, b))


def test_pending_cap_answers_429_and_stores_nothing(tmp_path: Path) -> None:
    db = _db(tmp_path / "d", STEMEDB_MAX_PENDING_PER_AGENT="3")
    key = AgentKey.generate()

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        codes = [(await _post(c, key, **JUNK, context=f"c{i}")).status_code for i in range(5)]
        assert codes == [202, 202, 202, 429, 429]
        listed = (await c.get("/v1/admin/quarantine", headers=auth)).json()
        assert listed["total"] == 3
        assert (await _post(c, key, subject="oslo", predicate="capital_of",
                            object="norway")).status_code == 201  # good writes still pass

    _run(db, scenario)
    db.close()


def test_rejected_items_leave_the_index_after_retention_and_replay_agrees(tmp_path: Path) -> None:
    data = tmp_path / "d"
    db = _db(data, STEMEDB_REJECTED_RETENTION_DAYS="0")
    key = AgentKey.generate()

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
        body = assertion_body(key, **JUNK)
        r = (await c.post("/v1/assert", content=body, headers=signed_headers(key, body))).json()
        keep = (await _post(c, key, **JUNK, context="other")).json()
        rej = await c.post(f"/v1/admin/quarantine/{r['quarantine_id']}/reject", headers=auth,
                           json={"reason": "junk"})
        assert rej.status_code == 200 and rej.json()["status"] == "rejected"
        assert await db.admin.purge_rejected() == 1
        assert (await c.get(f"/v1/admin/quarantine/{r['quarantine_id']}",
                            headers=auth)).status_code == 404
        assert (await c.get(f"/v1/assertions/{r['id']}")).status_code == 404
        assert (await c.get(f"/v1/admin/quarantine/{keep['quarantine_id']}",
                            headers=auth)).json()["status"] == "pending"
        audit = (await c.get("/v1/admin/audit", headers=auth)).json()["items"]
        assert [a["action"] for a in audit] == ["quarantine.purge", "quarantine.reject"]
        # the purged write's nonce stays taken: a retry is answered as it was first
        again = await c.post("/v1/assert", content=body, headers=signed_headers(key, body))
        assert again.status_code == 200 and again.json() == r
        return r

    _run(db, scenario)
    live = db.index.digest()
    db.close()
    _, rebuilt = reindex(data, digest=True)
    assert rebuilt == live


def test_verdicts_are_replayed_not_recomputed(tmp_path: Path) -> None:
    """A threshold change later does not rewrite what was quarantined before."""
    data = tmp_path / "d"
    db = _db(data)
    key = AgentKey.generate()

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        assert (await _post(c, key, **JUNK)).status_code == 202
        r = await c.put("/v1/admin/content_defense/thresholds", headers=auth,
                        json={"quality_threshold": 0.0})
        assert r.status_code == 200 and r.json()["quality_threshold"] == 0.0
        assert (await _post(c, key, **JUNK, context="x")).status_code == 201

    _run(db, scenario)
    live = db.index.digest()
    db.close()
    _, rebuilt = reindex(data, digest=True)
    assert rebuilt == live
    db = _db(data)
    assert db.defense.thresholds.quality_threshold == 0.0  # the runtime change survived
    db.close()


def test_changed_config_thresholds_win_at_start_and_are_journaled(tmp_path: Path) -> None:
    data = tmp_path / "d"
    db = _db(data)

    async def put(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        await c.put("/v1/admin/content_defense/thresholds", headers=auth,
                    json={"quality_threshold": 0.3})

    _run(db, put)
    db.close()
    # same config again: the runtime value stays
    db = _db(data)
    asyncio.run(db.start())
    asyncio.run(db.stop())
    assert db.defense.thresholds.quality_threshold == 0.3
    db.close()
    # the operator changes the config: it wins, and the change is in the audit log
    db = _db(data, STEMEDB_QUALITY_THRESHOLD="0.5")

    async def start_stop() -> None:
        await db.start()
        await db.stop()

    asyncio.run(start_stop())
    assert db.defense.thresholds.quality_threshold == 0.5
    audit = db.admin.audit(None, 10)["items"]
    assert audit[0]["by"] == "config" and audit[0]["action"] == "thresholds.set"
    db.close()


@pytest.mark.parametrize("confidence, code", [(0.9, 201), (0.97, 202)])
def test_untrusted_high_confidence(tmp_path: Path, confidence: float, code: int) -> None:
    db = _db(tmp_path / "d")
    key = AgentKey.generate()

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        r = await _post(c, key, confidence=confidence)
        assert r.status_code == code, r.text
        if code == 202:
            assert r.json()["reason"] == "UntrustedHighConfidence"

    _run(db, scenario)
    db.close()


def test_a_quarantine_reports_the_agents_trust(tmp_path: Path) -> None:
    """Trust decides only high-confidence writes, so the gate reads an agent's counters
    only when it needs them; a quarantined write's breakdown still reports the agent's
    real trust, single or in a batch."""
    from stemedb.defense import TrustCounts, is_trusted, trust_score

    db = _db(tmp_path / "d")
    key = AgentKey.generate()
    good = [assertion_body(key, subject=f"city {i}", predicate="in", object="norway")
            for i in range(6)]

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        for b in good:
            assert (await c.post("/v1/assert", content=b,
                                 headers=signed_headers(key, b))).status_code == 201
        history = TrustCounts(accepted=6)
        assert is_trusted(history)
        r = await _post(c, key, **JUNK)  # LowQuality at confidence 0.8: trust not needed
        assert r.status_code == 202
        item = (await c.get(f"/v1/admin/quarantine/{r.json()['quarantine_id']}",
                            headers=auth)).json()
        assert item["reason"] == "LowQuality"
        assert item["breakdown"]["trust"] == trust_score(history)
        assert item["breakdown"]["trusted"] is True
        results = await _batch(c, key, [assertion_body(key, **JUNK, context="b")])
        item = (await c.get(f"/v1/admin/quarantine/{results[0]['quarantine_id']}",
                            headers=auth)).json()
        pending = TrustCounts(accepted=6, quarantined=1)
        assert item["breakdown"]["trust"] == trust_score(pending)

    _run(db, scenario)
    db.close()


async def _batch(c: httpx.AsyncClient, key: AgentKey, bodies: list[bytes]) -> list[dict[str, Any]]:
    items = [{"body": b.decode(), "signature": key.sign_b64(b)} for b in bodies]
    r = await c.post("/v1/assert/batch", json={"items": items})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


def test_a_batch_checks_its_items_against_each_other(tmp_path: Path) -> None:
    """Within one batch, a repeat of an earlier item's content is its Duplicate, and the
    pending cap counts the batch's own quarantined items."""
    db = _db(tmp_path / "d", STEMEDB_MAX_PENDING_PER_AGENT="2")
    key = AgentKey.generate()
    fact = {"subject": "oslo", "predicate": "capital_of", "object": "norway"}
    bodies = [assertion_body(key, **fact), assertion_body(key, **fact),
              *(assertion_body(key, **JUNK, context=f"c{i}") for i in range(3))]

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        results = await _batch(c, key, bodies)
        assert [r["status"] for r in results] == ["accepted", "quarantined", "quarantined",
                                                  "error", "error"]
        assert results[1]["reason"] == "Duplicate"
        assert [r["error"]["status"] for r in results[3:]] == [429, 429]
        listed = (await c.get("/v1/admin/quarantine", headers=auth)).json()
        assert listed["total"] == 2
        # nothing of the refused items was stored: the same writes later are new writes
        assert db.index.count("writes") == 3

    _run(db, scenario)
    db.close()


def test_an_allowlist_change_applies_to_the_next_write(tmp_path: Path) -> None:
    db = _db(tmp_path / "d")
    key = AgentKey.generate()

    async def scenario(c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        assert (await _post(c, key, **JUNK)).status_code == 202
        r = await c.post("/v1/admin/content_defense/allowlist", headers=auth, json={
            "agent_id": key.agent_id, "expires_at": "2099-01-01T00:00:00Z", "reason": "bulk"})
        assert r.status_code == 201, r.text
        assert (await _post(c, key, **JUNK, context="x")).status_code == 201
        r = await c.request("DELETE", f"/v1/admin/content_defense/allowlist/{key.agent_id}", headers=auth,
                            json={"reason": "done"})
        assert r.status_code == 200, r.text
        assert (await _post(c, key, **JUNK, context="y")).status_code == 202

    _run(db, scenario)
    db.close()
