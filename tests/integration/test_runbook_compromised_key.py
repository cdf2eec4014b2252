"""docs/runbooks/compromised-agent-key.md: every command run against a real server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, run_sh, sh_blocks, signed_headers

pytestmark = pytest.mark.integration

RUNBOOK = ROOT / "docs" / "runbooks" / "compromised-agent-key.md"
TOKEN = "runbook-token-0123456789"


def test_every_command_of_the_compromised_key_runbook(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": TOKEN}).start()
    try:
        honest, leaked = AgentKey.generate(), AgentKey.generate()
        for key, obj, confidence in ((honest, "germany", 0.5), (leaked, "france", 0.94)):
            b = assertion_body(key, subject="berlin", object=obj, confidence=confidence,
                               evidence=[f"https://example.org/{obj}"])
            r = httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(key, b))
            assert r.status_code == 201, r.text
        env = {"STEMEDB_ADMIN_TOKEN": TOKEN, "STEMEDB_URL": srv.url,
               "AGENT_ID": leaked.agent_id, "SUBJECT": "berlin", "PREDICATE": "capital_of",
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        blocks = sh_blocks(RUNBOOK)
        assert len(blocks) == 3
        diagnosis, resolution, validation = blocks

        out = run_sh(diagnosis, port=srv.port, env=env, cwd=tmp_path)
        assert '"unenrolled"' in out and "berlin\tcapital_of\tfrance" in out
        assert '"object":"france"' in out

        out = run_sh(resolution, port=srv.port, env=env, cwd=tmp_path)
        assert f"revoked {leaked.agent_id}" in out
        assert '"reason":"key leaked, INC-12"' in out and '"revoked_by":"admin:' in out

        out = run_sh(validation, port=srv.port, env=env, cwd=tmp_path).splitlines()
        lsn = httpx.get(f"{srv.url}/v1/agents/{leaked.agent_id}").json()["revoked_lsn"]
        assert out[0] == f"revoked at lsn:{lsn}"
        assert '"germany"' in out[1] and '"france"' not in out[1]
        assert out[2].index('"france"') < out[2].index('"germany"')
        assert f'"revoked_lsn":{lsn}' in out[3] and '"status":"active"' in out[3]

        b = assertion_body(leaked, subject="berlin", object="france")
        r = httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(leaked, b))
        assert r.status_code == 403 and r.json()["type"].endswith("/agent-revoked")
    finally:
        srv.stop()
