"""Two real ``stemedb serve`` nodes sharing their guards through one real Redis.

Each node keeps its own data directory here (the shared storage backend is tested
elsewhere): what is shared is the agents' rate limits and circuit breakers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, signed_headers
from tests.services import RedisServer

pytestmark = pytest.mark.integration

TOKEN = "shared-guards-admin-token-3c9d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BURST = 6


def _launch_with_flag(srv: ServerProcess, redis_url: str) -> None:
    """Like ``ServerProcess.start(wait=False)``, passing ``--redis-url`` as a flag."""
    with open(srv.log_path, "ab") as log:
        srv.proc = subprocess.Popen(
            [sys.executable, "-m", "stemedb", "serve", "--port", str(srv.port),
             "--data-dir", str(srv.data_dir), "--dashboard-port", "0",
             "--redis-url", redis_url],
            env=srv.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


@pytest.fixture
def two_nodes(tmp_path: Path, redis_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {"STEMEDB_ADMIN_TOKEN": TOKEN, "STEMEDB_LOG_LEVEL": "INFO",
           "STEMEDB_REDIS_TIMEOUT_MS": "2000",  # a busy test machine is not an outage
           "STEMEDB_RATE_LIMIT_ASSERT_RATE": "0.01",
           "STEMEDB_RATE_LIMIT_ASSERT_BURST": str(BURST)}
    a = ServerProcess(tmp_path / "a", env=env)  # --redis-url
    b = ServerProcess(tmp_path / "b", env={**env, "STEMEDB_REDIS_URL": redis_url})
    try:
        _launch_with_flag(a, redis_url)
        b.start(wait=False)
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()


def _write(srv: ServerProcess, key: AgentKey, i: int) -> httpx.Response:
    body = assertion_body(key, subject=f"city {i}", predicate="population", object=1000 + i)
    return httpx.post(srv.url + "/v1/assert", content=body, headers=signed_headers(key, body),
                      timeout=30)


def _metric(srv: ServerProcess, name: str) -> float | None:
    text = httpx.get(srv.url + "/metrics", timeout=10).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return None if m is None else float(m.group(1))


def _wait_metric(srv: ServerProcess, name: str, want: float, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _metric(srv, name) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} != {want} on {srv.url}:\n{srv.log()[-3000:]}")
        time.sleep(0.1)


def test_an_agents_burst_and_its_breaker_are_shared_by_both_nodes(
        two_nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = two_nodes
    assert _metric(a, "stemedb_guards_shared") == 1 and _metric(b, "stemedb_guards_shared") == 1
    agent = AgentKey.generate()
    codes = [_write(node, agent, i).status_code for i in range(BURST // 2)
             for node in (a, b)]
    assert codes == [201] * BURST
    refused = _write(b, agent, 99)
    assert refused.status_code == 429, refused.text
    assert refused.headers["ratelimit-policy"] == f'"assert";q={BURST};w=600'
    assert _write(a, agent, 100).status_code == 429

    banned = AgentKey.generate()
    r = httpx.post(f"{a.url}/v1/admin/circuit_breakers/{banned.agent_id}/open", headers=AUTH,
                   json={"reason": "flooding_quarantine", "duration_seconds": 600})
    assert r.status_code == 200, r.text
    r = _write(b, banned, 1)
    assert r.status_code == 429 and r.headers["x-circuit-breaker-state"] == "OPEN"
    view = httpx.get(f"{b.url}/v1/admin/circuit_breakers/{banned.agent_id}", headers=AUTH).json()
    assert view["state"] == "OPEN" and view["reason"] == "flooding_quarantine"
    r = httpx.post(f"{b.url}/v1/admin/circuit_breakers/{banned.agent_id}/reset", headers=AUTH)
    assert r.status_code == 200, r.text
    assert _write(a, banned, 2).status_code == 201


def test_redis_killed_mid_load_writes_go_on_locally_then_shared_again(
        two_nodes: tuple[ServerProcess, ServerProcess], redis_server: RedisServer) -> None:
    a, b = two_nodes
    agents = [AgentKey.generate() for _ in range(24)]
    jobs = [(node, key, i) for i in range(BURST - 2) for key in agents for node in (a, b)
            if (i + agents.index(key)) % 2 == (node is a)]
    killed = threading.Event()
    lock = threading.Lock()
    done = [0]

    def one(job: tuple[ServerProcess, AgentKey, int]) -> int:
        code = _write(*job).status_code
        with lock:
            done[0] += 1
            if done[0] == len(jobs) // 3:
                redis_server.kill()
                killed.set()
        return code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, jobs))
    assert killed.is_set()
    assert codes == [201] * len(jobs)  # no write failed because Redis went away
    for node in (a, b):
        assert _metric(node, "stemedb_guards_shared") == 0
        assert _metric(node, "stemedb_guards_fallbacks_total") == 1
        assert httpx.get(node.url + "/readyz").status_code == 200
        warnings = [line for line in node.log().splitlines()
                    if '"level":"warning"' in line and "Redis unreachable" in line]
        assert len(warnings) == 1, node.log()[-3000:]

    redis_server.start()
    for node in (a, b):
        _wait_metric(node, "stemedb_guards_shared", 1)
        assert "Redis reachable again" in node.log()
    agent = AgentKey.generate()
    codes = [_write(node, agent, i).status_code for i in range(BURST // 2 + 1)
             for node in (a, b)]
    assert codes == [201] * BURST + [429, 429]
