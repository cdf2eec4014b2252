"""Dashboard sign-in with scoped tokens: a review token signs in and its name is recorded
on every decision (item page, audit log); a read token cannot sign in; a review token
cannot change breakers, thresholds or the allowlist; revoking the token ends its
sessions."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.unit.test_dashboard_app import TOKEN, World, _csrf, _hidden, run

BOOT = {"Authorization": f"Bearer {TOKEN}"}


async def _token(w: World, name: str, scope: str) -> str:
    r = await w.api.post("/v1/admin/tokens", headers=BOOT, json={"name": name, "scope": scope,
                                                                  "namespaces": ["*"]})
    assert r.status_code == 201, r.text
    secret: str = r.json()["token"]
    return secret


async def _sign_in(w: World, secret: str) -> httpx.Response:
    login = await w.dash.get("/login")
    return await w.dash.post(
        "/login", data={"token": secret, "login_token": _hidden(login.text, "login_token")}
    )


def test_a_review_token_signs_in_and_its_name_is_recorded(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        secret = await _token(w, "alice", "review")
        assert (await _sign_in(w, secret)).status_code == 303
        csrf = _csrf((await w.dash.get("/")).text)
        qid = w.qids["other"][0]
        r = await w.dash.post(f"/quarantine/{qid}/approve",
                              data={"note": "checked the source", "csrf_token": csrf})
        assert r.status_code == 303
        item = await w.admin(f"/v1/admin/quarantine/{qid}")
        assert item["decided_by"] == "alice"
        page = (await w.dash.get(f"/quarantine/{qid}")).text
        assert "by alice" in page
        audit = (await w.admin("/v1/admin/audit", target=qid))["items"]
        assert [e["by"] for e in audit] == ["alice"]
        # breakers, thresholds and the allowlist need the admin scope
        r = await w.dash.post("/defense/thresholds", data={"quality_threshold": "0.5",
                                                          "csrf_token": csrf},
                              headers={"Accept": "application/json"})
        assert r.status_code == 403, r.text
        assert (await w.admin("/v1/admin/content_defense/thresholds"))[
            "quality_threshold"] == 0.6
        # revoked: the session ends at once
        r = await w.api.post("/v1/admin/tokens/alice/revoke", headers=BOOT, json={})
        assert r.status_code == 200
        r = await w.dash.get("/quarantine")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = await w.dash.post(f"/quarantine/{w.qids['other'][1]}/approve",
                              data={"csrf_token": csrf}, headers={"Accept": "application/json"})
        assert r.status_code == 401
        assert (await _sign_in(w, secret)).status_code == 401

    run(tmp_path, scenario)


def test_a_read_token_cannot_sign_in_and_an_admin_token_decides_everything(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        reader = await _token(w, "reader", "read")
        r = await _sign_in(w, reader)
        assert r.status_code == 403 and "can only read" in r.text
        ops = await _token(w, "ops", "admin")
        assert (await _sign_in(w, ops)).status_code == 303
        csrf = _csrf((await w.dash.get("/")).text)
        r = await w.dash.post("/breakers/open", data={
            "agent_id": w.flooder.agent_id, "reason": "flood", "duration_seconds": "60",
            "csrf_token": csrf}, headers={"Accept": "application/json"})
        assert r.status_code == 200, r.text
        audit = (await w.admin("/v1/admin/audit", target=w.flooder.agent_id))["items"]
        assert audit[0]["action"] == "breaker.open" and audit[0]["by"] == "ops"

    run(tmp_path, scenario)


def test_the_bootstrap_token_still_signs_in_as_dashboard(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        csrf = await w.sign_in()
        qid = w.qids["other"][0]
        r = await w.dash.post(f"/quarantine/{qid}/reject", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert (await w.admin(f"/v1/admin/quarantine/{qid}"))["decided_by"] == "dashboard"

    run(tmp_path, scenario)
