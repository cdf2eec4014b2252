"""The review dashboard end to end: a real server, Debian's Chromium, the runbook's
"Quarantine Dashboard Workflow" clicked through, and the refusals checked over HTTP.

Screenshots of every page land in tests/e2e/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import FLOOD, TOKEN, Scenario, hidden_value, shot, sign_in

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def _flash(page: Any) -> str:
    return str(page.locator(".flash").first.inner_text())


def test_review_workflow_in_the_browser(scenario: Scenario, browser: Any) -> None:
    s = scenario
    base = s.srv.dashboard_url
    flooder = s.flooder.agent_id
    ctx = browser.new_context(viewport=DESKTOP, base_url=base)
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Any page asks for the token first; the keyboard alone signs in.
    page.goto("/quarantine")
    assert page.url.startswith(base + "/login")
    shot(page, "01-login")
    page.keyboard.type("wrong-token")
    page.keyboard.press("Enter")
    assert "not the admin token" in page.locator("#login-error").inner_text()
    problems.clear()  # the browser logs the refused sign-in (401) as a console error
    page.fill("#token", TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/quarantine")

    # Grouped by agent, busiest first: the flooding agent is on top with its count.
    first = page.locator("section.group").first
    assert flooder[:16] in first.locator("h2").inner_text()
    assert f"{FLOOD} pending" in first.locator(".group-count").inner_text()
    head = page.locator("h1").inner_text()
    assert f"{FLOOD + 5} pending" in head
    shot(page, "02-quarantine-grouped")

    # Open one of its items: assertion, score breakdown, agent trust and history.
    first.locator("a.claim").first.click()
    page.wait_for_url(re.compile(r".*/quarantine/[0-9a-f]{32}\?next=.*"))
    qid = page.url.split("/quarantine/")[1].split("?")[0]
    assert qid in s.ids["flooder"]
    assert page.locator("#claim-h").is_visible()
    assert "asdfasdf" in page.locator(".kv").inner_text()
    assert page.locator("table.data code").count() >= 1  # the quality signals
    assert "trust" in page.locator("#agent-h + p").inner_text().lower()
    shot(page, "03-item")

    # Approve it with a note; back on the list with a confirmation.
    page.fill("#decide-note", "spot check: harmless")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_url(base + "/quarantine")
    assert "Approved item" in _flash(page)
    first = page.locator("section.group").first
    assert f"{FLOOD - 1} pending" in first.locator(".group-count").inner_text()

    # Batch-reject the rest of that agent.
    first.locator("input[name=note]").fill("agent_flooding")
    first.get_by_role("button", name="Reject all").click()
    page.wait_for_url(base + "/quarantine")
    assert f"{FLOOD - 1} items rejected" in _flash(page)
    assert flooder[:16] not in page.locator("main").inner_text()
    shot(page, "04-quarantine-after-batch")

    items = s.api(
        "GET", "/v1/admin/quarantine", params={"agent_id": flooder, "status": "all"}
    ).json()["items"]
    by_status = {it["id"]: it for it in items}
    assert by_status[qid]["status"] == "approved"
    assert by_status[qid]["decided_by"] == "dashboard"
    assert by_status[qid]["decision_reason"] == "spot check: harmless"
    rejected = [it for it in items if it["status"] == "rejected"]
    assert len(rejected) == FLOOD - 1
    assert {it["decided_by"] for it in rejected} == {"dashboard"}

    # Select items with checkboxes and reject them as a batch.
    page.goto("/quarantine?view=items")
    boxes = page.locator("input.select")
    assert boxes.count() == 5
    boxes.nth(0).check()
    boxes.nth(1).press("Space")  # keyboard works on the checkboxes too
    assert "2 items selected" in page.locator("[data-selected-count]").inner_text()
    page.locator("#batch-note").fill("batch from the list")
    page.locator("#batch").get_by_role("button", name="Reject selected").click()
    page.wait_for_url(re.compile(r".*/quarantine\?view=items"))
    assert "2 items rejected" in _flash(page)
    assert page.locator("input.select").count() == 3
    shot(page, "05-quarantine-items")

    # Breakers: open one by hand, then reset it.
    page.goto("/breakers")
    page.fill("#b-agent", flooder[:12])
    page.fill("#b-reason", "flooding_quarantine")
    page.select_option("#b-duration", "3600")
    page.get_by_role("button", name="Open breaker").click()
    page.wait_for_url(base + "/breakers")
    assert "Opened the breaker" in _flash(page)
    row = page.locator("tr", has=page.locator(f'code[title="{flooder}"]'))
    assert "OPEN" in row.locator(".state").inner_text()
    assert "flooding_quarantine" in row.inner_text()
    shot(page, "06-breakers-open")
    breaker = s.api("GET", f"/v1/admin/circuit_breakers/{flooder}").json()
    assert breaker["state"] == "OPEN" and breaker["manual"]
    row.get_by_role("button", name=re.compile("Reset")).click()
    page.wait_for_url(base + "/breakers")
    assert "Reset the breaker" in _flash(page)
    assert s.api("GET", f"/v1/admin/circuit_breakers/{flooder}").json()["state"] == "CLOSED"
    shot(page, "07-breakers-reset")

    # Content defense: an allowlist entry with expiry and reason, and a threshold change.
    backfill = s.backfill.agent_id
    page.goto("/defense")
    page.fill("#a-agent", backfill)
    page.fill("#a-expires", "2030-01-01T00:00")
    page.fill("#a-reason", "backfill_operation")
    page.get_by_role("button", name="Add to allowlist").click()
    page.wait_for_url(base + "/defense")
    assert "Allowlisted" in _flash(page)
    allow = s.api("GET", "/v1/admin/content_defense/allowlist").json()["allowlist"]
    entry = next(e for e in allow if e["agent_id"] == backfill)
    assert entry["reason"] == "backfill_operation" and entry["added_by"] == "dashboard"
    assert entry["expires_at"].startswith("2030-01-01T00:00:00")
    page.fill("#t-quality_threshold", "0.55")
    page.get_by_role("button", name="Save thresholds").click()
    page.wait_for_url(base + "/defense")
    assert "quality_threshold = 0.55" in _flash(page)
    thresholds = s.api("GET", "/v1/admin/content_defense/thresholds").json()
    assert thresholds["quality_threshold"] == 0.55
    shot(page, "08-defense")

    # Overview: figures, the chart, the top agents.
    page.goto("/")
    assert page.locator("svg.chart polyline").count() == 1
    stats = page.locator(".stats").inner_text()
    assert "FALSE-POSITIVE RATE" in stats.upper()
    assert "2.4 %" in stats  # 1 approved of 42 decided
    shot(page, "09-overview")

    # The keyboard reaches the skip link first, and it has a visible focus style.
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"

    # Sign out: the pages ask for the token again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(base + "/login")
    page.goto("/breakers")
    assert page.url.startswith(base + "/login")
    assert not problems, problems
    ctx.close()


def test_narrow_screen(scenario: Scenario, browser: Any) -> None:
    base = scenario.srv.dashboard_url
    ctx = browser.new_context(viewport=NARROW, base_url=base, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    page.goto("/login")
    page.fill("#token", TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    for path, name in (
        ("/", "overview"),
        ("/quarantine", "quarantine"),
        ("/quarantine?view=items", "quarantine-items"),
        ("/breakers", "breakers"),
        ("/defense", "defense"),
    ):
        page.goto(path)
        # Nothing wider than the screen: no sideways scrolling of the page itself.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{path} is {width}px wide"
        shot(page, f"narrow-{name}")
    page.goto("/quarantine?view=items")
    page.locator("a.claim").first.click()
    page.wait_for_url(re.compile(r".*/quarantine/[0-9a-f]{32}.*"))
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    shot(page, "narrow-item")
    ctx.close()


def test_unauthenticated_requests_are_refused(scenario: Scenario) -> None:
    base = scenario.srv.dashboard_url
    with httpx.Client(base_url=base, timeout=10) as c:
        for path in (
            "/",
            "/quarantine",
            "/breakers",
            "/defense",
            f"/quarantine/{scenario.ids['doubter'][0]}",
        ):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        assert c.get("/api/overview").status_code == 401
        assert c.get("/overview/live", headers={"X-Requested-With": "fetch"}).status_code == 401
        for path, form in (
            ("/quarantine/batch", {"action": "reject", "agent_id": scenario.doubter.agent_id}),
            (f"/breakers/{scenario.doubter.agent_id}/reset", {}),
            (
                "/breakers/open",
                {"agent_id": scenario.doubter.agent_id, "reason": "x", "duration_seconds": "60"},
            ),
            ("/defense/thresholds", {"quality_threshold": "0.1"}),
            ("/logout", {}),
        ):
            assert c.post(path, data=form).status_code == 401, path
        forged = {"stemedb_session": "x" * 43 + "." + "y" * 43}
        c.cookies.update(forged)
        assert c.get("/api/overview").status_code == 401
        c.cookies.clear()
        # A wrong token never signs in; a login form without its token is refused.
        login = c.get("/login")
        r = c.post(
            "/login", data={"token": "nope", "login_token": hidden_value(login.text, "login_token")}
        )
        assert r.status_code == 401 and "stemedb_session" not in r.cookies
        c.cookies.clear()
        r = c.post("/login", data={"token": TOKEN})
        assert r.status_code == 403 and "stemedb_session" not in r.cookies
    pending = scenario.api(
        "GET", "/v1/admin/quarantine", params={"agent_id": scenario.doubter.agent_id}
    ).json()["total"]
    assert pending == 3  # nothing was decided


def test_posts_without_the_csrf_token_are_refused(scenario: Scenario) -> None:
    s = scenario
    doubter = s.doubter.agent_id
    with httpx.Client(base_url=s.srv.dashboard_url, timeout=10) as c:
        csrf = sign_in(c)
        login_cookie = c.cookies.get("stemedb_session")
        assert login_cookie
        attempts: list[tuple[str, dict[str, str]]] = [
            ("/quarantine/batch", {"action": "reject", "agent_id": doubter}),
            (f"/quarantine/{s.ids['doubter'][0]}/approve", {"note": "x"}),
            ("/breakers/open", {"agent_id": doubter, "reason": "x", "duration_seconds": "60"}),
            (
                "/defense/allowlist",
                {"agent_id": doubter, "expires_at": "2030-01-01T00:00", "reason": "x"},
            ),
            ("/defense/thresholds", {"quality_threshold": "0.1"}),
            ("/logout", {}),
        ]
        wrong = csrf[:-1] + ("B" if csrf.endswith("A") else "A")  # one character off
        for path, form in attempts:
            assert c.post(path, data=form).status_code == 403, path
            assert c.post(path, data={**form, "csrf_token": "forged"}).status_code == 403, path
            assert (
                c.post(path, data=form, headers={"X-CSRF-Token": wrong}).status_code
                == 403
            ), path
        assert (
            s.api("GET", "/v1/admin/quarantine", params={"agent_id": doubter}).json()["total"] == 3
        )
        assert s.api("GET", f"/v1/admin/circuit_breakers/{doubter}").json()["state"] == "CLOSED"
        assert (
            s.api("GET", "/v1/admin/content_defense/thresholds").json()["quality_threshold"] != 0.1
        )
        # The same request with the token (field or header) goes through.
        r = c.post(
            f"/quarantine/{s.ids['doubter'][0]}/notes",
            data={"note": "checked by hand"},
            headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["notes"][-1] == {
            "note": "checked by hand",
            "by": "dashboard",
            "at": r.json()["notes"][-1]["at"],
        }
        r = c.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert c.get("/api/overview").status_code == 401
