"""The dashboard app in process: sign-in, refusals, CSRF, rendering and every action,
against a real Database seeded through the API app."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb.dashboard import SessionStore, create_dashboard
from stemedb.dashboard import data as dash_data
from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, signed_headers

TOKEN = "unit-dashboard-token"
JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}
ENV = {
    "STEMEDB_ADMIN_TOKEN": TOKEN,
    "STEMEDB_BREAKER_WINDOW_SIZE": "1000",
    "STEMEDB_BREAKER_MIN_REQUESTS": "1000",
}


@dataclass
class World:
    db: Database
    api: httpx.AsyncClient
    dash: httpx.AsyncClient
    app: Any
    flooder: AgentKey
    other: AgentKey
    qids: dict[str, list[str]]

    async def sign_in(self) -> str:
        """Sign the dashboard client in; returns the session's CSRF token."""
        login = await self.dash.get("/login")
        r = await self.dash.post(
            "/login", data={"token": TOKEN, "login_token": _hidden(login.text, "login_token")}
        )
        assert r.status_code == 303, r.text
        return _csrf((await self.dash.get("/")).text)

    async def admin(self, path: str, **params: Any) -> Any:
        r = await self.api.get(path, params=params, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        return r.json()


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, name
    return m.group(1)


def _csrf(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def _flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+"[^>]*>([^<]*)</p>', html)


async def _quarantine(api: httpx.AsyncClient, key: AgentKey, n: int, **fields: Any) -> list[str]:
    out = []
    for i in range(n):
        b = assertion_body(key, **{**JUNK, "context": f"c{i}", **fields})
        r = await api.post("/v1/assert", content=b, headers=signed_headers(key, b))
        assert r.status_code == 202, r.text
        out.append(r.json()["quarantine_id"])
    return out


Scenario = Callable[[World], Awaitable[None]]


def run(
    tmp_path: Path,
    scenario: Scenario,
    *,
    base_url: str = "http://dash",
    env: dict[str, str] | None = None,
    sessions: SessionStore | None = None,
    seed: bool = True,
    **dash_kw: Any,
) -> None:
    db = Database(
        load_settings(
            env={**ENV, **(env or {})}, overrides={"server.data_dir": str(tmp_path / "data")}
        )
    )
    api_app = create_app(db, close_on_shutdown=False)
    app = create_dashboard(db, sessions=sessions, **dash_kw)

    async def go() -> None:
        await db.start()
        try:
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api_app), base_url="http://api"
                ) as api,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=base_url
                ) as dash,
            ):
                flooder, other = AgentKey.generate(), AgentKey.generate()
                qids: dict[str, list[str]] = {"flooder": [], "other": []}
                if seed:
                    qids["flooder"] = await _quarantine(api, flooder, 12)
                    qids["other"] = await _quarantine(api, other, 3, subject="zzzz qqqq")
                await scenario(World(db, api, dash, app, flooder, other, qids))
        finally:
            await db.stop()

    try:
        asyncio.run(go())
    finally:
        db.close()


# -- refusals ------------------------------------------------------------------------------

PAGES = [
    "/",
    "/quarantine",
    "/quarantine?view=items",
    "/breakers",
    "/defense",
    "/quarantine/0123456789abcdef0123456789abcdef",
    "/agents/0123456789abcdef",
]
ACTIONS = [
    "/quarantine/batch",
    "/quarantine/x/approve",
    "/quarantine/x/reject",
    "/quarantine/x/notes",
    "/breakers/open",
    "/breakers/abc/reset",
    "/defense/thresholds",
    "/defense/allowlist",
    "/defense/allowlist/abc/remove",
    "/logout",
]


