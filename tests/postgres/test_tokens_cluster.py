"""API tokens on two ``stemedb serve`` nodes sharing one PostgreSQL: a token created on
one node works on the other, and a token revoked on one fails on the other, within a
second (each node reloads its token table when the newest admin LSN moves)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import ServerProcess

pytestmark = pytest.mark.integration

ADMIN = "cluster-tokens-admin-token-40c2"
BOOT = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {"STEMEDB_DATABASE_URL": postgres_url, "STEMEDB_ADMIN_TOKEN": ADMIN,
           "STEMEDB_AUTH_READ": "token"}
    a, b = ServerProcess(tmp_path / "a", env=env), ServerProcess(tmp_path / "b", env=env)
    try:
        a.start(wait=False)
        b.start(wait=False)
        a.wait_ready(60)
        b.wait_ready(60)
        yield a, b
    finally:
        a.stop()
        b.stop()


def _status(url: str, secret: str) -> int:
    return httpx.get(url + "/v1/assertions", headers={"Authorization": f"Bearer {secret}"},
                     timeout=10).status_code


def _seconds_until(url: str, secret: str, status: int, limit: float = 5.0) -> float:
    started = time.monotonic()
    while _status(url, secret) != status:
        assert time.monotonic() - started < limit, f"still not {status} after {limit} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_token_made_or_revoked_on_one_node_applies_on_the_other(
        nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = nodes
    r = httpx.post(a.url + "/v1/admin/tokens", headers=BOOT,
                   json={"name": "roamer", "scope": "read", "namespaces": ["*"]}, timeout=10)
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    assert _status(a.url, secret) == 200
    assert _seconds_until(b.url, secret, 200) < 1.0
    r = httpx.post(b.url + "/v1/admin/tokens/roamer/revoke", headers=BOOT,
                   json={"reason": "left"}, timeout=10)
    assert r.status_code == 200, r.text
    assert _status(b.url, secret) == 401
    assert _seconds_until(a.url, secret, 401) < 1.0
    listed = {t["name"]: t["status"] for t in httpx.get(
        a.url + "/v1/admin/tokens", headers=BOOT, timeout=10).json()["tokens"]}
    assert listed == {"roamer": "revoked"}
    # one name, created on both nodes at once: one token wins, the other answers 409
    answers = [httpx.post(n.url + "/v1/admin/tokens", headers=BOOT,
                          json={"name": "twin", "scope": "read", "namespaces": ["*"]}, timeout=10).status_code
               for n in (a, b)]
    assert sorted(answers) == [201, 409]
