"""Admin retraction (SPEC §3: "admins can via the admin API"): any agent's active
assertion, journaled with who and why, replayed identically, visible everywhere a
retraction is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stemedb.ops.reindex import reindex
from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}


def _post(srv: ServerProcess, key: AgentKey, **fields: object) -> httpx.Response:
    body = assertion_body(key, **fields)
    return httpx.post(srv.url + "/v1/assert", content=body, headers=signed_headers(key, body))


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    p: dict = r.json()
    assert p["status"] == status and p["instance"] == r.headers["x-request-id"]
    return p


def _state(srv: ServerProcess, aid: str, agent: str) -> tuple:
    a = httpx.get(f"{srv.url}/v1/assertions/{aid}").json()
    active = httpx.get(srv.url + "/v1/assertions", params={"subject": "oslo"}).json()["items"]
    beliefs = httpx.get(srv.url + "/v1/beliefs",
                        params={"subject": "oslo", "predicate": "capital_of"}).json()
    counts = httpx.get(f"{srv.url}/v1/agents/{agent}").json()["counts"]
    return (a["status"], a.get("ended_by"), [x["id"] for x in active],
            [c["object"] for c in beliefs["candidates"]], counts["retracted"])


def test_an_admin_retracts_any_agents_assertion(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "d").start()
    try:
        token = (srv.data_dir / "admin.token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}", "X-Admin-Actor": "alice"}
        key, other = AgentKey.generate(), AgentKey.generate()
        aid = _post(srv, key, subject="oslo", predicate="capital_of", object="sweden").json()["id"]
        kept = _post(srv, other, subject="oslo", predicate="capital_of", object="norway").json()["id"]
        # the beliefs answer is cached now; the retraction must invalidate it
        assert sorted(_state(srv, aid, key.agent_id)[3]) == ["norway", "sweden"]
        url = f"{srv.url}/v1/admin/assertions/{aid}/retract"
        audit_url = srv.url + "/v1/admin/audit"
        decisions = httpx.get(audit_url, headers=auth).json()["items"]

        # refused requests change nothing
        _problem(httpx.post(url, json={"reason": "poison"}), 401)
        p = _problem(httpx.post(url, headers=auth, json={}), 422)
        assert p["errors"][0]["field"] == "reason"
        _problem(httpx.post(url, headers=auth, json={"reason": "x", "extra": 1}), 422)
        _problem(httpx.post(f"{srv.url}/v1/admin/assertions/{'0' * 64}/retract", headers=auth,
                            json={"reason": "x"}), 404)
        assert httpx.get(audit_url, headers=auth).json()["items"] == decisions
        assert _state(srv, aid, key.agent_id)[0] == "active"

        r = httpx.post(url, headers=auth, json={"reason": "known poison, see INC-7"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["status"] == "retracted" and out["id"] == aid
        assert out["agent_id"] == key.agent_id and out["by"] == "admin:alice" and out["lsn"] > 2
        status, ended_by, active, objects, retracted = _state(srv, aid, key.agent_id)
        assert (status, ended_by, active, objects, retracted) == (
            "retracted", "admin:alice", [kept], ["norway"], 1)
        audit = httpx.get(audit_url, headers=auth, params={"target": aid}).json()["items"]
        assert [(a["action"], a["by"], a["detail"]["reason"]) for a in audit] == [
            ("assertion.retract", "admin:alice", "known poison, see INC-7")]

        # twice: 409 with the status it has now; a quarantined one: reject it instead
        assert "retracted" in _problem(httpx.post(url, headers=auth, json={"reason": "again"}),
                                       409)["detail"]
        q = _post(srv, key, **JUNK)
        assert q.status_code == 202
        p = _problem(httpx.post(f"{srv.url}/v1/admin/assertions/{q.json()['id']}/retract",
                                headers=auth, json={"reason": "x"}), 409)
        assert "reject its quarantine item" in p["detail"]

        # the CLI does the same
        third = _post(srv, other, subject="oslo", predicate="capital_of", object="norge")
        cli = subprocess.run([sys.executable, "-m", "stemedb", "admin", "retract",
                              third.json()["id"], "--reason", "typo", "--url", srv.url,
                              "--data-dir", str(srv.data_dir)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert f"retracted {third.json()['id']}" in cli.stdout
        before = _state(srv, aid, key.agent_id)
    finally:
        assert srv.stop() == 0
    live = _live_digest(srv.data_dir)
    _, rebuilt = reindex(srv.data_dir, digest=True)
    assert rebuilt == live
    srv.start()
    try:
        assert _state(srv, aid, key.agent_id) == before
    finally:
        srv.stop()


def _live_digest(data_dir: Path) -> str:
    from stemedb.index import IndexStore

    store = IndexStore(data_dir / "index.sqlite3")
    try:
        return store.digest()
    finally:
        store.close()
