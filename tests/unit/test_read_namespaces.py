"""Namespaces and valid time through HTTP, in process: the real API and dashboard apps
over a real Database, each wrapped in a test-only ASGI layer that puts the Principal
named by the ``x-test-grants`` header in the scope (where the token middleware puts the
principal of a bearer token). Without that header a request is anonymous."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stemedb.access import PRINCIPAL_KEY, Principal, normalize_all
from stemedb.dashboard import create_dashboard
from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from stemedb.store import AssertionFilter
from tests.helpers import assertion_body, signed_headers

TOKEN = "unit-namespaces-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
GRANTS = "x-test-grants"


class AsPrincipal:
    """Puts ``Principal(namespaces=<x-test-grants>)`` in the scope of each request that
    carries the header (an empty value grants nothing)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name.decode() == GRANTS:
                    names = [n for n in value.decode().split(",") if n]
                    scope = {**scope, PRINCIPAL_KEY: Principal("test", "admin",
                                                               normalize_all(names))}
        await self.app(scope, receive, send)


def who(*grants: str) -> dict[str, str]:
    return {GRANTS: ",".join(grants), **ADMIN}


@dataclass
class World:
    db: Database
    api: httpx.AsyncClient
    dash: httpx.AsyncClient
    ids: dict[str, str]
    keys: dict[str, AgentKey]

    async def get(self, path: str, headers: dict[str, str] | None = None, **params: Any
                  ) -> httpx.Response:
        return await self.api.get(path, params=params, headers=headers or {})


async def _write(api: httpx.AsyncClient, key: AgentKey, status: int = 201, **fields: Any) -> str:
    body = assertion_body(key, **fields)
    r = await api.post("/v1/assert", content=body, headers=signed_headers(key, body))
    assert r.status_code == status, r.text
    return str(r.json()["id"])


def run(tmp_path: Path, scenario: Callable[[World], Awaitable[None]]) -> None:
    db = Database(load_settings(env={"STEMEDB_ADMIN_TOKEN": TOKEN},
                                overrides={"server.data_dir": str(tmp_path / "data")}))
    api_app = AsPrincipal(create_app(db, close_on_shutdown=False))
    dash_app = AsPrincipal(create_dashboard(db))

    async def go() -> None:
        await db.start()
        try:
            async with (
                httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app),
                                  base_url="http://api") as api,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=dash_app),
                                  base_url="http://dash") as dash,
            ):
                keys = {n: AgentKey.generate() for n in ("a", "b", "c", "only_beta")}
                ids: dict[str, str] = {}
                ev = {"evidence": ["https://e.example/1"], "confidence": 0.8}
                for ctx in ("acme", "acme/eu", "beta", "acme-corp"):
                    for name, obj in (("a", "north"), ("b", "north"), ("c", "south")):
                        ids[f"{name}@{ctx}"] = await _write(
                            api, keys[name], subject="river", predicate="flows",
                            object=f"{obj} {ctx}", context=ctx, **ev)
                ids["nocontext"] = await _write(api, keys["a"], subject="river",
                                                predicate="flows", object="north", **ev)
                ids["only_beta"] = await _write(api, keys["only_beta"], subject="lake",
                                                predicate="depth", object="deep", context="beta",
                                                **ev)
                # untrusted and sure of itself: quarantined
                ids["q_acme"] = await _write(api, keys["c"], 202, subject="sea",
                                             predicate="salty", object="yes", context="acme",
                                             confidence=0.99)
                ids["q_beta"] = await _write(api, keys["c"], 202, subject="sea",
                                             predicate="salty", object="no", context="beta",
                                             confidence=0.99)
                await scenario(World(db, api, dash, ids, keys))
        finally:
            await db.stop()

    try:
        asyncio.run(go())
    finally:
        db.close()


def contexts(items: list[dict[str, Any]]) -> set[str | None]:
    return {i["context"] for i in items}


