"""End-to-end fixtures: a real ``stemedb serve`` with its dashboard on a free port, seeded
through the API with a review scenario, and Debian's Chromium driven by Playwright.

Without Chromium (or the Playwright package) the browser tests are skipped with a reason;
under CI (``CI=true``) they fail instead, so a runner that lost its browser is noticed.
``make test`` installs Chromium through ``scripts/system-deps.sh``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, free_port

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOKEN = "e2e-dashboard-token-7c41d0"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}
FLOOD = 40


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(reason: str) -> None:
    """Skip the browser tests, or fail them under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run here)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("STEMEDB_E2E_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class DashboardServer(ServerProcess):
    """``stemedb serve`` with the dashboard on its own free port."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, env)
        self.dashboard_port = free_port()

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, wait: bool = True, timeout: float = 30.0) -> DashboardServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stemedb",
                "serve",
                "--port",
                str(self.port),
                "--dashboard-port",
                str(self.dashboard_port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()
        if wait:
            self.wait_ready(timeout)
            r = httpx.get(self.dashboard_url + "/healthz", timeout=5)
            assert r.status_code == 200, r.text
        return self


@dataclass
class Scenario:
    srv: DashboardServer
    flooder: AgentKey
    doubter: AgentKey
    backfill: AgentKey
    good: AgentKey
    ids: dict[str, list[str]] = field(default_factory=dict)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.srv.url + path, headers=AUTH, timeout=10, **kw)


def _batch(srv: ServerProcess, key: AgentKey, bodies: list[bytes]) -> list[dict[str, Any]]:
    items = [{"body": b.decode(), "signature": key.sign_b64(b)} for b in bodies]
    r = httpx.post(
        srv.url + "/v1/assert/batch",
        content=orjson.dumps({"items": items}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


def seed(srv: DashboardServer) -> Scenario:
    """One agent flooding the quarantine with junk, one over-confident newcomer, a backfill
    agent with a few low-quality items, and a good agent with accepted writes."""
    s = Scenario(
        srv, AgentKey.generate(), AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    )
    flood = _batch(
        srv, s.flooder, [assertion_body(s.flooder, **JUNK, context=f"run{i}") for i in range(FLOOD)]
    )
    doubt = _batch(
        srv,
        s.doubter,
        [
            assertion_body(
                s.doubter,
                subject=f"city{i}",
                predicate="population",
                object=1000 + i,
                confidence=0.99,
            )
            for i in range(3)
        ],
    )
    back = _batch(
        srv,
        s.backfill,
        [
            assertion_body(
                s.backfill, subject="zzzz qqqq", predicate="xx", object="?????????", context=f"b{i}"
            )
            for i in range(2)
        ],
    )
    good = _batch(
        srv,
        s.good,
        [
            assertion_body(s.good, subject=f"river{i}", predicate="flows_into", object="sea")
            for i in range(3)
        ],
    )
    for name, results, status in (
        ("flooder", flood, "quarantined"),
        ("doubter", doubt, "quarantined"),
        ("backfill", back, "quarantined"),
        ("good", good, "accepted"),
    ):
        assert [r["status"] for r in results] == [status] * len(results), results
        s.ids[name] = [r.get("quarantine_id") or r["id"] for r in results]
    return s


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    data = tmp_path_factory.mktemp("dash") / "data"
    srv = DashboardServer(
        data,
        env={
            "STEMEDB_ADMIN_TOKEN": TOKEN,
            # The flood must reach the quarantine: keep the automatic breaker out of the way.
            "STEMEDB_BREAKER_WINDOW_SIZE": "1000",
            "STEMEDB_BREAKER_MIN_REQUESTS": "1000",
            "STEMEDB_RATE_LIMIT_ADMIN_RATE": "1000",
            "STEMEDB_RATE_LIMIT_ADMIN_BURST": "2000",
        },
    ).start()
    try:
        yield seed(srv)
    finally:
        # SIGTERM stops both servers cleanly (exit 0, no traceback, both ports closed).
        code = srv.stop()
        assert code == 0, f"server exited with {code}:\n{srv.log()}"
        assert "Traceback" not in srv.log()
        for url in (srv.url, srv.dashboard_url):
            with pytest.raises(httpx.ConnectError):
                httpx.get(url + "/healthz", timeout=2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package is not installed (pip install -e '.[dev]')")
    exe = chromium_path()
    if exe is None:
        missing("chromium is not installed (make system-deps, or apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def hidden_value(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert m, f"no hidden {name} field"
    return m.group(1)


def meta_csrf(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m and m.group(1), "no CSRF token on the page"
    return m.group(1)


def sign_in(client: httpx.Client) -> str:
    """Sign an httpx client in (cookie jar); returns the session's CSRF token."""
    login = client.get("/login")
    r = client.post(
        "/login", data={"token": TOKEN, "login_token": hidden_value(login.text, "login_token")}
    )
    assert r.status_code == 303, r.text
    return meta_csrf(client.get("/").text)
