"""What the cluster figures run on: PostgreSQL, Redis and nginx started from the installed
binaries on spare loopback ports in a scratch directory, and ``stemedb serve`` nodes on
them.

PostgreSQL and Redis are launched by the test suite's own launchers
(``tests/services.py``), so the benchmark's database runs exactly as the cluster tests'
does: a fresh ``initdb``, ``fsync`` and ``synchronous_commit`` on, everything else at
PostgreSQL's defaults; as root it runs as the ``postgres`` user. nginx is a plain-HTTP
balancer of our own (below): TLS would add the proxy's handshake and record costs to a
figure about the nodes and the database.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services import (
    PostgresServer,
    RedisServer,
    postgres_bindir,
    redis_server_bin,
)

from .servers import Process, StemeServer, tree_cpu_seconds

# Cluster mode refuses to start without an admin token shared by every node.
ADMIN_TOKEN = "bench-cluster-admin-token-3c91d0"
NODE_ENV = {
    "STEMEDB_ADMIN_TOKEN": ADMIN_TOKEN,
    # nginx connects from here; the nodes take the client's address from its header.
    "STEMEDB_TRUSTED_PROXIES": "127.0.0.1/32",
    # A guard call that waits on a busy shared machine is not a Redis outage: the figures
    # are meant to include the shared guards, not the in-process fallback.
    "STEMEDB_REDIS_TIMEOUT_MS": "2000",
}


class MissingTool(RuntimeError):
    """A binary the cluster figures need is not installed."""


def _need(name: str, found: str | None) -> str:
    if not found:
        raise MissingTool(f"{name} is not installed; run `bash scripts/system-deps.sh`")
    return found


@dataclass
class Backends:
    """One PostgreSQL and one Redis, running; ``.postgres.proc.pid`` is the postmaster."""

    postgres: PostgresServer
    redis: RedisServer

    def postgres_cpu(self) -> float:
        """CPU seconds of the postmaster and every process it started (backends,
        WAL writer, checkpointer, autovacuum), the exited ones included."""
        assert self.postgres.proc is not None
        return tree_cpu_seconds(self.postgres.proc.pid)

    def redis_cpu(self) -> float:
        assert self.redis.proc is not None
        return tree_cpu_seconds(self.redis.proc.pid)


@contextmanager
def backends(with_redis: bool = True) -> Iterator[Backends]:
    """PostgreSQL (and Redis), each in a scratch directory of its own, stopped and
    removed at the end. Not under the benchmark's scratch directory: PostgreSQL runs as
    another user and owns its directory."""
    bindir = _need("PostgreSQL (initdb, postgres)", postgres_bindir())
    redis_bin = _need("redis-server", redis_server_bin()) if with_redis else ""
    dirs = [Path(tempfile.mkdtemp(prefix=f"stemedb-bench-{what}-")) for what in ("pg", "redis")]
    pg = PostgresServer(bindir, dirs[0])
    redis = RedisServer(redis_bin, dirs[1])
    try:
        pg.start()
        if with_redis:
            redis.start()
        yield Backends(pg, redis)
    finally:
        try:
            redis.kill()
            pg.stop("fast")
        finally:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)


def node(data_dir: Path, database_url: str, redis_url: str = "") -> StemeServer:
    """``stemedb serve`` on PostgreSQL (and Redis for the guards), as the other
    benchmark servers: quiet logs, no dashboard, rate limits out of reach."""
    env = {**NODE_ENV, "STEMEDB_DATABASE_URL": database_url}
    if redis_url:
        env["STEMEDB_REDIS_URL"] = redis_url
    return StemeServer(data_dir, env=env)


class Nginx(Process):
    """nginx balancing plain HTTP over ``upstreams`` (ports on 127.0.0.1) round robin,
    with kept-alive upstream connections as the shipped ``deploy/nginx/stemedb.conf``
    has them; one worker, which is plenty at these rates on 2 cores. ``.pid`` is the
    master: ``tree_cpu_seconds`` counts its worker too."""

    ready_path = "/readyz"  # answered by a node through the balancer

    def __init__(self, root: Path, upstreams: list[int]) -> None:
        binary = _need("nginx", shutil.which("nginx")
                       or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin"))
        self.root = root
        conf = root / "nginx.conf"
        super().__init__([binary, "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
                         root / "nginx.log")
        root.mkdir(parents=True, exist_ok=True)
        conf.write_text(self.config(upstreams))

    def config(self, upstreams: list[int]) -> str:
        user = ""
        if os.geteuid() == 0:  # as root nginx would hand its worker to nobody
            user = (f"user {pwd.getpwuid(os.geteuid()).pw_name} "
                    f"{grp.getgrgid(os.getegid()).gr_name};")
        temp = "\n".join(f"    {kind}_temp_path {self.root}/tmp-{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;"
                            for p in upstreams)
        return f"""{user}
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
{temp}
    access_log off;
    upstream stemedb_api {{
{servers}
        keepalive 32;
        keepalive_requests 10000;
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        # wrk keeps its connections for the whole run
        keepalive_requests 1000000;
        client_max_body_size 64k;
        client_body_buffer_size 64k;
        location / {{
            proxy_pass http://stemedb_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""
