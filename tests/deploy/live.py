"""A live StemeDB server process answering ``GET /metrics``, for checks that need a real
scrape (``promtool check metrics``, metric names used by the rules and the dashboard).

When ``create_app`` serves ``/metrics`` itself, the server is the real ``stemedb serve``.
Until then it is uvicorn serving ``make_app`` below: the same app with the metrics wired
the way ``create_app`` will wire them.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.metrics import Metrics
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, signed_headers


def wire_metrics(app: FastAPI, database: Database) -> Metrics:
    """Metrics on ``app`` as ``create_app`` will have them (a no-op once it does)."""
    existing = getattr(app.state, "metrics", None)
    if isinstance(existing, Metrics):
        return existing
    from stemedb.http.metrics_middleware import MetricsMiddleware
    from stemedb.http.routes.metrics import router

    metrics = Metrics()
    metrics.bind(database)
    app.state.metrics = metrics
    app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics


def make_app() -> FastAPI:
    """uvicorn factory: the API app on ``$STEMEDB_DATA_DIR`` with metrics wired."""
    database = Database(load_settings(env=dict(os.environ)))
    app = create_app(database)
    wire_metrics(app, database)
    return app


def create_app_serves_metrics() -> bool:
    """Whether the real app factory already wires the metrics (then the real server is
    used)."""
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(load_settings(env={}, overrides={"server.data_dir": tmp}))
        try:
            app = create_app(database, close_on_shutdown=False)
            return InProcess(app).get("/metrics").status_code == 200
        finally:
            database.close()


class InProcess:
    """Synchronous requests to an ASGI app in process (no lifespan run)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


class UvicornProcess(ServerProcess):
    """``make_app`` under uvicorn in a child process (same interface as ServerProcess)."""

    def start(self, wait: bool = True, timeout: float = 30.0) -> UvicornProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        env = {**self.env, "STEMEDB_DATA_DIR": str(self.data_dir)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.deploy.live:make_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "on",
                "--no-access-log",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self


@contextmanager
def metrics_server(data_dir: Path) -> Iterator[ServerProcess]:
    """A running server with /metrics: the real one if create_app serves it, else uvicorn."""
    cls = ServerProcess if create_app_serves_metrics() else UvicornProcess
    srv = cls(data_dir).start()
    try:
        yield srv
    finally:
        srv.stop()


def exercise(url: str, writes: int = 3) -> list[str]:
    """Traffic that gives most series a sample: writes, a replay, reads, a 404."""
    key = AgentKey.generate()
    ids = []
    with httpx.Client(base_url=url, timeout=10) as c:
        for i in range(writes):
            body = assertion_body(key, subject=f"metrics-{i}")
            r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
            assert r.status_code in (201, 202), r.text
            ids.append(r.json()["id"])
        r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
        assert r.status_code == 200, r.text
        assert c.get(f"/v1/assertions/{ids[0]}").status_code == 200
        assert c.get("/v1/assertions/" + "0" * 64).status_code == 404
        assert c.get("/v1/search", params={"q": "metrics"}).status_code == 200
        assert c.get("/no/such/route").status_code == 404
    return ids


def scrape(url: str) -> str:
    r = httpx.get(url + "/metrics", timeout=10)
    r.raise_for_status()
    return r.text


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": (),
}


def exposed_names(text: str) -> set[str]:
    """Every series name a query could use, including families without samples yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names


METRIC_NAME = re.compile(r"\bstemedb_[a-z0-9_]+")
