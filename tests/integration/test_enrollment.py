"""Agent enrollment and revocation against a real server (docs/admin.md#agent-enrollment-
and-revocation): registered mode refuses unenrolled and revoked keys (403, nothing
stored, counted by the breaker), enrolled keys are held to their namespaces, revocation
takes a sybil ring out of beliefs from its LSN on, and all of it survives a restart and
``stemedb reindex``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stemedb.index import IndexStore
from stemedb.ops.reindex import reindex
from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, now_rfc3339, signed_headers

pytestmark = pytest.mark.integration

TOKEN = "enrollment-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Admin-Actor": "alice"}


def _post(srv: ServerProcess, key: AgentKey, **fields: Any) -> httpx.Response:
    body = assertion_body(key, **fields)
    return httpx.post(srv.url + "/v1/assert", content=body, headers=signed_headers(key, body))


def _retract(srv: ServerProcess, key: AgentKey, target: str) -> httpx.Response:
    body = orjson.dumps({"retracts": target, "reason": "wrong", "agent_id": key.agent_id,
                         "timestamp": now_rfc3339(), "nonce": f"r-{target[:12]}"})
    return httpx.post(srv.url + "/v1/retract", content=body, headers=signed_headers(key, body))


def _problem(r: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    p: dict[str, Any] = r.json()
    assert p["status"] == status and p["instance"] == r.headers["x-request-id"]
    if kind is not None:
        assert p["type"].endswith("/" + kind), p
    return p


def _enroll(srv: ServerProcess, key: AgentKey | str, body: Any) -> httpx.Response:
    agent = key if isinstance(key, str) else key.agent_id
    return httpx.post(f"{srv.url}/v1/admin/agents/{agent}/enroll", headers=AUTH, json=body)


def _revoke(srv: ServerProcess, key: AgentKey, body: Any) -> httpx.Response:
    return httpx.post(f"{srv.url}/v1/admin/agents/{key.agent_id}/revoke", headers=AUTH,
                      json=body)


def _stored(srv: ServerProcess, key: AgentKey) -> list[str]:
    items = httpx.get(srv.url + "/v1/assertions", params={
        "agent_id": key.agent_id, "include_inactive": "true"}).json()["items"]
    return [x["id"] for x in items]


def _audit(srv: ServerProcess) -> list[Any]:
    items: list[Any] = httpx.get(srv.url + "/v1/admin/audit", headers=AUTH).json()["items"]
    return items


def _live_digest(data_dir: Path) -> str:
    store = IndexStore(data_dir / "index.sqlite3")
    try:
        return store.digest()
    finally:
        store.close()


def _state(srv: ServerProcess, keys: list[AgentKey], aid: str) -> tuple[Any, ...]:
    agents = httpx.get(srv.url + "/v1/admin/agents", headers=AUTH).json()
    views = [{k: v for k, v in httpx.get(f"{srv.url}/v1/agents/{key.agent_id}").json().items()
              if k in ("enrollment", "namespaces", "revoked_lsn", "revocation_reason")}
             for key in keys]
    return agents, views, httpx.get(f"{srv.url}/v1/assertions/{aid}").json()


def test_registered_mode_refuses_unenrolled_revoked_and_out_of_namespace_writes(
        tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={
        "STEMEDB_ADMIN_TOKEN": TOKEN, "STEMEDB_AGENTS_ENROLLMENT": "registered",
        "STEMEDB_BREAKER_MIN_REQUESTS": "4",
        "STEMEDB_BREAKER_FAILURE_RATE_THRESHOLD": "0.9"}).start()
    stranger, bot, idle = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    try:
        # unenrolled: 403, nothing stored, and each refusal counts for its breaker
        for i in range(4):
            _problem(_post(srv, stranger, context="geo", subject=f"s{i}"), 403,
                     "agent-not-enrolled")
        assert _stored(srv, stranger) == []
        r = _post(srv, stranger, context="geo")
        assert r.status_code == 429 and r.headers["x-circuit-breaker-state"] == "OPEN"

        # enrolling needs a namespace (fails closed); bad input changes nothing
        decisions = _audit(srv)
        p = _problem(_enroll(srv, bot, {"note": "geo bot"}), 422)
        assert p["errors"][0]["field"] == "namespaces"
        assert "at least one namespace" in p["errors"][0]["message"]
        _problem(_enroll(srv, bot, {"namespaces": []}), 422)
        _problem(_enroll(srv, bot, None), 422)
        _problem(_enroll(srv, bot, {"namespaces": ["geo//eu"]}), 422)
        _problem(_enroll(srv, bot, {"namespaces": ["geo"], "extra": 1}), 422)
        _problem(httpx.post(f"{srv.url}/v1/admin/agents/{bot.agent_id}/enroll",
                            json={"namespaces": ["geo"]}), 401)
        assert _audit(srv) == decisions

        r = _enroll(srv, bot, {"namespaces": ["geo/", "geo/eu"], "note": "geo bot"})
        assert r.status_code == 201, r.text
        out = r.json()
        assert (out["status"], out["agent_id"], out["namespaces"], out["note"],
                out["enrolled_by"], out["replaced"]) == (
            "enrolled", bot.agent_id, ["geo", "geo/eu"], "geo bot", "admin:alice", False)

        # an enrolled key writes only into its namespaces
        ok = _post(srv, bot, context="geo/eu/paris")
        assert ok.status_code == 201, ok.text
        _problem(_post(srv, bot, context="geography"), 403, "outside-namespace")
        _problem(_post(srv, bot, subject="no context"), 403, "outside-namespace")
        assert _stored(srv, bot) == [ok.json()["id"]]

        # enrolling again replaces the namespaces and the note
        r = _enroll(srv, bot, {"namespaces": ["*"], "note": "everything"})
        assert r.status_code == 201 and r.json()["replaced"] is True
        anywhere = _post(srv, bot, subject="no context either")
        assert anywhere.status_code == 201, anywhere.text

        # a key enrolled before it ever wrote is known
        assert _enroll(srv, idle, {"namespaces": ["lab"]}).status_code == 201
        view = httpx.get(f"{srv.url}/v1/agents/{idle.agent_id}").json()
        assert (view["enrollment"], view["namespaces"], view["counts"]["accepted"]) == (
            "enrolled", ["lab"], 0)
        assert httpx.get(f"{srv.url}/v1/agents/{bot.agent_id}").json()["namespaces"] == ["*"]

        # revocation: final, refuses assertions and retractions, keeps history
        _problem(_revoke(srv, bot, {}), 422)
        r = _revoke(srv, bot, {"reason": "key leaked, INC-12"})
        assert r.status_code == 200, r.text
        revoked_lsn = r.json()["revoked_lsn"]
        assert r.json()["status"] == "revoked" and r.json()["revoked_by"] == "admin:alice"
        _problem(_post(srv, bot, context="geo"), 403, "agent-revoked")
        _problem(_retract(srv, bot, ok.json()["id"]), 403, "agent-revoked")
        _problem(_enroll(srv, bot, {"namespaces": ["*"]}), 409)
        _problem(_revoke(srv, bot, {"reason": "again"}), 409)
        got = httpx.get(f"{srv.url}/v1/assertions/{ok.json()['id']}").json()
        assert got["status"] == "active"
        assert got["revoked_key"]["revoked_lsn"] == revoked_lsn
        assert got["revoked_key"]["reason"] == "key leaked, INC-12"

        listing = httpx.get(srv.url + "/v1/admin/agents", headers=AUTH).json()
        assert listing["enrollment"] == "registered"
        by_id = {a["agent_id"]: a for a in listing["agents"]}
        assert set(by_id) == {bot.agent_id, idle.agent_id}
        assert (by_id[bot.agent_id]["enrollment"], by_id[bot.agent_id]["namespaces"],
                by_id[bot.agent_id]["note"], by_id[bot.agent_id]["revoked_lsn"]) == (
            "revoked", ["*"], "everything", revoked_lsn)
        assert by_id[idle.agent_id]["enrollment"] == "enrolled"
        actions = [a["action"] for a in httpx.get(
            srv.url + "/v1/admin/audit", headers=AUTH,
            params={"target": bot.agent_id}).json()["items"]]
        assert actions == ["agent.revoke", "agent.enroll", "agent.enroll"]
        before = _state(srv, [bot, idle], ok.json()["id"])
    finally:
        assert srv.stop() == 0

    # the same state after `stemedb reindex` and a restart
    live = _live_digest(srv.data_dir)
    _, rebuilt = reindex(srv.data_dir, digest=True)
    assert rebuilt == live
    srv.start()
    try:
        assert _state(srv, [bot, idle], ok.json()["id"]) == before
        _problem(_post(srv, bot, context="geo"), 403, "agent-revoked")
        _problem(_post(srv, AgentKey.generate(), context="lab"), 403, "agent-not-enrolled")
        assert _post(srv, idle, context="lab/x").status_code == 201
        _problem(_post(srv, idle, context="geo"), 403, "outside-namespace")
    finally:
        srv.stop()


def _cli(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stemedb", "admin", "agent", *args,
                           "--url", srv.url, "--data-dir", str(srv.data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "STEMEDB_ADMIN_TOKEN": TOKEN})


def _belief(srv: ServerProcess, as_of: str | None = None) -> dict[str, Any]:
    params = {"subject": "berlin", "predicate": "capital_of"}
    if as_of:
        params["as_of"] = as_of
    out: dict[str, Any] = httpx.get(srv.url + "/v1/beliefs", params=params).json()
    return out


def test_revoking_a_sybil_ring_flips_the_belief_back(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": TOKEN}).start()
    honest = AgentKey.generate()
    sybils = [AgentKey.generate() for _ in range(2)]
    try:
        assert _post(srv, honest, subject="berlin", object="germany",
                     evidence=["https://example.org/atlas#berlin"]).status_code == 201
        bad = [_post(srv, k, subject="berlin", object="france",
                     evidence=[f"https://example.org/{k.agent_id[:8]}"]) for k in sybils]
        assert [r.status_code for r in bad] == [201, 201]
        poisoned = _belief(srv)
        assert poisoned["candidates"][0]["object"] == "france"
        assert _belief(srv) == poisoned  # served from the belief cache

        for k in sybils:
            r = _cli(srv, "revoke", k.agent_id[:12], "--reason", "sybil ring, INC-9")
            assert r.returncode == 0, r.stderr
            assert f"revoked {k.agent_id}" in r.stdout
        first = httpx.get(f"{srv.url}/v1/agents/{sybils[0].agent_id}").json()
        assert first["enrollment"] == "revoked" and first["revocation_reason"] == "sybil ring, INC-9"
        lsn = first["revoked_lsn"]

        healed = _belief(srv)
        assert [c["object"] for c in healed["candidates"]] == ["germany"]
        assert _belief(srv, f"lsn:{lsn - 1}")["candidates"] == poisoned["candidates"]
        # history: readable, marked from the revocation on, unmarked as of before it
        aid = bad[0].json()["id"]
        assert httpx.get(f"{srv.url}/v1/assertions/{aid}").json()["revoked_key"]["revoked_lsn"] == lsn
        now = httpx.get(srv.url + "/v1/assertions", params={"agent_id": sybils[0].agent_id}).json()
        assert [x["id"] for x in now["items"]] == [aid] and "revoked_key" in now["items"][0]
        then = httpx.get(srv.url + "/v1/assertions", params={
            "agent_id": sybils[0].agent_id, "as_of": f"lsn:{lsn - 1}"}).json()
        assert [x["id"] for x in then["items"]] == [aid] and "revoked_key" not in then["items"][0]
        # in open mode, an unenrolled key still writes; a revoked one does not
        _problem(_post(srv, sybils[1], subject="berlin", object="spain"), 403, "agent-revoked")
        assert _post(srv, AgentKey.generate(), subject="rome").status_code == 201

        # the CLI's enroll, list and show
        r = _cli(srv, "enroll", honest.agent_id, "--namespace", "geo", "--note", "atlas")
        assert r.returncode == 0, r.stderr
        assert "enrolled" in r.stdout and "geo" in r.stdout
        r = _cli(srv, "enroll", honest.agent_id)
        assert r.returncode != 0 and "namespace" in r.stderr
        r = _cli(srv, "list", "--json")
        assert r.returncode == 0, r.stderr
        listed = json.loads(r.stdout)
        assert listed["enrollment"] == "open"
        assert sorted(a["enrollment"] for a in listed["agents"]) == ["enrolled", "revoked",
                                                                     "revoked"]
        r = _cli(srv, "list", "--revoked")
        assert r.returncode == 0 and "revoked" in r.stdout
        r = _cli(srv, honest.agent_id[:12], "--json")  # `agent AGENT` is `agent show AGENT`
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["enrollment"] == "enrolled"
    finally:
        srv.stop()
