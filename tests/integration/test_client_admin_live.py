"""``client.admin`` against a real server: every admin endpoint through the SDK, sync and
async, with the server's answers and problems as they come."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stemedb.client import ApiError, AsyncClient, Client
from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body

pytestmark = pytest.mark.integration

TOKEN = "sdk-admin-token-5be1"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"STEMEDB_ADMIN_TOKEN": TOKEN, "STEMEDB_RATE_LIMIT_ADMIN_RATE": "0"}
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


def junk(db: Client, n: int) -> list[str]:
    """``n`` writes content defense quarantines; their quarantine ids."""
    out = []
    for _ in range(n):
        key = db.key
        assert key is not None
        answer = db.post_signed(assertion_body(key, subject="asdfasdf", object="!!!!!!!!",
                                               evidence=...))  # fmt: skip
        assert answer["status"] == "quarantined", answer
        out.append(answer["quarantine_id"])
    return out


def test_every_admin_endpoint_through_the_sync_client(srv: ServerProcess) -> None:
    key = AgentKey.generate()
    with Client(srv.url, key, admin_token=TOKEN, admin_actor="carol") as db:
        first, second, third = junk(db, 3)

        page = db.admin.quarantine(agent_id=key.agent_id[:8], limit=2)
        assert page["total"] == 3 and len(page["items"]) == 2 and page["next_cursor"]
        pages = list(db.admin.quarantine_pages(limit=2))
        assert [i["id"] for p in pages for i in p["items"]] == [third, second, first]

        item = db.admin.add_note(first, "a person looked at it")
        assert item["notes"][0]["by"] == "admin:carol"
        assert db.admin.quarantine_item(first)["signals"]
        assert db.admin.approve(first, note="fine after all")["status"] == "approved"
        with pytest.raises(ApiError) as info:
            db.admin.reject(first, "too late")
        assert info.value.status == 409 and info.value.problem["current"]["status"] == "approved"
        done = db.admin.batch("reject", agent_id=key.agent_id, reason="junk")
        assert done["processed"] == 2 and db.admin.quarantine()["total"] == 0

        good = db.assert_("paris", "capital_of", "france", 0.8,
                          evidence=["https://example.org/atlas#p12"])  # fmt: skip
        assert good["status"] == "accepted", good
        retracted = db.admin.retract(good["id"], "published by mistake")
        assert retracted["status"] == "retracted" and db.get(good["id"])["status"] == "retracted"

        opened = db.admin.open_breaker(key.agent_id, "flooding", 600)
        assert opened["state"] == "OPEN"
        assert db.admin.breaker(key.agent_id[:12])["state"] == "OPEN"
        assert [b["agent_id"] for b in db.admin.breakers()["circuit_breakers"]] == [key.agent_id]
        assert db.admin.reset_breaker(key.agent_id, "owner fixed it")["state"] == "CLOSED"

        before = db.admin.thresholds()
        changed = db.admin.set_thresholds({"quality_threshold": 0.7})
        assert changed == {**before, "quality_threshold": 0.7}

        until = datetime.now(UTC) + timedelta(hours=2)
        entry = db.admin.allow(key.agent_id, until, "backfill")
        assert entry["agent_id"] == key.agent_id and entry["added_by"] == "admin:carol"
        listed = db.admin.allowlist()["allowlist"]
        assert [(e["agent_id"], e["active"]) for e in listed] == [(key.agent_id, True)]
        assert db.admin.disallow(key.agent_id)["status"] == "removed"
        assert db.admin.allowlist()["allowlist"] == []

        actions = [e["action"] for e in db.admin.audit(limit=50)["items"]]
        assert {"quarantine.approve", "quarantine.note", "breaker.open", "breaker.reset",
                "allowlist.add", "allowlist.remove"} <= set(actions)  # fmt: skip
        assert all(e["by"] == "admin:carol" for e in db.admin.audit(target=first)["items"])


def test_async_client_and_refused_tokens(srv: ServerProcess) -> None:
    key = AgentKey.generate()
    with Client(srv.url, key) as writer:
        (qid,) = junk(writer, 1)

    async def review() -> dict[str, Any]:
        async with AsyncClient(srv.url, admin_token=TOKEN) as db:
            assert (await db.admin.quarantine())["total"] == 1
            assert (await db.admin.quarantine_item(qid))["status"] == "pending"
            return await db.admin.acting_as("dave").reject(qid, "junk")

    rejected = asyncio.run(review())
    assert rejected["status"] == "rejected" and rejected["decided_by"] == "admin:dave"

    for token in (None, "wrong"):
        with Client(srv.url, admin_token=token) as db, pytest.raises(ApiError) as info:
            db.admin.breakers()
        assert info.value.status == 401
