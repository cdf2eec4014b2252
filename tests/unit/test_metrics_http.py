"""GET /metrics and the request-metrics middleware, through the real ASGI app in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.http.metrics_middleware import MetricsMiddleware
from stemedb.metrics import Metrics
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.deploy.live import InProcess, wire_metrics
from tests.helpers import assertion_body, signed_headers


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))
    yield database
    database.close()


@pytest.fixture
def app(db: Database) -> FastAPI:
    app = create_app(db, close_on_shutdown=False)
    wire_metrics(app, db)
    return app


@pytest.fixture
def client(app: FastAPI) -> InProcess:
    return InProcess(app)


def samples(client: InProcess, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def requests_total(client: InProcess, method: str, route: str, status: int) -> float:
    key = (("method", method), ("route", route), ("status", str(status)))
    return samples(client, "stemedb_http_requests_total").get(key, 0.0)


def test_metrics_endpoint_serves_the_prometheus_text_format(client: InProcess) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {"stemedb_quarantine_pending", "stemedb_ready", "stemedb_http_requests"} <= names


def test_requests_are_labelled_by_route_template_never_the_raw_path(
    client: InProcess, key: AgentKey
) -> None:
    body = assertion_body(key)
    r = client.post("/v1/assert", content=body, headers=signed_headers(key, body))
    assert r.status_code == 201
    aid = r.json()["id"]
    assert client.get(f"/v1/assertions/{aid}").status_code == 200
    assert client.get("/v1/assertions/" + "0" * 64).status_code == 404
    assert client.get("/no/such/thing/123").status_code == 404
    assert client.delete("/healthz").status_code == 405
    assert requests_total(client, "POST", "/v1/assert", 201) == 1
    assert requests_total(client, "GET", "/v1/assertions/{assertion_id}", 200) == 1
    assert requests_total(client, "GET", "/v1/assertions/{assertion_id}", 404) == 1
    assert requests_total(client, "GET", "unmatched", 404) == 1
    assert requests_total(client, "DELETE", "/healthz", 405) == 1
    routes = {dict(k)["route"] for k in samples(client, "stemedb_http_requests_total")}
    assert aid not in str(routes) and "/no/such/thing/123" not in routes


def test_latency_histogram_per_route_and_the_scrape_itself_is_recorded(client: InProcess) -> None:
    for _ in range(3):
        client.get("/healthz")
    client.get("/metrics")
    count = samples(client, "stemedb_http_request_duration_seconds_count")
    assert count[(("method", "GET"), ("route", "/healthz"))] == 3
    assert count[(("method", "GET"), ("route", "/metrics"))] >= 1
    buckets = samples(client, "stemedb_http_request_duration_seconds_bucket")
    assert buckets[(("le", "+Inf"), ("method", "GET"), ("route", "/healthz"))] == 3
    in_flight = samples(client, "stemedb_http_requests_in_flight")
    assert in_flight[()] == 1  # the scrape being served


def test_unknown_methods_are_bounded(client: InProcess) -> None:
    client.request("BREW", "/healthz")
    assert requests_total(client, "other", "/healthz", 405) == 1


def test_a_crashing_endpoint_is_recorded_as_500(app: FastAPI, client: InProcess) -> None:
    @app.get("/boom/{n}")
    def boom(n: int) -> None:
        raise RuntimeError("boom")

    assert client.get("/boom/1").status_code == 500
    assert requests_total(client, "GET", "/boom/{n}", 500) == 1
    assert samples(client, "stemedb_http_requests_in_flight")[()] == 1


def test_a_response_sent_before_routing_still_gets_its_route() -> None:
    class TooMany:
        """Stands for a rate-limit middleware answering 429 before the router runs."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/v1/items/"):
                await send({"type": "http.response.start", "status": 429, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await self.app(scope, receive, send)

    app = FastAPI()

    @app.get("/v1/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        return {}

    metrics = Metrics()
    app.add_middleware(TooMany)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost
    assert InProcess(app).get("/v1/items/42").status_code == 429
    assert InProcess(app).get("/v1/other/42").status_code == 404
    for route, status in (("/v1/items/{item_id}", "429"), ("unmatched", "404")):
        labels = {"method": "GET", "route": route, "status": status}
        assert metrics.registry.get_sample_value("stemedb_http_requests_total", labels) == 1


def test_writes_feed_the_commit_metrics_through_bind(client: InProcess, key: AgentKey) -> None:
    for i in range(2):
        body = assertion_body(key, subject=f"s{i}")
        assert (
            client.post("/v1/assert", content=body, headers=signed_headers(key, body)).status_code
            == 201
        )
    assert samples(client, "stemedb_wal_group_commit_size_sum")[()] == 2
    assert samples(client, "stemedb_wal_last_lsn")[()] == 2
    assert samples(client, "stemedb_index_applied_lsn")[()] == 2
    assert samples(client, "stemedb_ready")[()] == 1


def test_middleware_passes_other_scope_types_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    import asyncio

    mw = MetricsMiddleware(inner, Metrics())

    async def run() -> None:
        async def receive() -> dict[str, str]:
            return {"type": "lifespan.startup"}

        async def send(message: object) -> None:
            return None

        await mw({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert seen == ["lifespan"]


def test_include_router_prefixes_are_part_of_the_template() -> None:
    from fastapi import APIRouter

    inner = APIRouter(prefix="/inner")

    @inner.get("/deep/{a}")
    def deep(a: str) -> dict[str, str]:
        return {}

    outer = APIRouter(prefix="/v1/things")
    outer.include_router(inner)
    app = FastAPI()
    app.include_router(outer, prefix="/api")
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    InProcess(app).get("/api/v1/things/inner/deep/7")
    labels = {"method": "GET", "route": "/api/v1/things/inner/deep/{a}", "status": "200"}
    assert metrics.registry.get_sample_value("stemedb_http_requests_total", labels) == 1


def test_writes_and_healthz_are_served_ahead_of_fastapi_with_their_templates(
    app: FastAPI, client: InProcess, key: AgentKey
) -> None:
    """The single/batch write routes and /healthz are plain routes at the front of the
    routing table (routes/fast.py); they answer as the FastAPI routes do and are labelled
    with the same templates."""
    from stemedb.http.routes.fast import FastRoute

    front = {(r.path, r.method) for r in app.router.routes if isinstance(r, FastRoute)}
    assert {("/v1/assert", "POST"), ("/v1/retract", "POST"), ("/v1/assert/batch", "POST"),
            ("/healthz", "GET")} <= front
    body = assertion_body(key)
    r = client.post("/v1/assert?unused=1", content=body, headers=signed_headers(key, body))
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"]
    r = client.post("/v1/assert", content=b"{nope", headers=signed_headers(key, b"{nope"))
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/assert").status_code == 405  # falls through to FastAPI's answer
    assert client.get("/healthz").json() == {"status": "ok"}
    assert requests_total(client, "POST", "/v1/assert", 201) == 1
    assert requests_total(client, "POST", "/v1/assert", 400) == 1
    assert requests_total(client, "GET", "/healthz", 200) == 1