def test_lists_search_and_point_reads_hold_only_the_granted_namespaces(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        everything = (await w.get("/v1/assertions", limit=100)).json()["items"]
        assert contexts(everything) == {"acme", "acme/eu", "beta", "acme-corp", None}
        acme = (await w.get("/v1/assertions", who("acme"), limit=100)).json()["items"]
        assert contexts(acme) == {"acme", "acme/eu"}
        assert (await w.get("/v1/assertions", who("acme"), context="beta")).json()["items"] == []
        assert (await w.get("/v1/assertions", who(), limit=100)).json()["items"] == []
        assert len((await w.get("/v1/assertions", who("*"), limit=100)).json()["items"]) == \
            len(everything)
        inactive = (await w.get("/v1/assertions", who("acme/eu"), include_inactive="true",
                                as_of="lsn:100")).json()["items"]
        assert contexts(inactive) == {"acme/eu"}
        found = (await w.get("/v1/search", who("beta"), q="river")).json()["items"]
        assert contexts(found) == {"beta"}
        # a direct get outside the grant answers exactly as an unknown id: 404
        hidden = await w.get(f"/v1/assertions/{w.ids['a@beta']}", who("acme"))
        unknown = await w.get(f"/v1/assertions/{'0' * 64}", who("acme"))
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.headers["content-type"] == unknown.headers["content-type"] == \
            "application/problem+json"
        assert hidden.json()["title"] == unknown.json()["title"]
        assert (await w.get(f"/v1/assertions/{w.ids['a@acme/eu']}", who("acme"))).status_code \
            == 200
        assert (await w.get(f"/v1/assertions/{w.ids['a@beta']}")).status_code == 200

    run(tmp_path, scenario)


def test_a_cursor_cannot_escape_the_grant(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await w.get("/v1/assertions", who("acme"), **params)).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert contexts(seen) == {"acme", "acme/eu"} and len(seen) == 6
        # a cursor taken from an unrestricted answer still pages through acme only
        anon = (await w.get("/v1/assertions", limit=1)).json()
        rest = (await w.get("/v1/assertions", who("acme"), cursor=anon["next_cursor"],
                            limit=100)).json()["items"]
        assert contexts(rest) <= {"acme", "acme/eu"}
        page = (await w.get("/v1/search", who("acme"), q="river", limit=1)).json()
        nxt = (await w.get("/v1/search", who("acme"), q="river", limit=100,
                           cursor=page["next_cursor"])).json()["items"]
        assert contexts(page["items"] + nxt) == {"acme", "acme/eu"}

    run(tmp_path, scenario)


def test_beliefs_and_disputes_count_only_visible_claims(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        def support(b: dict[str, Any]) -> set[str]:
            return {s["id"] for c in b["candidates"] for s in c["support"]}

        # the anonymous answer is computed and cached first: a restricted read must not
        # be served from it (same query string: the fast route answers both)
        anon = (await w.get("/v1/beliefs", subject="river", predicate="flows")).json()
        again = (await w.get("/v1/beliefs", subject="river", predicate="flows")).json()
        assert anon == again
        beta = (await w.get("/v1/beliefs", who("beta"), subject="river",
                            predicate="flows")).json()
        assert support(beta) == {w.ids[f"{n}@beta"] for n in "abc"}
        assert support(anon) != support(beta)
        outside = (await w.get("/v1/beliefs", who("beta"), subject="river", predicate="flows",
                               context="acme")).json()
        assert outside["candidates"] == []
        page = (await w.get("/v1/beliefs", who("acme"), subject="river")).json()
        assert {s["context"] for b in page["beliefs"] for c in b["candidates"]
                for s in c["support"]} <= {"acme", "acme/eu"}
        assert (await w.get("/v1/beliefs", who(), subject="river",
                            predicate="flows")).json()["candidates"] == []
        def keys(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return [(d["subject"], d["predicate"], d["context"], d["contention"])
                    for d in items]

        everywhere = (await w.get("/v1/disputes")).json()["items"]
        mine = (await w.get("/v1/disputes", who("acme"))).json()
        assert keys(mine["items"]) == keys([d for d in everywhere
                                            if d["context"] in ("acme", "acme/eu")])
        assert mine["total"] == len(mine["items"])

    run(tmp_path, scenario)


def test_agent_counts_are_those_of_the_visible_assertions(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        c = w.keys["c"].agent_id
        full = (await w.get(f"/v1/agents/{c}")).json()
        assert full["counts"]["accepted"] == 4 and full["counts"]["quarantined"] == 2
        acme = (await w.get(f"/v1/agents/{c}", who("acme"))).json()
        assert acme["counts"]["accepted"] == 2 and acme["counts"]["quarantined"] == 1
        assert acme["quarantine_pending"] == 1 and acme["trust"] == full["trust"]
        hidden = await w.get(f"/v1/agents/{w.keys['only_beta'].agent_id}", who("acme"))
        unknown = await w.get(f"/v1/agents/{'ab' * 32}", who("acme"))
        assert hidden.status_code == unknown.status_code == 404
        assert (await w.get(f"/v1/agents/{w.keys['only_beta'].agent_id}",
                            who("beta"))).status_code == 200

    run(tmp_path, scenario)


def test_the_review_queue_shows_only_visible_items(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        listing = (await w.get("/v1/admin/quarantine", who("acme"))).json()
        assert [i["assertion_id"] for i in listing["items"]] == [w.ids["q_acme"]]
        assert listing["total"] == 1
        assert (await w.get("/v1/admin/quarantine", ADMIN)).json()["total"] == 2
        beta_qid = (await w.get("/v1/admin/quarantine", who("beta"))).json()["items"][0]["id"]
        assert (await w.get(f"/v1/admin/quarantine/{beta_qid}", who("acme"))).status_code == 404
        r = await w.api.post(f"/v1/admin/quarantine/{beta_qid}/approve", headers=who("acme"))
        assert r.status_code == 404
        assert (await w.get(f"/v1/admin/quarantine/{beta_qid}", ADMIN)).json()["status"] == \
            "pending"
        # the dashboard: figures and lists of the visible items only
        login = await w.dash.get("/login")
        token = re.search(r'name="login_token" value="([^"]*)"', login.text)
        assert token
        r = await w.dash.post("/login", data={"token": TOKEN, "login_token": token.group(1)})
        assert r.status_code == 303
        assert (await w.dash.get("/api/overview")).json()["pending"] == 2
        assert (await w.dash.get("/api/overview", headers={GRANTS: "acme"})).json()[
            "pending"] == 1
        page = (await w.dash.get("/quarantine?view=items", headers={GRANTS: "acme"})).text
        assert beta_qid[:12] not in page
        assert (await w.dash.get(f"/quarantine/{beta_qid}", headers={GRANTS: "acme"})
                ).status_code == 404
        c = w.keys["c"].agent_id
        for headers in ({}, {GRANTS: "acme"}, {GRANTS: ""}):
            for path in ("/", "/overview/live", "/quarantine", f"/quarantine?agent={c[:10]}",
                         "/breakers", "/defense"):
                assert (await w.dash.get(path, headers=headers)).status_code == 200, path
        assert (await w.dash.get(f"/agents/{c}", headers={GRANTS: "acme"})).status_code == 200
        assert (await w.dash.get(f"/agents/{w.keys['only_beta'].agent_id}",
                                 headers={GRANTS: "acme"})).status_code == 404
        groups = (await w.dash.get("/quarantine", headers={GRANTS: "beta"})).text
        assert beta_qid[:12] in groups and listing["items"][0]["id"][:12] not in groups

    run(tmp_path, scenario)


def test_valid_at_on_assertions_and_beliefs(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        key = w.keys["a"]
        old = await _write(w.api, key, subject="bonn", predicate="capital_of", object="germany",
                           valid_from="1949-05-23T00:00:00+01:00",
                           valid_until="1990-10-03T00:00:00Z", context="hist")
        new = await _write(w.api, w.keys["b"], subject="berlin", predicate="capital_of",
                           object="germany", valid_from="1990-10-03T00:00:00Z", context="hist")
        at = (await w.get("/v1/assertions", predicate="capital_of",
                          valid_at="1980-01-01T00:00:00Z")).json()["items"]
        assert [a["id"] for a in at] == [old]
        at = (await w.get("/v1/assertions", predicate="capital_of",
                          valid_at="1990-10-03T02:00:00+02:00")).json()["items"]
        assert [a["id"] for a in at] == [new]  # that instant is valid_until of bonn: excluded
        both = (await w.get("/v1/assertions", predicate="capital_of")).json()["items"]
        assert {a["id"] for a in both} == {old, new}
        before = (await w.get("/v1/assertions", predicate="capital_of", as_of="lsn:1",
                              valid_at="1980-01-01T00:00:00Z")).json()["items"]
        assert before == []
        assert (await w.get("/v1/assertions", who("beta"), predicate="capital_of",
                            valid_at="1980-01-01T00:00:00Z")).json()["items"] == []
        b = (await w.get("/v1/beliefs", subject="bonn", predicate="capital_of",
                         valid_at="2000-01-01T00:00:00Z")).json()
        assert b["candidates"] == []
        b = (await w.get("/v1/beliefs", subject="bonn", predicate="capital_of",
                         valid_at="1950-01-01T00:00:00Z")).json()
        assert [c["object"] for c in b["candidates"]] == ["germany"]
        for path, extra in (("/v1/assertions", {}), ("/v1/beliefs", {"subject": "bonn"})):
            r = await w.get(path, valid_at="yesterday", **extra)
            assert r.status_code == 422
            assert r.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in r.json()["errors"]] == ["valid_at"]

    run(tmp_path, scenario)


def test_the_engine_passes_grants_to_every_read(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        db = w.db
        f = AssertionFilter(limit=100)
        assert contexts(db.list_assertions(f, None, None, ("beta",))["items"]) == {"beta"}
        assert db.search("river", 100, None, None, ())["items"] == []

    run(tmp_path, scenario)


POOL = ["acme", "acme/eu", "acme-corp", "acme_", "a_c", "abc", "beta", "beta/acme", "x"]


def test_property_no_route_answers_outside_the_grants(tmp_path: Path) -> None:
    """Random grants, routes and parameters: every context in an answer is granted, a
    direct get answers 404 exactly when the assertion is outside, and an agent is known
    exactly when it has a visible assertion."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from starlette.testclient import TestClient

    from stemedb.access import covers

    db = Database(load_settings(env={"STEMEDB_ADMIN_TOKEN": TOKEN,
                                     "STEMEDB_RATE_LIMIT_QUERY_RATE": "0",
                                     "STEMEDB_RATE_LIMIT_ADMIN_RATE": "0"},
                                overrides={"server.data_dir": str(tmp_path / "data")}))
    with TestClient(AsPrincipal(create_app(db))) as api:
        keys = [AgentKey.generate() for _ in range(3)]
        where: dict[str, str | None] = {}
        agents: dict[str, set[str | None]] = {k.agent_id: set() for k in keys}
        for i, ctx in enumerate([None, *POOL[:-1]]):
            for n, key in enumerate(keys):
                extra = {} if ctx is None else {"context": ctx}
                sure = n == 2 and i % 2 == 0  # untrusted and sure: quarantined
                body = assertion_body(key, subject="river", predicate="flows",
                                      object=f"side {n % 2} of {i}", confidence=0.99 if sure
                                      else 0.8, evidence=["https://e.example/"], **extra)
                r = api.post("/v1/assert", content=body, headers=signed_headers(key, body))
                assert r.status_code in (201, 202), r.text
                where[r.json()["id"]] = ctx
                agents[key.agent_id].add(ctx)

        def seen(route: str, answer: dict[str, Any]) -> list[str | None]:
            if route == "/v1/beliefs":
                beliefs = answer.get("beliefs", [answer])
                return [s["context"] for b in beliefs for c in b["candidates"]
                        for s in c["support"]]
            if route == "/v1/admin/quarantine":
                return [i["assertion"]["context"] for i in answer["items"]]
            return [i["context"] for i in answer["items"]]

        routes = st.sampled_from([
            ("/v1/assertions", {"include_inactive": "true", "limit": "1000"}),
            ("/v1/assertions", {"context": "acme"}),
            ("/v1/search", {"q": "side"}),
            ("/v1/beliefs", {"subject": "river", "predicate": "flows"}),
            ("/v1/beliefs", {"subject": "river"}),
            ("/v1/beliefs", {"subject": "river", "predicate": "flows", "context": "beta"}),
            ("/v1/disputes", {}),
            ("/v1/admin/quarantine", {"status": "all"}),
        ])

        @settings(max_examples=60, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(grants=st.lists(st.sampled_from(POOL), max_size=3, unique=True),
               route=routes, probe=st.sampled_from(sorted(where)),
               agent=st.sampled_from(sorted(agents)))
        def check(grants: list[str], route: tuple[str, dict[str, str]], probe: str,
                  agent: str) -> None:
            granted = normalize_all(grants)
            path, params = route
            r = api.get(path, params=params, headers=who(*grants))
            assert r.status_code == 200, r.text
            assert all(covers(granted, c) for c in seen(path, r.json()))
            got = api.get(f"/v1/assertions/{probe}", headers=who(*grants))
            assert got.status_code == (200 if covers(granted, where[probe]) else 404)
            known = api.get(f"/v1/agents/{agent}", headers=who(*grants))
            assert known.status_code == (
                200 if any(covers(granted, c) for c in agents[agent]) else 404)

        check()
