"""/docs (Swagger UI) and /redoc (ReDoc) in Debian's Chromium with every request to
another host refused: the pages and their assets come from the server itself, and they
render the API's operations from /openapi.json.

Screenshots land in tests/e2e/artifacts/ (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("docs") / "data").start()
    try:
        yield srv
    finally:
        assert srv.stop() == 0


def offline_page(browser: Any, base: str) -> tuple[Any, Any, list[str], list[str]]:
    """A page whose requests to any other origin are aborted (and listed)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
    elsewhere: list[str] = []
    problems: list[str] = []
    origin = urlsplit(base)

    def gate(route: Any) -> None:
        url = urlsplit(route.request.url)
        if (url.scheme, url.netloc) == (origin.scheme, origin.netloc):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    ctx.route("**/*", gate)
    page = ctx.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return ctx, page, elsewhere, problems


def operation_count(base: str) -> int:
    doc = httpx.get(base + "/openapi.json", timeout=10).json()
    return sum(len(item) for item in doc["paths"].values())


def test_swagger_ui_renders_offline(server: ServerProcess, browser: Any) -> None:
    ctx, page, elsewhere, problems = offline_page(browser, server.url)
    try:
        page.goto("/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        blocks = page.locator(".opblock")
        assert blocks.count() == operation_count(server.url)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/v1/assert" in [p.replace("\u200b", "") for p in paths]
        # The bearer scheme is there to authorize with.
        assert page.locator("button.authorize").count() == 1
        # Open one operation: its request body schema and problem answers are shown.
        page.locator("#operations-writes-post_assert_v1_assert_post button").first.click()
        page.wait_for_selector("#operations-writes-post_assert_v1_assert_post .responses-table")
        opened = page.locator("#operations-writes-post_assert_v1_assert_post").inner_text()
        assert "X-Agent-Signature" in opened
        assert "application/problem+json" in opened
        shot(page, "docs-swagger-ui")
    finally:
        ctx.close()
    assert elsewhere == []
    assert problems == []


def test_redoc_renders_offline(server: ServerProcess, browser: Any) -> None:
    ctx, page, elsewhere, problems = offline_page(browser, server.url)
    try:
        page.goto("/redoc")
        # Operations sit in the menu under their tags (collapsed until opened).
        page.wait_for_selector("li[data-item-id*='operation/']", state="attached",
                               timeout=30_000)
        items = page.locator("li[data-item-id*='operation/']")
        assert items.count() == operation_count(server.url)
        assert "StemeDB" in page.locator("h1").first.inner_text()
        for tag in ("writes", "reads", "admin", "health"):
            assert page.locator(f"li[data-item-id='tag/{tag}']").is_visible(), tag
        page.locator("li[data-item-id='tag/writes']").click()
        assert page.locator("li[data-item-id*='operation/post_assert_v1_assert_post']").is_visible()
        shot(page, "docs-redoc", full_page=False)
    finally:
        ctx.close()
    assert elsewhere == []
    # The page's Content-Security-Policy keeps the browser from asking ReDoc's CDN for the
    # logo in its footer; the refusal is the one message allowed on the console.
    assert [p for p in problems if "cdn.redoc.ly" not in p] == []


def test_assets_come_from_an_installed_package() -> None:
    from stemedb.http.openapi import assets_dir

    here = assets_dir()
    assert "site-packages" in str(here) or "dist-packages" in str(here)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert (Path(here) / name).stat().st_size > 100_000, name
