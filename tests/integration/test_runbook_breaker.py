"""docs/runbooks/circuit-breaker-stuck.md: every command run against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, run_sh, sh_blocks, signed_headers

pytestmark = pytest.mark.integration

RUNBOOK = ROOT / "docs" / "runbooks" / "circuit-breaker-stuck.md"
JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}


def test_every_command_of_the_breaker_runbook(tmp_path: Path) -> None:
    token = "runbook-token-0123456789"
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": token}).start()
    try:
        flooder = AgentKey.generate()
        for i in range(21):
            b = assertion_body(flooder, **JUNK, context=f"c{i}")
            httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(flooder, b))
        env = {"STEMEDB_ADMIN_TOKEN": token, "AGENT_ID": flooder.agent_id[:12]}
        blocks = sh_blocks(RUNBOOK)
        assert len(blocks) == 6
        diagnosis, reset, ban, reject, approve_reset_allow, validation = blocks

        out = run_sh(diagnosis, port=srv.port, env=env, cwd=tmp_path)
        first = json.loads(out[: out.index("}\n") + 1])
        assert first["agent_id"] == flooder.agent_id and first["state"] == "OPEN"
        assert first["reason"] == "failure_rate" and first["manual"] is False
        assert '"LowQuality"' in out and '"counts"' in out

        assert '"CLOSED"' in run_sh(reset, port=srv.port, env=env, cwd=tmp_path)
        out = run_sh(ban, port=srv.port, env=env, cwd=tmp_path)
        assert '"opened"' in out and '"OPEN"' in out
        b = assertion_body(flooder, subject="ok", predicate="fine", object="yes")
        r = httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(flooder, b))
        assert r.status_code == 429 and r.headers["x-circuit-breaker-state"] == "OPEN"
        out = run_sh(reject, port=srv.port, env=env, cwd=tmp_path)
        assert json.loads(out) == {"status": "rejected", "processed": 20}  # the 21st was refused
        out = run_sh(approve_reset_allow, port=srv.port, env=env, cwd=tmp_path)
        assert '"CLOSED"' in out and flooder.agent_id in out

        assert run_sh(validation, port=srv.port, env=env, cwd=tmp_path).strip() == "CLOSED"
        r = httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(flooder, b))
        assert r.status_code == 201, r.text
    finally:
        srv.stop()
