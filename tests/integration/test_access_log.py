"""Structured logs of a real server: one JSON line per request with its id, route
template, status, latency and the agent id prefix; never tokens, signatures or bodies."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

TOKEN = "access-log-test-token-0123456789abcdef"


def test_access_log_lines_carry_the_request_and_never_secrets(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "d", env={"STEMEDB_LOG_LEVEL": "INFO",
                                             "STEMEDB_ADMIN_TOKEN": TOKEN}).start()
    try:
        key = AgentKey.generate()
        body = assertion_body(key, subject="secret-subject-text")
        headers = {**signed_headers(key, body), "x-request-id": "write-1"}
        r = httpx.post(srv.url + "/v1/assert", content=body, headers=headers)
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        assert httpx.get(f"{srv.url}/v1/assertions/{aid}",
                         headers={"x-request-id": "read-1"}).status_code == 200
        assert httpx.get(srv.url + "/v1/admin/quarantine", headers={
            "Authorization": f"Bearer {TOKEN}", "x-request-id": "admin-1"}).status_code == 200
    finally:
        srv.stop()
    log = srv.log()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = {x["request_id"]: x for x in lines if x.get("logger") == "stemedb.http.access"}
    write, read, admin = access["write-1"], access["read-1"], access["admin-1"]
    assert (write["method"], write["route"], write["status"]) == ("POST", "/v1/assert", 201)
    assert write["agent"] == key.agent_id[:16]
    assert isinstance(write["latency_ms"], float) and write["latency_ms"] >= 0
    assert (read["route"], read["status"]) == ("/v1/assertions/{assertion_id}", 200)
    assert (admin["route"], admin["status"]) == ("/v1/admin/quarantine", 200)
    for secret in (TOKEN, headers["X-Agent-Signature"], "secret-subject-text", aid):
        assert secret not in log