def test_without_a_session_pages_redirect_and_actions_answer_401(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        for path in PAGES:
            r = await w.dash.get(path)
            assert r.status_code == 303, path
            loc = r.headers["location"]
            assert loc.startswith("/login"), (path, loc)
        assert (await w.dash.get("/quarantine?agent=ab")).headers[
            "location"
        ] == "/login?next=%2Fquarantine%3Fagent%3Dab"
        assert (await w.dash.get("/api/overview")).status_code == 401
        r = await w.dash.get("/quarantine", headers={"Accept": "application/json"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        for path in ACTIONS:
            r = await w.dash.post(
                path, data={"csrf_token": "x", "action": "reject", "agent_id": w.flooder.agent_id}
            )
            assert r.status_code == 401, path
        assert (await w.admin("/v1/admin/quarantine"))["total"] == 15

    run(tmp_path, scenario)


def test_sign_in_sets_a_strict_http_only_session_cookie(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        login = await w.dash.get("/login")
        assert login.status_code == 200
        assert 'type="password"' in login.text
        set_login = login.headers["set-cookie"].lower()
        assert "httponly" in set_login and "samesite=strict" in set_login
        token = _hidden(login.text, "login_token")
        r = await w.dash.post(
            "/login", data={"token": TOKEN, "login_token": token, "next": "/breakers"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/breakers"
        cookies = r.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("stemedb_session="))
        flags = [f.strip().lower() for f in session.split(";")[1:]]
        assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
        assert "secure" not in flags  # plain http here; see the TLS test
        assert not any(f.startswith(("max-age", "expires")) for f in flags)  # browser session
        page = await w.dash.get("/breakers")
        assert page.status_code == 200 and "Circuit breakers" in page.text
        # An open redirect is not possible through ``next``.
        w.dash.cookies.clear()
        login = await w.dash.get("/login")
        r = await w.dash.post(
            "/login",
            data={
                "token": TOKEN,
                "next": "//evil.example/",
                "login_token": _hidden(login.text, "login_token"),
            },
        )
        assert r.headers["location"] == "/"

    run(tmp_path, scenario)


def test_the_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        login = await w.dash.get("/login")
        r = await w.dash.post(
            "/login", data={"token": TOKEN, "login_token": _hidden(login.text, "login_token")}
        )
        session = next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("stemedb_session=")
        )
        assert "secure" in [f.strip().lower() for f in session.split(";")]

    run(tmp_path, scenario, base_url="https://dash", seed=False)


@pytest.mark.parametrize(("trusted", "secure"), [("", False), ("127.0.0.0/8", True)])
def test_forwarded_https_counts_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: str, secure: bool
) -> None:
    async def scenario(w: World) -> None:
        login = await w.dash.get("/login")
        r = await w.dash.post(
            "/login",
            headers={"X-Forwarded-Proto": "https"},
            data={"token": TOKEN, "login_token": _hidden(login.text, "login_token")},
        )
        assert r.status_code == 303
        session = next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("stemedb_session=")
        )
        assert ("secure" in [f.strip().lower() for f in session.split(";")]) is secure

    run(tmp_path, scenario, env={"STEMEDB_TRUSTED_PROXIES": trusted}, seed=False)


def test_wrong_tokens_and_forms_without_their_token_do_not_sign_in(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        login = await w.dash.get("/login")
        token = _hidden(login.text, "login_token")
        r = await w.dash.post("/login", data={"token": TOKEN[:-1], "login_token": token})
        assert r.status_code == 401 and "not the admin token" in r.text
        assert "stemedb_session" not in r.cookies
        r = await w.dash.post("/login", data={"token": TOKEN, "login_token": "forged"})
        assert r.status_code == 403 and "stemedb_session" not in r.cookies
        w.dash.cookies.clear()  # no login cookie: a cross-site form cannot sign us in
        r = await w.dash.post("/login", data={"token": TOKEN, "login_token": token})
        assert r.status_code == 403 and "stemedb_session" not in r.cookies

    run(tmp_path, scenario, seed=False)


def test_sign_in_attempts_are_rate_limited(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        codes = []
        for _ in range(5):
            login = await w.dash.get("/login")
            r = await w.dash.post(
                "/login", data={"token": "guess", "login_token": _hidden(login.text, "login_token")}
            )
            codes.append(r.status_code)
        assert codes == [401] * 4 + [401]
        login = await w.dash.get("/login")
        r = await w.dash.post(
            "/login", data={"token": TOKEN, "login_token": _hidden(login.text, "login_token")}
        )
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in r.text
        assert "stemedb_session" not in r.cookies

    run(tmp_path, scenario, seed=False, login_burst=5, login_rate=0.01)


def test_successful_sign_ins_do_not_count_against_the_limit(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        for _ in range(8):
            w.dash.cookies.clear()
            await w.sign_in()

    run(tmp_path, scenario, seed=False, login_burst=2, login_rate=0.01)


def test_expired_and_signed_out_sessions_are_refused(tmp_path: Path) -> None:
    now = [1000.0]
    sessions = SessionStore(clock=lambda: now[0], idle_seconds=60)

    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        cookie = w.dash.cookies.get("stemedb_session")
        assert (await w.dash.get("/defense")).status_code == 200
        now[0] += 61
        assert (await w.dash.get("/defense")).status_code == 303
        csrf = await w.sign_in()
        cookie = w.dash.cookies.get("stemedb_session")
        r = await w.dash.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        w.dash.cookies.set("stemedb_session", cookie)  # replaying the old cookie
        assert (await w.dash.get("/defense")).status_code == 303

    run(tmp_path, scenario, sessions=sessions, seed=False)


def test_state_changes_need_the_sessions_csrf_token(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        qid = w.qids["flooder"][0]
        agent = w.flooder.agent_id
        forms = [
            ("/quarantine/batch", {"action": "reject", "agent_id": agent}),
            (f"/quarantine/{qid}/approve", {}),
            (f"/quarantine/{qid}/reject", {}),
            (f"/quarantine/{qid}/notes", {"note": "n"}),
            ("/breakers/open", {"agent_id": agent, "reason": "r", "duration_seconds": "60"}),
            (f"/breakers/{agent}/reset", {}),
            ("/defense/thresholds", {"quality_threshold": "0.1"}),
            (
                "/defense/allowlist",
                {"agent_id": agent, "reason": "r", "expires_at": "2031-01-01T00:00"},
            ),
            (f"/defense/allowlist/{agent}/remove", {}),
            ("/logout", {}),
        ]
        for path, form in forms:
            for extra, headers in (
                ({}, {}),
                ({"csrf_token": ""}, {}),
                ({"csrf_token": csrf + "x"}, {}),
                ({}, {"X-CSRF-Token": csrf.upper()}),
            ):
                r = await w.dash.post(path, data={**form, **extra}, headers=headers)
                assert r.status_code == 403, (path, extra, headers)
        r = await w.dash.post(
            "/quarantine/batch",
            headers={"Accept": "application/json"},
            data={"action": "reject", "agent_id": agent},
        )
        assert r.status_code == 403 and r.json()["error"] == "csrf"
        # Nothing happened.
        assert (await w.admin("/v1/admin/quarantine"))["total"] == 15
        audit = (await w.admin("/v1/admin/audit"))["items"]
        assert not [a for a in audit if a["by"] == "dashboard"]
        assert (await w.dash.get("/defense")).status_code == 200  # still signed in
        # With the token (form field, or header) it works.
        r = await w.dash.post(
            f"/quarantine/{qid}/notes", data={"note": "checked", "csrf_token": csrf}
        )
        assert r.status_code == 303
        r = await w.dash.post(
            f"/quarantine/{qid}/notes",
            data={"note": "again"},
            headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
        )
        assert r.status_code == 200
        assert [n["note"] for n in r.json()["notes"]] == ["checked", "again"]

    run(tmp_path, scenario)


# -- pages ---------------------------------------------------------------------------------


def test_every_page_renders_with_security_headers(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await w.sign_in()
        qid = w.qids["flooder"][0]
        for path in [
            "/",
            "/quarantine",
            "/quarantine?view=items",
            "/quarantine?sort=agent",
            "/quarantine?reason=LowQuality",
            f"/quarantine?agent={w.other.agent_id[:9]}",
            "/quarantine?view=items&status=all&per=25",
            f"/quarantine/{qid}",
            f"/agents/{w.flooder.agent_id}",
            "/breakers",
            "/defense",
            "/overview/live",
        ]:
            r = await w.dash.get(path)
            assert r.status_code == 200, (path, r.text[:2000])
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["cache-control"] == "no-store"
            assert "style=" not in r.text  # CSP: no inline styles
            assert "<script>" not in r.text and "onclick" not in r.text
        css = await w.dash.get("/static/dashboard.css")
        assert css.status_code == 200 and "no-store" not in css.headers.get("cache-control", "")
        assert (await w.dash.get("/static/dashboard.js")).status_code == 200
        r = await w.dash.get("/nowhere")
        assert r.status_code == 404 and "Page not found" in r.text

    run(tmp_path, scenario)


def test_quarantine_groups_agents_busiest_first_with_counts(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await w.sign_in()
        html = (await w.dash.get("/quarantine")).text
        assert "15 pending" in html
        groups = re.findall(r'<code class="agent" title="([0-9a-f]{64})">', html)
        heads = list(dict.fromkeys(groups))
        assert heads[:2] == [w.flooder.agent_id, w.other.agent_id]
        assert re.search(r"<b>12</b> pending", html) and re.search(r"<b>3</b> pending", html)
        assert "Show all 12 items of this agent" in html
        by_id = (await w.dash.get("/quarantine?sort=agent")).text
        ids = list(
            dict.fromkeys(
                re.findall(
                    r'<h2 id="g\d+"><a [^>]*><code class="agent" '
                    r'title="([0-9a-f]{64})"',
                    by_id,
                )
            )
        )
        assert ids == sorted([w.flooder.agent_id, w.other.agent_id])
        # Filtered by reason: every item is LowQuality here; another reason is empty.
        assert "Nothing to review" in (await w.dash.get("/quarantine?reason=Duplicate")).text
        assert "Unknown reason" in (await w.dash.get("/quarantine?reason=Bogus")).text
        # Filtered by agent prefix: the agent's own list with its trust panel.
        page = (await w.dash.get(f"/quarantine?agent={w.other.agent_id[:10]}")).text
        assert "Items 1–3 of 3" in page and "Agent history" in page
        assert "Reject all 3" in page
        bad = (await w.dash.get("/quarantine?agent=xyz")).text
        assert "Agent filter:" in bad

    run(tmp_path, scenario)


def test_items_are_paged_by_cursor(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await w.sign_in()
        seen: list[str] = []
        url = "/quarantine?view=items&per=25"
        extra = await _quarantine(w.api, w.other, 40, subject="qqqq zzzz", predicate="xx")
        assert len(extra) == 40
        pages = 0
        while url:
            html = (await w.dash.get(url)).text
            ids = re.findall(r'name="ids" value="([0-9a-f]{32})"', html)
            assert ids and not set(ids) & set(seen)
            seen += ids
            pages += 1
            m = re.search(r'href="([^"]+)" rel="next"', html)
            url = m.group(1).replace("&amp;", "&") if m else ""
        assert pages == 3 and len(seen) == 55
        last = (await w.dash.get("/quarantine?view=items&per=25&cursor=!!bad")).text
        assert "not a cursor" in last

    run(tmp_path, scenario)


def test_user_text_is_escaped(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await w.sign_in()
        evil = "<script>alert(1)</script>"
        [qid] = await _quarantine(
            w.api,
            w.other,
            1,
            subject=evil,
            object={"html": evil},
            evidence=["javascript:alert(1)"],
            context="xss",
        )
        for path in (
            f"/quarantine/{qid}",
            f"/quarantine?agent={w.other.agent_id}",
            "/quarantine?view=items",
        ):
            html = (await w.dash.get(path)).text
            assert evil not in html and "&lt;script&gt;" in html, path
            assert 'href="javascript:' not in html

    run(tmp_path, scenario)


def test_item_page_shows_the_claim_breakdown_agent_and_history(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        qid = w.qids["flooder"][0]
        await w.dash.post(f"/quarantine/{qid}/notes", data={"note": "looked", "csrf_token": csrf})
        html = (await w.dash.get(f"/quarantine/{qid}")).text
        for text in (
            "asdfasdf",
            "qwerty",
            "LowQuality",
            "Score breakdown",
            "Trust",
            "quarantine.note",
            "looked",
            w.flooder.agent_id,
        ):
            assert text in html, text
        assert re.search(r"<code>\w+_\w+</code></td><td class=\"num\">−0\.\d\d", html)
        missing = await w.dash.get("/quarantine/" + "0" * 32)
        assert missing.status_code == 404 and "Item not found" in missing.text

    run(tmp_path, scenario)


# -- actions -------------------------------------------------------------------------------


def test_decisions_record_by_dashboard(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        a, b, c, d = w.qids["flooder"][:4]
        r = await w.dash.post(
            f"/quarantine/{a}/approve",
            data={"note": "fine", "csrf_token": csrf, "next": "/quarantine"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/quarantine"
        assert "Approved item" in _flashes((await w.dash.get("/quarantine")).text)[0]
        r = await w.dash.post(f"/quarantine/{b}/reject", data={"note": "junk", "csrf_token": csrf})
        assert r.status_code == 303
        again = await w.dash.post(
            f"/quarantine/{b}/approve",
            data={"csrf_token": csrf},
            headers={"Accept": "application/json"},
        )
        assert again.status_code == 409 and again.json()["current"]["status"] == "rejected"
        r = await w.dash.post(
            "/quarantine/batch",
            data={"action": "approve", "ids": [c, d, a], "note": "batch", "csrf_token": csrf},
        )
        assert r.status_code == 303
        flash = _flashes((await w.dash.get("/quarantine")).text)
        assert flash[-1] == "2 items approved; 1 skipped (already decided or gone)."
        r = await w.dash.post(
            "/quarantine/batch",
            data={
                "action": "reject",
                "agent_id": w.flooder.agent_id,
                "note": "flood",
                "csrf_token": csrf,
            },
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 200 and r.json()["processed"] == 8
        empty = await w.dash.post(
            "/quarantine/batch", data={"action": "reject", "csrf_token": csrf}
        )
        assert empty.status_code == 303
        assert "Select at least one item" in (await w.dash.get("/quarantine")).text
        items = (await w.admin("/v1/admin/quarantine", agent_id=w.flooder.agent_id, status="all"))[
            "items"
        ]
        assert {i["decided_by"] for i in items} == {"dashboard"}
        assert sorted(i["status"] for i in items).count("approved") == 3
        decided = {i["id"]: i for i in items}
        assert decided[a]["decision_reason"] == "fine"
        assert decided[b]["decision_reason"] == "junk"
        ov = dash_data.overview(w.db)
        assert ov.pending == 3 and ov.approved_total == 3 and ov.rejected_total == 9
        assert ov.false_positive_rate == pytest.approx(0.25)
        assert ov.series[-1][1] == 3 and ov.series[0][1] == 0 and len(ov.series) == 61
        assert ov.quarantine_per_min_1m == 15 and ov.ingest_per_min_1m == 15
        assert ov.top_agents == [(w.other.agent_id, 3)]
        overview = (await w.dash.get("/")).text
        assert "25.0 %" in overview and "<polyline" in overview
        j = (await w.dash.get("/api/overview")).json()
        assert j["pending"] == 3 and j["false_positive_rate"] == 0.25
        assert len(j["pending_last_hour"]) == 61

    run(tmp_path, scenario)


def test_breakers_open_and_reset(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        agent = w.flooder.agent_id
        r = await w.dash.post(
            "/breakers/open",
            data={
                "agent_id": agent[:10],
                "reason": "flooding_quarantine",
                "duration_seconds": "3600",
                "csrf_token": csrf,
            },
        )
        assert r.status_code == 303
        page = (await w.dash.get("/breakers")).text
        assert "Opened the breaker" in page and "flooding_quarantine" in page
        assert "state-open" in page and "1 not closed" in page
        b = await w.admin(f"/v1/admin/circuit_breakers/{agent}")
        assert b["state"] == "OPEN" and b["manual"]
        audit = (await w.admin("/v1/admin/audit", target=agent))["items"]
        assert audit[0]["by"] == "dashboard" and audit[0]["action"] == "breaker.open"
        bad = await w.dash.post(
            "/breakers/open",
            data={"agent_id": agent, "reason": "x", "duration_seconds": "-5", "csrf_token": csrf},
        )
        assert bad.status_code == 303
        assert "duration_seconds" in (await w.dash.get("/breakers")).text
        r = await w.dash.post(f"/breakers/{agent}/reset", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert "Reset the breaker" in (await w.dash.get("/breakers")).text
        assert (await w.admin(f"/v1/admin/circuit_breakers/{agent}"))["state"] == "CLOSED"

    run(tmp_path, scenario)


def test_thresholds_and_allowlist(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        r = await w.dash.post(
            "/defense/thresholds",
            data={
                "quality_threshold": "0.5",
                "confidence_threshold": "0.85",
                "duplicate_lookback_hours": "24",
                "untrusted_confidence_threshold": "0.95",
                "csrf_token": csrf,
            },
        )
        assert r.status_code == 303
        page = (await w.dash.get("/defense")).text
        assert "Thresholds changed: quality_threshold = 0.5, duplicate_lookback_hours = 24." in page
        t = await w.admin("/v1/admin/content_defense/thresholds")
        assert t["quality_threshold"] == 0.5 and t["duplicate_lookback_hours"] == 24
        bad = await w.dash.post(
            "/defense/thresholds", data={"quality_threshold": "2", "csrf_token": csrf}
        )
        assert bad.status_code == 303
        assert "must be between 0 and 1" in (await w.dash.get("/defense")).text
        assert (await w.admin("/v1/admin/content_defense/thresholds"))["quality_threshold"] == 0.5

        agent = w.other.agent_id
        r = await w.dash.post(
            "/defense/allowlist",
            data={
                "agent_id": agent,
                "expires_at": "2031-02-03T04:05",
                "reason": "backfill",
                "csrf_token": csrf,
            },
        )
        assert r.status_code == 303
        entries = (await w.admin("/v1/admin/content_defense/allowlist"))["allowlist"]
        assert [(e["agent_id"], e["expires_at"], e["reason"], e["added_by"]) for e in entries] == [
            (agent, "2031-02-03T04:05:00.000000Z", "backfill", "dashboard")
        ]
        page = (await w.dash.get("/defense")).text
        assert "Allowlisted" in page and "backfill" in page
        past = await w.dash.post(
            "/defense/allowlist",
            data={
                "agent_id": agent,
                "expires_at": "2001-01-01T00:00",
                "reason": "x",
                "csrf_token": csrf,
            },
        )
        assert past.status_code == 303
        assert "must be in the future" in (await w.dash.get("/defense")).text
        r = await w.dash.post(f"/defense/allowlist/{agent}/remove", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert (await w.admin("/v1/admin/content_defense/allowlist"))["allowlist"] == []
        assert "The allowlist is empty" in (await w.dash.get("/defense")).text

    run(tmp_path, scenario)


def test_empty_states(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await w.sign_in()
        assert "Nothing to review" in (await w.dash.get("/quarantine")).text
        assert "No items" in (await w.dash.get("/quarantine?view=items")).text
        assert "No breaker is tracked yet" in (await w.dash.get("/breakers")).text
        overview = (await w.dash.get("/")).text
        assert "Nothing is waiting for review" in overview and "<polyline" in overview
        j = (await w.dash.get("/api/overview")).json()
        assert j["pending"] == 0 and j["false_positive_rate"] is None

    run(tmp_path, scenario, seed=False)
