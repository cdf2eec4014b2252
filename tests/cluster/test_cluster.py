"""Cluster mode for real: two ``stemedb serve`` nodes on one PostgreSQL and one Redis
behind a real nginx (the shipped config), all started by the tests.

Cross-node behaviour (read your write anywhere, retries, nonces, shared limits and bans,
review on another node, thresholds following within a second), a node killed under
load, PostgreSQL restarted under load, and ``verify --database-url``."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey
from tests.deploy.conftest import tls  # noqa: F401  (the shared certificate fixture)
from tests.deploy.proxies import API_HOST, TRUSTED, Nginx, Tls, client, render_nginx
from tests.helpers import ROOT, ServerProcess, assertion_body, signed_headers
from tests.services import PostgresServer

pytestmark = pytest.mark.integration

TOKEN = "cluster-test-admin-token-7be1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BURST = 6  # writes an agent may make at once (rate limits are the cluster's)
JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    nginx: Nginx
    tls: Tls
    database_url: str

    def lb(self) -> httpx.Client:
        c = client(self.tls, self.nginx.url)
        c.headers["host"] = API_HOST
        return c


def _node(path: Path, env: dict[str, str]) -> ServerProcess:
    return ServerProcess(path, env=env)


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_url: str,
            tls: Tls) -> Iterator[Cluster]:  # noqa: F811
    env = {"STEMEDB_DATABASE_URL": postgres_url, "STEMEDB_REDIS_URL": redis_url,
           "STEMEDB_ADMIN_TOKEN": TOKEN, "STEMEDB_TRUSTED_PROXIES": TRUSTED,
           "STEMEDB_REDIS_TIMEOUT_MS": "2000",  # a busy test machine is not an outage
           "STEMEDB_RATE_LIMIT_ASSERT_RATE": "0.01",
           "STEMEDB_RATE_LIMIT_ASSERT_BURST": str(BURST),
           "STEMEDB_BREAKER_MIN_REQUESTS": "1000", "STEMEDB_BREAKER_WINDOW_SIZE": "1000"}
    a, b = _node(tmp_path / "a", env), _node(tmp_path / "b", env)
    nginx = render_nginx(tmp_path / "nginx", tls, [a.port, b.port], [a.port])
    try:
        a.start(wait=False)
        b.start(wait=False)
        a.wait_ready(60)
        b.wait_ready(60)
        nginx.start()
        yield Cluster(a, b, nginx, tls, postgres_url)
    finally:
        nginx.stop()
        a.stop()
        b.stop()


def post(url: str, key: AgentKey, body: bytes, path: str = "/v1/assert") -> httpx.Response:
    return httpx.post(url + path, content=body, headers=signed_headers(key, body), timeout=30)


def admin(url: str, method: str, path: str, **kw: object) -> httpx.Response:
    return httpx.request(method, url + path, headers=AUTH, timeout=30, **kw)  # type: ignore


def metric(url: str, name: str) -> float | None:
    text = httpx.get(url + "/metrics", timeout=10).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return None if m is None else float(m.group(1))


def test_two_nodes_behave_as_one_database(cluster: Cluster) -> None:
    a, b = cluster.a.url, cluster.b.url
    # written on A, read on B
    key = AgentKey.generate()
    body = assertion_body(key, subject="lisbon", predicate="capital_of", object="portugal")
    first = post(a, key, body)
    assert first.status_code == 201, first.text
    wid = first.json()["id"]
    got = httpx.get(f"{b}/v1/assertions/{wid}", timeout=10)
    assert got.status_code == 200 and got.json()["object"] == "portugal"
    # a retry through B answers the original outcome; nothing is stored twice
    retry = post(b, key, body)
    assert retry.status_code == 200 and retry.json() == first.json()
    # the nonce is taken across nodes
    nonce = orjson.loads(body)["nonce"]
    other = assertion_body(key, subject="porto", nonce=nonce)
    assert post(b, key, other).status_code == 409
    # one agent's burst counts on both nodes
    flood = AgentKey.generate()
    codes = [post(url, flood, assertion_body(flood, subject=f"station {i}")).status_code
             for i, url in enumerate([a, b] * BURST)]
    assert codes[:BURST] == [201] * BURST and set(codes[BURST:]) == {429}, codes
    # a ban made on A refuses on B
    banned = AgentKey.generate()
    r = admin(a, "POST", f"/v1/admin/circuit_breakers/{banned.agent_id}/open",
              json={"reason": "cluster test", "duration_seconds": 600})
    assert r.status_code == 200, r.text
    refused = post(b, banned, assertion_body(banned))
    assert refused.status_code == 429
    assert refused.headers["x-circuit-breaker-state"] == "OPEN"
    # quarantined on A, approved on B, active everywhere
    doubter = AgentKey.generate()
    q = post(a, doubter, assertion_body(doubter, **JUNK))
    assert q.status_code == 202, q.text
    r = admin(b, "POST", f"/v1/admin/quarantine/{q.json()['quarantine_id']}/approve",
              json={"note": "fine"})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{a}/v1/assertions/{q.json()['id']}").json()["status"] == "active"
    # a threshold changed on A applies on B within a second
    r = admin(a, "PUT", "/v1/admin/content_defense/thresholds", json={"quality_threshold": 0.21})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 1.0
    while admin(b, "GET", "/v1/admin/content_defense/thresholds").json()[
            "quality_threshold"] != 0.21:
        assert time.monotonic() < deadline, "B still has its old thresholds after 1 s"
        time.sleep(0.05)
    # cluster-wide figures agree on every node
    pending = admin(a, "GET", "/v1/admin/quarantine").json()["total"]
    assert metric(a, "stemedb_quarantine_pending") == metric(b, "stemedb_quarantine_pending") \
        == pending
    assert metric(a, "stemedb_ingest_rate_per_minute") == \
        metric(b, "stemedb_ingest_rate_per_minute")
    # through the balancer
    with cluster.lb() as lb:
        lb_key = AgentKey.generate()
        lb_body = assertion_body(lb_key, subject="madrid")
        r = lb.post("/v1/assert", content=lb_body, headers=signed_headers(lb_key, lb_body))
        assert r.status_code == 201, r.text
        assert lb.get(f"/v1/assertions/{r.json()['id']}").status_code == 200


def _load(write: Callable[[AgentKey, bytes], httpx.Response], writers: int,
          stop: threading.Event) -> tuple[list[str], list[int]]:
    """``writers`` threads writing until ``stop``, each write by a new agent (the
    cluster's per-agent burst is small): (acknowledged ids, the other statuses; -1 for
    no answer)."""
    acked: list[str] = []
    others: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            key = AgentKey.generate()
            body = assertion_body(key, subject=f"writer {n} item {i}", object=f"value {i}")
            try:
                r = write(key, body)
            except httpx.HTTPError:
                with lock:
                    others.append(-1)
                continue
            with lock:
                if r.status_code in (200, 201, 202):
                    acked.append(r.json()["id"])
                else:
                    others.append(r.status_code)

    with ThreadPoolExecutor(writers) as pool:
        for n in range(writers):
            pool.submit(worker, n)
        stop.wait()
    return acked, others


def _under_load(write: Callable[[AgentKey, bytes], httpx.Response], writers: int,
                during: Callable[[], None]) -> tuple[list[str], list[int]]:
    stop = threading.Event()
    result: list[tuple[list[str], list[int]]] = []
    loader = threading.Thread(target=lambda: result.append(_load(write, writers, stop)))
    loader.start()
    try:
        time.sleep(1.5)
        during()
        time.sleep(1.5)
    finally:
        stop.set()
        loader.join(120)
    return result[0]


def test_a_node_killed_under_load_loses_nothing(cluster: Cluster) -> None:
    with cluster.lb() as lb:
        def write(key: AgentKey, body: bytes) -> httpx.Response:
            return lb.post("/v1/assert", content=body, headers=signed_headers(key, body))

        acked, _ = _under_load(write, 32, cluster.a.kill9)
        assert len(acked) > 50
        missing = [w for w in acked if lb.get(f"/v1/assertions/{w}").status_code != 200]
        assert missing == []  # every acknowledged write is readable, through B
        key = AgentKey.generate()
        assert write(key, assertion_body(key)).status_code == 201  # nginx routes to B


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restarted_under_load_loses_nothing_and_nodes_recover(
        cluster: Cluster, postgres_server: PostgresServer, mode: str) -> None:
    nodes = [cluster.a.url, cluster.b.url]

    def write(key: AgentKey, body: bytes) -> httpx.Response:
        return post(nodes[len(body) % 2], key, body)

    def outage() -> None:
        postgres_server.stop(mode)
        for url in nodes:  # not ready, and why
            r = httpx.get(url + "/readyz", timeout=10)
            assert r.status_code == 503 and "database" in r.json()["reason"], r.text
        time.sleep(1.0)
        postgres_server.start()

    acked, others = _under_load(write, 8, outage)
    assert acked and set(others) <= {503, -1}, set(others)
    for url in nodes:  # ready again by themselves
        deadline = time.monotonic() + 30
        while httpx.get(url + "/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"{url} not ready again"
            time.sleep(0.2)
    missing = [w for w in acked
               if httpx.get(f"{nodes[0]}/v1/assertions/{w}", timeout=10).status_code != 200]
    assert missing == []
    key = AgentKey.generate()
    assert post(nodes[1], key, assertion_body(key)).status_code == 201


def test_verify_reads_the_cluster_journal_and_names_a_changed_payload(
        cluster: Cluster, postgres_server: PostgresServer) -> None:
    key = AgentKey.generate()
    for i in range(5):
        assert post(cluster.a.url, key, assertion_body(key, subject=f"s{i}")).status_code == 201
    cmd = [sys.executable, "-m", "stemedb", "verify", "--database-url", cluster.database_url,
           "--json"]
    ok = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert '"ok":true' in ok.stdout
    lsn = int(ok.stdout.split('"last_lsn":')[1].split(",")[0]) - 2
    db = cluster.database_url.rsplit("/", 1)[1]
    postgres_server.execute(
        "UPDATE journal SET payload = convert_to(replace(convert_from(payload, 'UTF8'),"
        f" 'capital_of', 'capital_in'), 'UTF8') WHERE lsn = {lsn}", database=db)
    bad = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and f"LSN {lsn}" in bad.stdout, bad.stdout + bad.stderr
