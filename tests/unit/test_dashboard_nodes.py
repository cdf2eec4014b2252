"""A reviewer behind a load balancer: two dashboard nodes that share the admin token
accept each other's session cookies and CSRF tokens."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from stemedb.dashboard import create_dashboard
from stemedb.dashboard.sessions import SESSION_COOKIE
from stemedb.engine import Database
from stemedb.settings import load_settings


def _node(tmp_path: Path, name: str, env: dict[str, str]) -> Database:
    return Database(load_settings(env=env, overrides={"server.data_dir": str(tmp_path / name)}))


def _field(html: str, pattern: str) -> str:
    m = re.search(pattern, html)
    assert m, pattern
    return m.group(1)


def test_a_session_signed_in_on_one_node_works_on_the_other(tmp_path: Path) -> None:
    env = {"STEMEDB_ADMIN_TOKEN": "shared-cluster-token"}
    a, b = _node(tmp_path, "a", env), _node(tmp_path, "b", env)
    stranger = _node(tmp_path, "c", {"STEMEDB_ADMIN_TOKEN": "another-token"})

    async def go() -> None:
        apps = [create_dashboard(d) for d in (a, b, stranger)]
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://dash") for app in apps]
        on_a, on_b, on_c = clients
        try:
            login = await on_a.get("/login")
            token = _field(login.text, r'name="login_token" value="([^"]*)"')
            r = await on_a.post("/login", data={"token": "shared-cluster-token",
                                                "login_token": token})
            assert r.status_code == 303
            cookie = on_a.cookies[SESSION_COOKIE]
            csrf = _field((await on_a.get("/")).text, r'name="csrf-token" content="([^"]+)"')
            for c in (on_b, on_c):
                c.cookies.set(SESSION_COOKIE, cookie)
            page = await on_b.get("/breakers")
            assert page.status_code == 200  # signed in on B without signing in there
            assert _field(page.text, r'name="csrf-token" content="([^"]+)"') == csrf
            r = await on_b.post("/defense/thresholds", data={"quality_threshold": "0.55",
                                                             "csrf_token": csrf})
            assert r.status_code == 303  # B accepts A's CSRF token for the same session
            assert b.admin.thresholds()["quality_threshold"] == 0.55
            assert (await on_c.get("/breakers", follow_redirects=False)).status_code == 303
        finally:
            for c in clients:
                await c.aclose()

    try:
        asyncio.run(go())
    finally:
        for d in (a, b, stranger):
            d.close()
