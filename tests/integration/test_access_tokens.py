"""Scoped API tokens against a real ``stemedb serve``: every route × every kind of
credential, tokens across a restart and ``stemedb reindex``, reviewer names in the audit
log, and the exposed-by-default rule for reads.

The route table (``ROUTES``) and the credential columns (``COLUMNS``) are separate: a
column is a function from a route to the token it presents and the status it expects,
so another column (a token of another namespace) is one more entry in ``COLUMNS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

ADMIN = "access-test-bootstrap-token-91f3"
BOOT = {"Authorization": f"Bearer {ADMIN}"}
JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}
BELOW = {"review": "read", "admin": "review"}  # the scope just under each


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _create(url: str, name: str, scope: str, **extra: Any) -> str:
    r = httpx.post(url + "/v1/admin/tokens", headers=BOOT,
                   json={"name": name, "scope": scope, "namespaces": ["*"], **extra}, timeout=10)
    assert r.status_code == 201, r.text
    secret: str = r.json()["token"]
    return secret


def _revoke(url: str, name: str, headers: dict[str, str] = BOOT) -> httpx.Response:
    return httpx.post(url + f"/v1/admin/tokens/{name}/revoke", headers=headers,
                      json={"reason": "test"}, timeout=10)


def _write(url: str, key: AgentKey, **fields: Any) -> httpx.Response:
    body = assertion_body(key, **fields)
    return httpx.post(url + "/v1/assert", content=body, headers=signed_headers(key, body),
                      timeout=10)


@dataclass
class World:
    srv: ServerProcess
    tokens: dict[str, str]  # kind -> secret: read, review, admin, expired, revoked
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.srv.url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("tokens") / "data"
    # Refused admin requests count against the admin rate limit: off for the table.
    srv = ServerProcess(data, env={"STEMEDB_ADMIN_TOKEN": ADMIN, "STEMEDB_AUTH_READ": "token",
                                   "STEMEDB_RATE_LIMIT_ADMIN_RATE": "0"})
    srv.start()
    try:
        url = srv.url
        tokens = {scope: _create(url, f"t-{scope}", scope) for scope in ("read", "review",
                                                                        "admin")}
        soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
        tokens["expired"] = _create(url, "t-expired", "admin", expires=soon)
        tokens["revoked"] = _create(url, "t-revoked", "admin")
        assert _revoke(url, "t-revoked").status_code == 200
        _create(url, "victim", "read")  # revoked by the revoke route's "right" column
        for scope in ("read", "review"):  # nothing of the world lies in their namespace
            tokens[f"other-{scope}"] = _create(url, f"o-{scope}", scope, namespaces=["beta"])
        w = World(srv, tokens)
        key = AgentKey.generate()
        r = _write(url, key)
        assert r.status_code == 201, r.text
        w.ids["assertion"], w.ids["agent"] = r.json()["id"], key.agent_id
        for name in ("approve", "reject", "notes", "get"):
            r = _write(url, key, **JUNK, context=name)
            assert r.status_code == 202, r.text
            w.ids[name] = r.json()["quarantine_id"]
        time.sleep(1.6)  # past the expiry of t-expired
        yield w
    finally:
        srv.stop()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # may name ids of the world: {assertion}, {agent}, {approve}, ...
    need: str  # read | review | admin
    ok: int  # the status of a request the route lets through
    body: dict[str, Any] | None = None
    other: int | None = None  # its status for a token of another namespace (None: n/a)

    def call(self, w: World, headers: dict[str, str]) -> httpx.Response:
        return httpx.request(self.method, w.url + self.path.format(**w.ids), headers=headers,
                             json=self.body, timeout=10)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/v1/assertions", "read", 200, other=200),
    Route("GET", "/v1/assertions/{assertion}", "read", 200, other=404),
    Route("GET", "/v1/search?q=paris", "read", 200, other=200),
    Route("GET", "/v1/beliefs?subject=paris&predicate=capital_of", "read", 200, other=200),
    Route("GET", "/v1/disputes", "read", 200, other=200),
    Route("GET", "/v1/agents/{agent}", "read", 200, other=404),
    Route("GET", "/v1/admin/quarantine", "review", 200, other=200),
    Route("GET", "/v1/admin/quarantine/{get}", "review", 200, other=404),
    Route("POST", "/v1/admin/quarantine/{approve}/approve", "review", 200, other=404),
    Route("POST", "/v1/admin/quarantine/{reject}/reject", "review", 200, {"reason": "junk"},
          other=404),
    Route("POST", "/v1/admin/quarantine/{notes}/notes", "review", 201, {"note": "seen"},
          other=404),
    Route("POST", "/v1/admin/quarantine/batch", "review", 200,
          {"action": "reject", "ids": ["0" * 32]}, other=200),
    Route("GET", "/v1/admin/circuit_breakers", "admin", 200),
    Route("POST", "/v1/admin/circuit_breakers/{agent}/reset", "admin", 200, {"reason": "t"}),
    Route("GET", "/v1/admin/content_defense/thresholds", "admin", 200),
    Route("PUT", "/v1/admin/content_defense/thresholds", "admin", 200,
          {"quality_threshold": 0.6}),
    Route("GET", "/v1/admin/content_defense/allowlist", "admin", 200),
    Route("GET", "/v1/admin/audit", "admin", 200),
    Route("GET", "/v1/admin/tokens", "admin", 200),
    Route("POST", "/v1/admin/tokens", "admin", 201,
          {"name": "made", "scope": "read", "namespaces": ["*"]}),
    Route("POST", "/v1/admin/tokens/victim/revoke", "admin", 200, {"reason": "t"}),
]

# A column: the token a route is called with, and the status expected (None: the column
# does not apply to the route, e.g. no scope lies below read).
Column = Callable[[Route, World], tuple[str | None, int] | None]


def _wrong_scope(route: Route, w: World) -> tuple[str | None, int] | None:
    below = BELOW.get(route.need)
    return None if below is None else (w.tokens[below], 403)


def _other_namespace(route: Route, w: World) -> tuple[str | None, int] | None:
    """A token of the right scope whose namespace holds nothing of the world's: what lies
    outside it is absent (404 for a direct read, never 403)."""
    if route.other is None:
        return None
    return w.tokens[f"other-{route.need}"], route.other


COLUMNS: dict[str, Column] = {
    "no token": lambda route, w: (None, 401),
    "wrong scope": _wrong_scope,
    "expired": lambda route, w: (w.tokens["expired"], 401),
    "revoked": lambda route, w: (w.tokens["revoked"], 401),
    "unknown": lambda route, w: ("stm_" + "x" * 43, 401),
    "other namespace": _other_namespace,
    "right": lambda route, w: (w.tokens[route.need], route.ok),
}


@pytest.mark.parametrize("column", list(COLUMNS))
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_route_by_credential(world: World, route: Route, column: str) -> None:
    case = COLUMNS[column](route, world)
    if case is None:
        pytest.skip(f"no {column} case for a {route.need} route")
    token, expected = case
    r = route.call(world, _auth(token))
    assert r.status_code == expected, (str(route), column, r.text)
    if expected in (401, 403):
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == expected
    if expected == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    if column == "other namespace":  # nothing of the world leaks (but what was asked for)
        asked = route.path.format(**world.ids)
        for name, value in world.ids.items():
            assert value in asked or value not in r.text, (str(route), name)


def test_the_bootstrap_token_is_an_admin(world: World) -> None:
    for route in ROUTES:
        if route.method == "GET":
            assert route.call(world, BOOT).status_code == route.ok, str(route)


def test_health_and_signed_writes_need_no_token(world: World) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(world.url + path, timeout=10).status_code == 200, path
    key = AgentKey.generate()
    assert _write(world.url, key, subject="oslo", object="norway").status_code == 201
    # a revoked token on a signed write is not looked at: the signature decides
    body = assertion_body(key, subject="bergen", object="norway")
    r = httpx.post(world.url + "/v1/assert", content=body,
                   headers={**signed_headers(key, body), **_auth(world.tokens["revoked"])},
                   timeout=10)
    assert r.status_code == 201, r.text


def test_listing_never_shows_a_secret(world: World) -> None:
    assert httpx.get(world.url + "/v1/disputes", headers=_auth(world.tokens["read"]),
                     timeout=10).status_code == 200
    r = httpx.get(world.url + "/v1/admin/tokens", headers=BOOT, timeout=10)
    assert r.status_code == 200
    listed = {t["name"]: t for t in r.json()["tokens"]}
    assert {listed[n]["status"] for n in ("t-read", "t-review", "t-admin")} == {"active"}
    assert listed["t-expired"]["status"] == "expired"
    assert listed["t-revoked"]["status"] == "revoked"
    assert listed["t-read"]["last_used_at"] is not None
    for secret in world.tokens.values():
        assert secret not in r.text
    assert "hash" not in r.text
    audit = httpx.get(world.url + "/v1/admin/audit", headers=BOOT, timeout=10).text
    for secret in world.tokens.values():
        assert secret not in audit


def test_token_decisions_are_checked(world: World) -> None:
    url = world.url
    dup = httpx.post(url + "/v1/admin/tokens", headers=BOOT,
                     json={"name": "t-read", "scope": "read", "namespaces": ["*"]}, timeout=10)
    assert dup.status_code == 409
    for bad in ({"name": "x", "scope": "owner"}, {"name": "bad name", "scope": "read"},
                {"name": "admin", "scope": "read"},
                {"name": "y", "scope": "read", "expires": "yesterday"},
                {"name": "y", "scope": "read", "expires": "2001-01-01T00:00:00Z"},
                {"name": "y", "scope": "read", "namespaces": ["a//b"]},
                {"name": "y", "scope": "read", "namespaces": []},
                {"name": "y", "scope": "read"},
                {"name": "y", "scope": "read", "secret": "mine"}):
        r = httpx.post(url + "/v1/admin/tokens", headers=BOOT, json=bad, timeout=10)
        assert r.status_code == 422, (bad, r.text)
    assert _revoke(url, "nobody").status_code == 404
    assert _revoke(url, "t-revoked").status_code == 404
    # a revoked name may be used again
    again = _create(url, "t-revoked", "read")
    assert httpx.get(url + "/v1/assertions", headers=_auth(again), timeout=10).status_code == 200
    assert httpx.get(url + "/v1/assertions", headers=_auth(world.tokens["revoked"]),
                     timeout=10).status_code == 401


def test_decisions_record_the_token_name(world: World) -> None:
    url = world.url
    key = AgentKey.generate()
    r = _write(url, key, **JUNK, context="named")
    qid = r.json()["quarantine_id"]
    reviewer = _create(url, "alice", "review")
    r = httpx.post(url + f"/v1/admin/quarantine/{qid}/approve", headers=_auth(reviewer),
                   json={"note": "checked"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["decided_by"] == "alice"
    # the actor header does not change who a named token is
    r = httpx.post(url + f"/v1/admin/quarantine/{qid}/notes",
                   headers={**_auth(reviewer), "X-Admin-Actor": "mallory"},
                   json={"note": "again"}, timeout=10)
    assert r.json()["notes"][-1]["by"] == "alice"
    audit = httpx.get(url + "/v1/admin/audit", params={"target": qid}, headers=BOOT,
                      timeout=10).json()["items"]
    assert [e["by"] for e in audit] == ["alice", "alice"]
    made = httpx.get(url + "/v1/admin/audit", params={"target": "alice"}, headers=BOOT,
                     timeout=10).json()["items"]
    assert made[0]["action"] == "token.create" and made[0]["by"] == "admin:admin"
    assert "hash" not in made[0]["detail"]
    # the bootstrap token keeps its admin:<actor> form
    r = httpx.post(url + f"/v1/admin/quarantine/{qid}/notes",
                   headers={**BOOT, "X-Admin-Actor": "bob"}, json={"note": "n"}, timeout=10)
    assert r.json()["notes"][-1]["by"] == "admin:bob"


# -- persistence --------------------------------------------------------------------------------


def _states(url: str) -> dict[str, tuple[str, str]]:
    r = httpx.get(url + "/v1/admin/tokens", headers=BOOT, timeout=10)
    assert r.status_code == 200
    return {t["name"]: (t["scope"], t["status"]) for t in r.json()["tokens"]}


def test_tokens_survive_restart_and_reindex(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"STEMEDB_ADMIN_TOKEN": ADMIN, "STEMEDB_AUTH_READ": "token"}
    srv = ServerProcess(data, env=env).start()
    try:
        keep = _create(srv.url, "keeper", "read", namespaces=["acme"])
        gone = _create(srv.url, "leaver", "review")
        assert _revoke(srv.url, "leaver").status_code == 200
        before = _states(srv.url)
    finally:
        srv.stop()

    def check(url: str) -> None:
        assert _states(url) == before
        ok = httpx.get(url + "/v1/assertions", headers=_auth(keep), timeout=10)
        assert ok.status_code == 200
        assert httpx.get(url + "/v1/assertions", headers=_auth(gone),
                         timeout=10).status_code == 401

    srv = ServerProcess(data, env=env, port=srv.port).start()
    try:
        check(srv.url)
    finally:
        srv.stop()
    out = subprocess.run([sys.executable, "-m", "stemedb", "reindex", "--data-dir", str(data)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    srv = ServerProcess(data, env=env, port=srv.port).start()
    try:
        check(srv.url)
    finally:
        srv.stop()


# -- who may read by default ----------------------------------------------------------------------


def test_a_server_on_all_interfaces_refuses_anonymous_reads(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": ADMIN,
                                                "STEMEDB_HOST": "0.0.0.0"}).start()
    try:
        r = httpx.get(srv.url + "/v1/assertions", timeout=10)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200
        reader = _create(srv.url, "reader", "read")
        assert httpx.get(srv.url + "/v1/assertions", headers=_auth(reader),
                         timeout=10).status_code == 200
        assert "reads are open" not in srv.log()
    finally:
        srv.stop()


def test_opting_out_on_all_interfaces_is_logged(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": ADMIN,
                                                "STEMEDB_HOST": "0.0.0.0",
                                                "STEMEDB_AUTH_READ": "open"}).start()
    try:
        assert httpx.get(srv.url + "/v1/assertions", timeout=10).status_code == 200
        assert srv.log().count("reads are open to anonymous clients") == 1
    finally:
        srv.stop()


def test_loopback_reads_stay_open_but_check_a_presented_token(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": ADMIN,
                                                "STEMEDB_AUTH_METRICS": "token"}).start()
    try:
        url = srv.url
        assert httpx.get(url + "/v1/assertions", timeout=10).status_code == 200
        bad = httpx.get(url + "/v1/assertions", headers=_auth("stm_nope"), timeout=10)
        assert bad.status_code == 401
        reader = _create(url, "reader", "read")
        assert httpx.get(url + "/v1/assertions", headers=_auth(reader),
                         timeout=10).status_code == 200
        assert httpx.get(url + "/v1/admin/quarantine", headers=_auth(reader),
                         timeout=10).status_code == 403
        # [auth] metrics = "token": any valid token
        assert httpx.get(url + "/metrics", timeout=10).status_code == 401
        assert httpx.get(url + "/metrics", headers=_auth(reader), timeout=10).status_code == 200
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200
    finally:
        srv.stop()


def test_refused_tokens_count_against_the_admin_limit(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_ADMIN_TOKEN": ADMIN,
                                                "STEMEDB_RATE_LIMIT_ADMIN_RATE": "0.01",
                                                "STEMEDB_RATE_LIMIT_ADMIN_BURST": "3"}).start()
    try:
        url = srv.url
        reviewer = _create(url, "reviewer", "review")
        guesses = [httpx.get(url + "/v1/admin/quarantine", headers=_auth("stm_guess"),
                             timeout=10).status_code for _ in range(5)]
        assert guesses == [401, 401, 401, 429, 429]
        for _ in range(10):  # a valid review token is never throttled
            assert httpx.get(url + "/v1/admin/quarantine", headers=_auth(reviewer),
                             timeout=10).status_code == 200
    finally:
        srv.stop()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stemedb", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env={**os.environ, **env})


def test_the_command_line_manages_tokens_and_reads_with_one(world: World) -> None:
    env = {"STEMEDB_ADMIN_TOKEN": ADMIN, "STEMEDB_URL": world.url, "COLUMNS": "200"}
    made = _cli("admin", "token", "create", "--name", "cli-reader", "--scope", "read",
                "--namespace", "*", "--expires", "30d", env=env)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("stm_") and "\n" not in secret
    assert "shown only now" in made.stderr
    listed = _cli("admin", "token", "list", env=env)
    assert listed.returncode == 0 and "cli-reader" in listed.stdout
    assert secret not in listed.stdout
    refused = _cli("query", "--subject", "paris", env=env)
    assert refused.returncode == 1 and "401" in refused.stderr
    ok = _cli("query", "--subject", "paris", "--token", secret, env=env)
    assert ok.returncode == 0, ok.stderr
    ok = _cli("query", "--subject", "paris", env={**env, "STEMEDB_TOKEN": secret})
    assert ok.returncode == 0, ok.stderr
    gone = _cli("admin", "token", "revoke", "cli-reader", "--reason", "done", env=env)
    assert gone.returncode == 0 and "revoked token cli-reader" in gone.stdout
    again = _cli("query", "--subject", "paris", "--token", secret, env=env)
    assert again.returncode == 1 and "revoked" in again.stderr


def test_a_reviewer_uses_the_admin_commands_with_their_own_token(world: World,
                                                                 tmp_path: Path) -> None:
    reviewer = _create(world.url, "rita", "review")
    qid = _write(world.url, AgentKey.generate(), **JUNK, context="rita").json()["quarantine_id"]
    env = {"STEMEDB_URL": world.url, "STEMEDB_TOKEN": reviewer, "STEMEDB_ADMIN_TOKEN": "",
           "STEMEDB_DATA_DIR": str(tmp_path / "nowhere"), "COLUMNS": "200"}
    done = _cli("admin", "quarantine", "approve", qid, "--note", "fine", env=env)
    assert done.returncode == 0, done.stderr
    item = httpx.get(world.url + f"/v1/admin/quarantine/{qid}", headers=BOOT, timeout=10).json()
    assert item["decided_by"] == "rita"
    refused = _cli("admin", "token", "list", env=env)
    assert refused.returncode == 1 and "403" in refused.stderr
