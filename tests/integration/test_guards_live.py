"""Breakers and rate limits against a real server process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}


def _post(srv: ServerProcess, key: AgentKey, **fields: object) -> httpx.Response:
    b = assertion_body(key, **fields)
    return httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(key, b))


def _token(srv: ServerProcess) -> dict[str, str]:
    return {"Authorization": "Bearer " + (srv.data_dir / "admin.token").read_text().strip()}


def test_flooding_agent_is_cut_off_and_a_good_agent_never_is(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    try:
        flooder, good = AgentKey.generate(), AgentKey.generate()
        codes = []
        for i in range(30):
            codes.append(_post(srv, flooder, **JUNK, context=f"c{i}").status_code)
            r = _post(srv, good, subject=f"city {i}", predicate="population",
                      object=1000 + i)
            assert r.status_code == 201, r.text  # never affected
        assert codes[:20] == [202] * 20  # never opens below min_requests
        assert codes[20:] == [429] * 10
        r = _post(srv, flooder, **JUNK, context="after")
        assert r.status_code == 429
        assert r.headers["x-circuit-breaker-state"] == "OPEN"
        assert 1 <= int(r.headers["retry-after"]) <= 300
        assert r.json()["type"].endswith("circuit-breaker-open")
        view = httpx.get(f"{srv.url}/v1/admin/circuit_breakers/{flooder.agent_id[:12]}",
                         headers=_token(srv)).json()
        assert view["state"] == "OPEN" and view["failure_rate"] == 1.0 and view["until"]
        listed = httpx.get(srv.url + "/v1/admin/circuit_breakers", headers=_token(srv)).json()
        assert listed["circuit_breakers"][0]["agent_id"] == flooder.agent_id
    finally:
        srv.stop()


def test_manual_open_survives_restart_and_reset_lets_writes_through(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    try:
        agent = AgentKey.generate()
        assert _post(srv, agent, subject="lyon", predicate="in", object="france").status_code == 201
        r = httpx.post(f"{srv.url}/v1/admin/circuit_breakers/{agent.agent_id[:8]}/open",
                       headers=_token(srv), json={"reason": "flooding_quarantine",
                                                  "duration_seconds": 3600})
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: body[k] for k in ("status", "agent_id", "state")} == {
            "status": "opened", "agent_id": agent.agent_id, "state": "OPEN"}
        assert body["until"].endswith("Z")
        assert _post(srv, agent, subject="nice", predicate="in", object="france").status_code == 429
        srv.stop()
        srv.start()
        r = _post(srv, agent, subject="lille", predicate="in", object="france")
        assert r.status_code == 429 and r.headers["x-circuit-breaker-state"] == "OPEN"
        r = httpx.post(f"{srv.url}/v1/admin/circuit_breakers/{agent.agent_id}/reset",
                       headers=_token(srv))
        assert r.json() == {"status": "reset", "agent_id": agent.agent_id, "state": "CLOSED"}
        assert _post(srv, agent, subject="lille", predicate="in", object="france").status_code == 201
        srv.stop()
        srv.start()  # the reset is journaled too
        assert _post(srv, agent, subject="metz", predicate="in", object="france").status_code == 201
    finally:
        srv.stop()


def test_rate_limits_answer_429_with_ietf_headers(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={
        "STEMEDB_RATE_LIMIT_QUERY_RATE": "0.5", "STEMEDB_RATE_LIMIT_QUERY_BURST": "3",
        "STEMEDB_RATE_LIMIT_ASSERT_RATE": "0.5", "STEMEDB_RATE_LIMIT_ASSERT_BURST": "2",
        "STEMEDB_TRUSTED_PROXIES": "127.0.0.1/32"}).start()
    try:
        url = srv.url + "/v1/assertions"
        codes = [httpx.get(url, headers={"X-Forwarded-For": "203.0.113.7"}).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = httpx.get(url, headers={"X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-policy"].startswith('"query";q=3')
        assert r.headers["ratelimit"].startswith('"query";r=0')
        assert "x-circuit-breaker-state" not in r.headers
        # another client behind the trusted proxy has its own budget
        assert httpx.get(url, headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 200
        assert httpx.get(srv.url + "/readyz").status_code == 200  # health is never limited

        key = AgentKey.generate()
        hdr = {"X-Forwarded-For": "192.0.2.44"}
        codes = []
        for i in range(3):
            b = assertion_body(key, subject=f"town {i}", predicate="in", object="france")
            codes.append(httpx.post(srv.url + "/v1/assert", content=b,
                                    headers=signed_headers(key, b) | hdr).status_code)
        assert codes == [201, 201, 429]
    finally:
        srv.stop()


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={
        "STEMEDB_RATE_LIMIT_QUERY_RATE": "0.5", "STEMEDB_RATE_LIMIT_QUERY_BURST": "2"}).start()
    try:
        url = srv.url + "/v1/assertions"
        codes = [httpx.get(url, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                 for i in range(3)]
        assert codes == [200, 200, 429]  # one bucket: the peer's own address
    finally:
        srv.stop()
