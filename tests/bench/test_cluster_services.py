"""The cluster figures' launch works: PostgreSQL and Redis from the bench's launcher, a
node on them behind the bench's plain-HTTP nginx stores a signed write, and the CPU
counters see PostgreSQL's processes, the exited ones included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.cluster_services import Nginx, backends, node
from bench.servers import scrape_group_commit, tree_cpu_seconds
from stemedb.signing import AgentKey
from tests.deploy.proxies import nginx_bin
from tests.helpers import assertion_body, require, signed_headers
from tests.services import HOW_POSTGRES, HOW_REDIS, postgres_bindir, redis_server_bin

pytestmark = pytest.mark.integration


def test_tree_cpu_counts_exited_children() -> None:
    before = tree_cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c",
                    "import time\nt = time.process_time()\n"
                    "while time.process_time() - t < 0.3: pass"], check=True)
    assert tree_cpu_seconds(os.getpid()) - before >= 0.25


def test_node_on_postgres_and_redis_behind_nginx(tmp_path: Path) -> None:
    require("PostgreSQL (initdb, postgres)", postgres_bindir(), HOW_POSTGRES)
    require("redis-server", redis_server_bin(), HOW_REDIS)
    nginx_bin()
    key = AgentKey.generate()
    with backends() as b:
        url = b.postgres.create_database("bench_test")
        pg_before = b.postgres_cpu()
        with node(tmp_path / "node", url, b.redis.url) as n:
            n.start(timeout=30)
            with Nginx(tmp_path / "nginx", [n.port]) as lb:
                lb.start(timeout=15)
                body = assertion_body(key)
                r = httpx.post(lb.url + "/v1/assert", content=body,
                               headers=signed_headers(key, body), timeout=10)
                assert r.status_code == 201, r.text
                assert tree_cpu_seconds(lb.pid) >= 0
            metrics = httpx.get(n.url + "/metrics", timeout=10).text
            assert "stemedb_guards_shared 1.0" in metrics
            records, commits = scrape_group_commit(n.url) or (0, 0)
            assert records >= 1 and commits >= 1
        assert b.postgres_cpu() > pg_before
        pg_dir = b.postgres.base
    assert not pg_dir.exists()
