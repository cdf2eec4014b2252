"""Schemathesis against a real ``stemedb serve``: generated requests for every operation
of /openapi.json (valid and invalid ones, admin routes with the token), a bounded number
of examples each. No answer may be a server error, and every answer must be one the
document describes: its status code, its content type, its headers and its body's schema.

Generated assertion and retraction bodies are signed with a real key
(``schemathesis_hooks.py``), so the whole write path is exercised, not only the 401 of a
bad signature. The server is seeded first (accepted, disputed, retracted and quarantined assertions, an
allowlisted agent, an open breaker), and Schemathesis draws path and query values from
those ids and subjects half of the time, so the answers checked include full ones, not
only 404s and empty lists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, now_rfc3339, require, signed_headers

pytestmark = pytest.mark.integration

TOKEN = "schemathesis-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
MAX_EXAMPLES = 6


@dataclass
class Seeded:
    srv: ServerProcess
    values: dict[str, list[str]] = field(default_factory=dict)


def _write(srv: ServerProcess, path: str, key: AgentKey, body: bytes) -> dict[str, Any]:
    r = httpx.post(srv.url + path, content=body, headers=signed_headers(key, body), timeout=10)
    assert r.status_code in (201, 202), r.text
    out: dict[str, Any] = r.json()
    return out


def _admin(srv: ServerProcess, method: str, path: str, body: dict[str, Any]) -> None:
    r = httpx.request(method, srv.url + "/v1/admin" + path, content=orjson.dumps(body),
                      headers=AUTH, timeout=10)
    assert r.status_code in (200, 201), r.text


def seed(srv: ServerProcess) -> Seeded:
    a, b, junk, idle = (AgentKey.generate() for _ in range(4))
    ids = []
    for key, obj in ((a, "black sea"), (b, "baltic sea")):
        out = _write(srv, "/v1/assert", key, assertion_body(
            key, subject="danube", predicate="flows_into", object=obj, context="geo"))
        ids.append(out["id"])
    ids.append(_write(srv, "/v1/assert", a, assertion_body(
        a, subject="danube", predicate="length_km", object=2850, confidence=0.8))["id"])
    gone = _write(srv, "/v1/assert", b, assertion_body(b, subject="rhine", object="sea"))["id"]
    _write(srv, "/v1/retract", b, orjson.dumps({
        "retracts": gone, "reason": "wrong", "agent_id": b.agent_id,
        "timestamp": now_rfc3339(), "nonce": f"retract-{gone[:12]}"}))
    qids = []
    for i in range(3):
        out = _write(srv, "/v1/assert", junk, assertion_body(
            junk, subject="asdfasdf", predicate="qwerty", object="!!!!!!!!!!!!", context=f"r{i}"))
        assert out["status"] == "quarantined", out
        qids.append(out["quarantine_id"])
        ids.append(out["id"])
    _admin(srv, "POST", f"/quarantine/{qids[0]}/reject", {"reason": "junk"})
    _admin(srv, "POST", f"/quarantine/{qids[1]}/notes", {"note": "looking"})
    _admin(srv, "POST", "/content_defense/allowlist", {
        "agent_id": idle.agent_id, "expires_at": now_rfc3339(86400), "reason": "backfill"})
    _admin(srv, "POST", f"/circuit_breakers/{junk.agent_id}/open",
           {"reason": "flooding", "duration_seconds": 3600})
    agents = [k.agent_id for k in (a, b, junk, idle)]
    return Seeded(srv, {
        "agents": agents + [a.agent_id[:8]],
        "assertions": ids + [gone],
        "qids": qids,
        "subjects": ["danube", "rhine", "asdfasdf"],
        "predicates": ["flows_into", "length_km"],
    })


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    srv = ServerProcess(tmp_path_factory.mktemp("st") / "data", env={
        "STEMEDB_ADMIN_TOKEN": TOKEN,
        "STEMEDB_LOG_LEVEL": "ERROR",
    }).start()
    try:
        yield seed(srv)
    finally:
        assert srv.stop() == 0


HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


def config(values: dict[str, list[str]]) -> str:
    """schemathesis.toml: the hooks that sign writes, and dictionaries of real values,
    drawn half of the time."""
    lines = [f"hooks = {orjson.dumps(str(HOOKS)).decode()}", ""]
    for name, vals in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {orjson.dumps(vals).decode()}", ""]
    lines.append("[parameters]")
    for param, name in (("path.agent_id", "agents"), ("query.agent_id", "agents"),
                        ("path.assertion_id", "assertions"), ("path.aid", "assertions"),
                        ("path.qid", "qids"), ("query.subject", "subjects"),
                        ("query.predicate", "predicates"), ("body.retracts", "assertions"),
                        ("body.supersedes", "assertions")):
        lines.append(f'"{param}" = {{ dictionary = "{name}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def schemathesis_cli() -> str:
    here = Path(sys.executable).parent / "schemathesis"
    found = str(here) if here.exists() else shutil.which("schemathesis")
    return require("schemathesis", found, "pip install -e '.[dev]'")


def test_every_operation_conforms_to_the_document(seeded: Seeded, tmp_path: Path) -> None:
    srv = seeded.srv
    cfg = tmp_path / "schemathesis.toml"
    cfg.write_text(config(seeded.values))
    cmd = [
        schemathesis_cli(), "--config-file", str(cfg), "run", srv.url + "/openapi.json",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20260211",
        # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11
        # does not do safely from two threads at once.
        "--workers", "1",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--request-timeout", "10",
        "--suppress-health-check", "all",
        "--no-shrink",
    ]
    writer = AgentKey.generate()
    env = {**os.environ, "STEMEDB_ST_AGENT_SEED": writer.seed.hex()}
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    out = run.stdout + run.stderr
    print(out[-4_000:])  # the summary, shown with -s or -rP
    assert run.returncode == 0, out[-20_000:]
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", out)
    assert selected, out[-5_000:]
    assert selected[1] == selected[2] == selected[3], selected[0]  # every operation ran
    assert int(selected[3]) >= 28
    cases = re.search(r"(\d+) generated, \1 passed", out)
    assert cases and int(cases[1]) >= 500, out[-5_000:]
    assert "Traceback" not in srv.log(), srv.log()[-5_000:]
    # The signed generated writes got past the signature: the agent is known now.
    r = httpx.get(f"{srv.url}/v1/agents/{writer.agent_id}", timeout=10)
    assert r.status_code == 200, r.text
    counts = r.json()["counts"]
    assert counts["accepted"] + counts["quarantined"] > 0, counts
