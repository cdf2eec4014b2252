"""Enrollment through the real ASGI app, in process: batches refuse item by item,
supersedes and retractions are held to the namespaces, quarantine items are marked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, now_rfc3339, signed_headers

TOKEN = "unit-enroll-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _db(tmp_path: Path, mode: str) -> Database:
    return Database(load_settings(env={}, overrides={
        "server.data_dir": str(tmp_path / "d"), "admin.token": TOKEN,
        "agents.enrollment": mode}))


def _run(db: Database, scenario: Any) -> None:
    app = create_app(db, close_on_shutdown=False)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            await scenario(c)

    try:
        asyncio.run(main())
    finally:
        db.close()


def _item(key: AgentKey, **fields: Any) -> dict[str, str]:
    body = assertion_body(key, **fields)
    return {"body": body.decode(), "signature": key.sign_b64(body)}


def test_a_batch_refuses_each_item_of_a_refused_key(tmp_path: Path) -> None:
    bot, stranger = AgentKey.generate(), AgentKey.generate()

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.post(f"/v1/admin/agents/{bot.agent_id}/enroll", headers=AUTH,
                         json={"namespaces": ["geo"]})
        assert r.status_code == 201, r.text
        items = [_item(bot, context="geo/eu", subject="a"), _item(stranger, context="geo"),
                 _item(bot, context="bio", subject="b"), _item(bot, context="geo", subject="c")]
        r = await c.post("/v1/assert/batch", content=orjson.dumps({"items": items}),
                         headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        got = [(x["status"], x.get("error", {}).get("type", "").rsplit("/", 1)[-1])
               for x in r.json()["results"]]
        assert got == [("accepted", ""), ("error", "agent-not-enrolled"),
                       ("error", "outside-namespace"), ("accepted", "")]

    _run(_db(tmp_path, "registered"), scenario)


def test_supersede_and_retract_are_held_to_the_current_namespaces(tmp_path: Path) -> None:
    bot = AgentKey.generate()

    async def post(c: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
        return await c.post(path, content=body, headers=signed_headers(bot, body))

    async def scenario(c: httpx.AsyncClient) -> None:
        b = assertion_body(bot, context="old/team", subject="team charter")
        r = await post(c, "/v1/assert", b)
        assert r.status_code == 201, r.text
        first = r.json()["id"]
        # open mode: unenrolled keys write anywhere; enrolling narrows the key
        r = await c.post(f"/v1/admin/agents/{bot.agent_id}/enroll", headers=AUTH,
                         json={"namespaces": ["new"]})
        assert r.status_code == 201
        r = await post(c, "/v1/assert", assertion_body(bot, context="new", subject="team charter",
                                                       supersedes=first))
        assert r.status_code == 403 and r.json()["type"].endswith("/outside-namespace")
        rb = orjson.dumps({"retracts": first, "reason": "wrong", "agent_id": bot.agent_id,
                           "timestamp": now_rfc3339(), "nonce": "retract-0001"})
        r = await post(c, "/v1/retract", rb)
        assert r.status_code == 403 and r.json()["type"].endswith("/outside-namespace")
        got = (await c.get(f"/v1/assertions/{first}")).json()
        assert got["status"] == "active" and "revoked_key" not in got

    _run(_db(tmp_path, "open"), scenario)


def test_a_revoked_keys_quarantine_items_are_marked(tmp_path: Path) -> None:
    bot = AgentKey.generate()

    async def scenario(c: httpx.AsyncClient) -> None:
        b = assertion_body(bot, subject="asdfasdf", predicate="qwerty", object="!!!!!!!!!!!!")
        r = await c.post("/v1/assert", content=b, headers=signed_headers(bot, b))
        assert r.status_code == 202, r.text
        qid = r.json()["quarantine_id"]
        r = await c.post(f"/v1/admin/agents/{bot.agent_id[:10]}/revoke", headers=AUTH,
                         json={"reason": "leaked"})
        assert r.status_code == 200, r.text
        lsn = r.json()["revoked_lsn"]
        item = (await c.get(f"/v1/admin/quarantine/{qid}", headers=AUTH)).json()
        assert item["assertion"]["revoked_key"]["revoked_lsn"] == lsn
        page = (await c.get("/v1/admin/quarantine", headers=AUTH)).json()
        assert page["items"][0]["assertion"]["revoked_key"]["reason"] == "leaked"
        view = (await c.get(f"/v1/agents/{bot.agent_id}")).json()
        assert (view["enrollment"], view["revoked_lsn"], view["revocation_reason"]) == (
            "revoked", lsn, "leaked")

    _run(_db(tmp_path, "open"), scenario)
