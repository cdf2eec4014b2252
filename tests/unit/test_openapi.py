"""The OpenAPI document: valid OpenAPI 3.1, every route with its request body, its answers
and its problem+json errors, the bearer scheme on admin routes (optional on reads), the
signature header on signed writes; /docs and /redoc served from local assets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.http.openapi import ASSETS_PATH, api
from stemedb.settings import load_settings

PROBLEM = "application/problem+json"
SIGNED = {("/v1/assert", "post"), ("/v1/retract", "post")}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("oa") / "d"
    db = Database(load_settings(env={"STEMEDB_ADMIN_TOKEN": "openapi-token"},
                                overrides={"server.data_dir": str(data)}))
    with TestClient(create_app(db)) as c:
        yield c


@pytest.fixture(scope="module")
def doc(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"]}
    # FastAPI's own validation-error shapes are not what the server answers.
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def api_routes(client: TestClient) -> list[tuple[str, APIRoute]]:
    """Every FastAPI route of the app with its full path (included routers' too)."""
    app: Any = client.app
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI before route contexts: routers are flattened
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    return [(c.path, c.original_route) for c in iterate(app.routes)
            if isinstance(c.original_route, APIRoute)]


def test_every_route_is_described(client: TestClient, doc: dict[str, Any]) -> None:
    routes = {(path, m.lower()) for path, r in api_routes(client) if r.include_in_schema
              for m in r.methods}
    assert len(routes) >= 28
    documented = {(p, m) for p, m, _ in operations(doc)}
    assert routes == documented
    for path in ("/v1/assert", "/v1/assertions/{assertion_id}", "/v1/beliefs",
                 "/v1/admin/quarantine", "/healthz", "/readyz"):
        assert path in doc["paths"]
    for hidden in ("/metrics", "/docs", "/redoc", "/openapi.json"):
        assert hidden not in doc["paths"]


def test_every_answer_has_a_schema_and_every_error_is_a_problem(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes), where
        for code, answer in op["responses"].items():
            content = answer.get("content", {})
            assert answer["description"], (where, code)
            if code.startswith("2") or (path == "/readyz" and code == "503"):
                schema = content["application/json"]["schema"]
                assert schema, f"{where} {code}: no schema"
            else:
                assert list(content) == [PROBLEM], (where, code)
                assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
        if path.startswith("/v1/"):
            assert {"422", "429"} <= codes, where
        if method in ("post", "put"):
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body, where
            assert {"400", "413"} <= codes, where


def test_security_bearer_on_admin_optional_on_reads(doc: dict[str, Any]) -> None:
    admin = [op for p, _, op in operations(doc) if p.startswith("/v1/admin/")]
    assert len(admin) >= 17
    for op in admin:
        assert op["security"] == [{"bearer": []}]
        assert "401" in op["responses"]
        assert any(p["name"] == "X-Admin-Actor" and p["in"] == "header"
                   for p in op["parameters"])
    reads = [op for p, m, op in operations(doc)
             if m == "get" and p.startswith("/v1/") and not p.startswith("/v1/admin/")]
    assert len(reads) >= 6
    for op in reads:
        assert op["security"] == [{}, {"bearer": []}]


def test_signed_writes_declare_the_signature_header(doc: dict[str, Any]) -> None:
    for path, method in SIGNED:
        op = doc["paths"][path][method]
        (sig,) = [p for p in op["parameters"] if p["name"] == "X-Agent-Signature"]
        assert sig["in"] == "header" and sig["required"] is True
        assert {"200", "201", "401", "409", "415"} <= set(op["responses"])
    assert set(doc["paths"]["/v1/assert"]["post"]["responses"]) >= {"202"}
    body = doc["paths"]["/v1/assert"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/AssertionBody"}
    shape = doc["components"]["schemas"]["AssertionBody"]
    assert shape["additionalProperties"] is False
    assert set(shape["required"]) == {"subject", "predicate", "object", "confidence",
                                      "agent_id", "timestamp", "nonce"}


def test_admin_bodies_are_the_models_the_route_parses(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/v1/admin/circuit_breakers/{agent_id}/open"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"reason", "duration_seconds"}
    assert schema["additionalProperties"] is False
    approve = doc["paths"]["/v1/admin/quarantine/{qid}/approve"]["post"]["requestBody"]
    assert approve["required"] is False


def test_no_route_validates_its_answer(client: TestClient) -> None:
    """Descriptions only: no route runs a response model (the hot paths stay as fast)."""
    routes = api_routes(client)
    assert len(routes) >= 28
    for path, route in routes:
        assert route.response_model is None, path
        assert route.body_field is None, path  # bodies are read by hand


def test_the_helper_declares_problems_in_one_line() -> None:
    kw = api(body="AssertionBody", answer="WriteOutcome", status=201, errors=(404,),
             signed=True)
    assert kw["responses"][201]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WriteOutcome"}
    assert PROBLEM in kw["responses"][404]["content"]
    assert kw["openapi_extra"]["parameters"][0]["name"] == "X-Agent-Signature"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_reference_no_other_host(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", r.text)
    assert urls, r.text
    assert "/openapi.json" in r.text
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url}"
    assert "//" not in "".join(urls)
    assert not re.search(r"https?://", r.text), r.text
    for url in urls:
        if url.startswith(ASSETS_PATH):
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url


def test_an_unknown_asset_is_a_problem(client: TestClient) -> None:
    r = client.get(ASSETS_PATH + "/nope.js")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)


def test_a_ban_over_before_it_is_recorded_answers_its_end(client: TestClient) -> None:
    """Found by the conformance run: a ban of 5e-324 s answered ``"until": null`` with
    ``"state": "OPEN"``; the answer now gives the journaled end and the real state."""
    agent = "ab" * 32
    r = client.post(f"/v1/admin/circuit_breakers/{agent}/open",
                    json={"reason": "blink", "duration_seconds": 5e-324},
                    headers={"Authorization": "Bearer openapi-token"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "CLOSED"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", body["until"]), body
    r = client.post(f"/v1/admin/circuit_breakers/{agent}/open",
                    json={"reason": "long", "duration_seconds": 3600},
                    headers={"Authorization": "Bearer openapi-token"})
    assert r.json()["state"] == "OPEN"
    assert r.json()["until"] > body["until"]
