"""API tokens' rules: names, expiry forms, the read-authentication default, which routes
need which scope, and which requests the SDK sends a token on."""

from __future__ import annotations

import httpx
import pytest

from stemedb.client import Client
from stemedb.errors import ConfigError, ValidationFailed
from stemedb.http.guard_middleware import NONE, OPTIONAL, needed_scope
from stemedb.settings import is_loopback, load_settings, read_mode
from stemedb.signing import AgentKey
from stemedb.tokens import check_name, hash_secret, new_secret, parse_expiry

NOW = 1_800_000_000_000_000


@pytest.mark.parametrize("value, seconds", [("90m", 5400), ("12h", 43200), ("30d", 2592000),
                                            ("2w", 1209600), (" 45s ", 45)])
def test_durations(value: str, seconds: int) -> None:
    assert parse_expiry(value, NOW) == NOW + seconds * 1_000_000


def test_times_and_bad_expiries() -> None:
    assert parse_expiry("2030-01-01T00:00:00Z", NOW) == 1_893_456_000_000_000
    assert parse_expiry(None, NOW) is None and parse_expiry("", NOW) is None
    for bad in ("0d", "soon", "30", "2020-01-01T00:00:00Z", "12y"):
        with pytest.raises(ValidationFailed):
            parse_expiry(bad, NOW)


def test_names() -> None:
    for good in ("alice", "ingest-bot", "a.b_c@d", "X" * 64):
        assert check_name(good) == good
    for bad in ("", "-x", "a b", "a:b", "X" * 65, "admin", "Dashboard", "é"):
        with pytest.raises(ValidationFailed):
            check_name(bad)


def test_secrets_are_random_and_hashed() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("stm_") and len(a) == 47
    assert len(hash_secret(a)) == 64 and hash_secret(a) != hash_secret(b)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.9.1", True),
                                            ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("::", False),
                                            ("10.0.0.5", False), ("db.example", False)])
def test_read_default_follows_the_host(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    s = load_settings(env={"STEMEDB_HOST": host})
    assert read_mode(s) == ("open" if loopback else "token")
    assert read_mode(load_settings(env={"STEMEDB_HOST": host, "STEMEDB_AUTH_READ": "open"})) \
        == "open"
    assert read_mode(load_settings(env={"STEMEDB_HOST": host, "STEMEDB_AUTH_READ": "token"})) \
        == "token"


def test_bad_auth_settings_are_one_line() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"STEMEDB_AUTH_READ": "closed"})
    assert str(e.value).startswith("auth.read from STEMEDB_AUTH_READ: must be")
    with pytest.raises(ConfigError) as e:
        load_settings(env={"STEMEDB_AUTH_METRICS": "maybe"})
    assert "auth.metrics from STEMEDB_AUTH_METRICS" in str(e.value)


@pytest.mark.parametrize("method, path, token_mode, need", [
    ("GET", "/v1/assertions", True, "read"),
    ("GET", "/v1/assertions", False, OPTIONAL),
    ("GET", "/v1/beliefs/paris", True, "read"),
    ("POST", "/v1/assert", True, NONE),
    ("POST", "/v1/assert/batch", True, NONE),
    ("POST", "/v1/retract", True, NONE),
    ("GET", "/v1/admin/quarantine", False, "review"),
    ("POST", "/v1/admin/quarantine/abc/approve", False, "review"),
    ("GET", "/v1/admin/quarantinex", False, "admin"),
    ("GET", "/v1/admin/tokens", False, "admin"),
    ("POST", "/v1/admin/tokens", True, "admin"),
    ("GET", "/healthz", True, NONE),
    ("GET", "/docs", True, NONE),
])
def test_needed_scope(method: str, path: str, token_mode: bool, need: str) -> None:
    assert needed_scope(method, path, token_mode) == need


def test_the_sdk_sends_its_token_on_reads_only() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization")))
        return httpx.Response(200, json={"items": [], "results": [], "tokens": []})

    key = AgentKey.generate()
    with Client("http://x", key, token="stm_read", transport=httpx.MockTransport(handler),
                max_retries=0) as c:
        c.query(subject="paris")
        c.request("POST", "/v1/assert", json={})
        c.admin.tokens()
    assert seen == [("/v1/assertions", "Bearer stm_read"), ("/v1/assert", None),
                    ("/v1/admin/tokens", "Bearer stm_read")]
    seen.clear()
    with Client("http://x", token="stm_read", admin_token="boot",
                transport=httpx.MockTransport(handler), max_retries=0) as c:
        c.admin.tokens()
        c.query()
    assert seen == [("/v1/admin/tokens", "Bearer boot"), ("/v1/assertions", "Bearer stm_read")]


def test_the_sdk_takes_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"items": []})

    monkeypatch.setenv("STEMEDB_TOKEN", "stm_env")
    with Client("http://x", transport=httpx.MockTransport(handler), max_retries=0) as c:
        c.query()
    assert seen == ["Bearer stm_env"]
