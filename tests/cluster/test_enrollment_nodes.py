"""Enrollment across nodes: two ``stemedb serve`` nodes on one PostgreSQL in registered
mode; a key enrolled or revoked on one node is taken or refused by the other within a
second (each node follows the other's admin records), and beliefs on both leave the
revoked key out."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

TOKEN = "enrollment-nodes-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _post(srv: ServerProcess, key: AgentKey, **fields: object) -> httpx.Response:
    body = assertion_body(key, **fields)
    return httpx.post(srv.url + "/v1/assert", content=body, headers=signed_headers(key, body),
                      timeout=30)


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)


def test_enrollment_and_revocation_apply_on_every_node(tmp_path: Path,
                                                       postgres_url: str) -> None:
    env = {"STEMEDB_DATABASE_URL": postgres_url, "STEMEDB_ADMIN_TOKEN": TOKEN,
           "STEMEDB_AGENTS_ENROLLMENT": "registered"}
    a, b = ServerProcess(tmp_path / "a", env=env), ServerProcess(tmp_path / "b", env=env)
    honest, bad = AgentKey.generate(), AgentKey.generate()
    try:
        a.start(wait=False)
        b.start(wait=False)
        a.wait_ready(60)
        b.wait_ready(60)
        assert _post(b, honest, subject="rome").status_code == 403  # b caches: nobody yet

        for key in (honest, bad):
            r = httpx.post(f"{a.url}/v1/admin/agents/{key.agent_id}/enroll", headers=AUTH,
                           json={"namespaces": ["*"]}, timeout=30)
            assert r.status_code == 201, r.text
        assert _post(a, honest, subject="rome", object="italy").status_code == 201
        _eventually(lambda: _post(b, bad, subject="rome", object="spain",
                                  confidence=0.94).status_code == 201)
        top = httpx.get(a.url + "/v1/beliefs", params={
            "subject": "rome", "predicate": "capital_of"}).json()["candidates"][0]["object"]
        assert top == "spain"

        r = httpx.post(f"{b.url}/v1/admin/agents/{bad.agent_id}/revoke", headers=AUTH,
                       json={"reason": "leaked"}, timeout=30)
        assert r.status_code == 200, r.text
        _eventually(lambda: _post(a, bad, subject="paris").status_code == 403)
        assert _post(a, bad, subject="lisbon").json()["type"].endswith("/agent-revoked")
        for node in (a, b):
            belief = httpx.get(node.url + "/v1/beliefs", params={
                "subject": "rome", "predicate": "capital_of"}).json()
            assert [c["object"] for c in belief["candidates"]] == ["italy"]
    finally:
        a.stop()
        b.stop()
