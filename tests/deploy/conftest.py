"""What the load-balancer tests share, one of each per test process: a self-signed
certificate, the main node with its dashboard, and a node that is alive but not ready."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.proxies import API_HOST, REVIEW_HOST, TOKEN, TRUSTED, Tls, openssl_bin
from tests.e2e.conftest import DashboardServer
from tests.helpers import ServerProcess


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "fullchain.pem", d / "privkey.pem"
    out = subprocess.run(
        [openssl_bin(), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={API_HOST}",
         "-addext", f"subjectAltName=DNS:{API_HOST},DNS:{REVIEW_HOST},DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return Tls(cert, key)


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    """The main node, with its dashboard, believing X-Forwarded-* from the proxies."""
    srv = DashboardServer(
        tmp_path_factory.mktemp("api") / "data",
        env={"STEMEDB_TRUSTED_PROXIES": TRUSTED, "STEMEDB_ADMIN_TOKEN": TOKEN},
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def not_ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A live node whose /readyz answers 503 (disk "low": min_free_bytes above any disk)."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("not-ready") / "data",
        env={"STEMEDB_MIN_FREE_BYTES": str(10**18), "STEMEDB_TRUSTED_PROXIES": TRUSTED,
             "STEMEDB_ADMIN_TOKEN": TOKEN},
    ).start(wait=False)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(srv.url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and srv.proc and srv.proc.poll() is None, srv.log()
        time.sleep(0.05)
    r = httpx.get(srv.url + "/readyz", timeout=5)
    assert r.status_code == 503 and "disk low" in r.json()["reason"], r.text
    yield srv
    srv.stop()
