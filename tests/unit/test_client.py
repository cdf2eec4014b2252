"""The HTTP client against httpx.MockTransport (which stands for the network)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemedb import signing
from stemedb.client import (
    ApiError,
    AsyncClient,
    Client,
    ClientError,
    ConnectionFailed,
    build_assertion,
    build_retraction,
    format_timestamp,
    parse_retry_after,
    sign_body,
)
from stemedb.model import parse_assertion, parse_retraction
from stemedb.signing import SIGNATURE_HEADER, AgentKey

URL = "http://stemedb.test"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
KEY = AgentKey(bytes(range(32)))

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def problem(status: int, title: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://stemedb.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": "req-123",
        **extra,
    }


def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        json={"id": hashlib.sha256(request.content).hexdigest(), "status": "accepted", "lsn": 7},
    )


class Server:
    """Scripted replies, one per request (the last one repeats); records every request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [accepted]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


def client(server: Server, sleeps: Sleeps | None = None, **kw: Any) -> Client:
    return Client(
        URL, KEY, transport=server.transport, sleep=sleeps if sleeps is not None else Sleeps(), **kw
    )


def assert_signed(request: httpx.Request) -> None:
    sig = signing.decode_signature(request.headers[SIGNATURE_HEADER])
    agent_id = orjson.loads(request.content)["agent_id"]
    assert signing.verify(agent_id, request.content, sig)


# -- bodies --------------------------------------------------------------------------------


def test_build_assertion_fields_and_format() -> None:
    body = build_assertion(
        KEY,
        "paris",
        "capital_of",
        "france",
        0.92,
        evidence=["https://example.org/atlas#p12"],
        context="geo",
        valid_from=datetime(1870, 1, 1, tzinfo=UTC),
    )
    assert b" " not in body.replace(b"https://example.org/atlas#p12", b"")  # compact
    data = orjson.loads(body)
    assert list(data) == [
        "subject",
        "predicate",
        "object",
        "confidence",
        "evidence",
        "context",
        "valid_from",
        "agent_id",
        "timestamp",
        "nonce",
    ]
    assert data["agent_id"] == KEY.agent_id
    assert data["valid_from"] == "1870-01-01T00:00:00.000000Z"
    assert TS_RE.match(data["timestamp"])
    ts = datetime.fromisoformat(data["timestamp"])
    assert abs(ts - datetime.now(UTC)) < timedelta(seconds=5)
    assert re.fullmatch(r"[0-9a-f]{16}", data["nonce"])
    parsed = parse_assertion(body)  # the server's own schema accepts it
    assert parsed.subject == "paris" and parsed.confidence == 0.92


def test_build_assertion_omits_unset_optionals_and_keeps_overrides() -> None:
    body = build_assertion(
        KEY, "s", "p", {"n": 1}, 1, timestamp="2026-02-11T10:23:45Z", nonce="abcdefgh"
    )
    assert body == (
        b'{"subject":"s","predicate":"p","object":{"n":1},"confidence":1,'
        b'"agent_id":"' + KEY.agent_id.encode() + b'",'
        b'"timestamp":"2026-02-11T10:23:45Z","nonce":"abcdefgh"}'
    )


def test_nonces_differ() -> None:
    nonces = {orjson.loads(build_assertion(KEY, "s", "p", "o", 0.5))["nonce"] for _ in range(50)}
    assert len(nonces) == 50


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_build_assertion_refuses_non_finite_confidence(bad: float) -> None:
    with pytest.raises(ValueError):
        build_assertion(KEY, "s", "p", "o", bad)


def test_build_assertion_refuses_naive_times_and_string_evidence() -> None:
    with pytest.raises(ValueError):
        build_assertion(KEY, "s", "p", "o", 0.5, valid_from=datetime(2020, 1, 1))
    with pytest.raises(TypeError):
        build_assertion(KEY, "s", "p", "o", 0.5, evidence="https://one.example")
    with pytest.raises(TypeError):
        build_assertion(KEY, "s", "p", "o", True)


def test_format_timestamp() -> None:
    dt = datetime(2026, 2, 11, 12, 23, 45, 5, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(dt) == "2026-02-11T11:23:45.000005Z"
    assert format_timestamp("2026-02-11T10:23:45Z") == "2026-02-11T10:23:45Z"
    assert TS_RE.match(format_timestamp())


def test_build_retraction_parses() -> None:
    body = build_retraction(KEY, "ab" * 32, "wrong city")
    r = parse_retraction(body)
    assert r.retracts == "ab" * 32 and r.reason == "wrong city" and r.agent_id == KEY.agent_id


def test_sign_body() -> None:
    body = build_assertion(KEY, "s", "p", "o", 0.5)
    same, sig = sign_body(KEY, body)
    assert same is body
    assert signing.verify(KEY.agent_id, body, base64.b64decode(sig))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


# The server refuses C0 control characters in subject and evidence (not in object).
PRINTABLE = st.characters(exclude_characters=[chr(c) for c in range(32)],
                          exclude_categories=("Cs",))


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(PRINTABLE, min_size=1, max_size=40).filter(lambda s: s.strip()),
    obj=json_values.filter(lambda v: v is not None),
    confidence=st.floats(0, 1),
    evidence=st.lists(st.text(PRINTABLE, max_size=30), max_size=3),
)
def test_built_bodies_pass_the_server_schema(
    subject: str, obj: Any, confidence: float, evidence: list[str]
) -> None:
    body = build_assertion(KEY, subject, "p", obj, confidence, evidence=evidence)
    a = parse_assertion(body)
    assert a.subject == subject and a.object == obj and a.evidence == evidence


# -- writes --------------------------------------------------------------------------------


def test_assert_posts_signed_exact_bytes() -> None:
    server = Server()
    with client(server) as c:
        result = c.assert_("paris", "capital_of", "france", 0.92, context="geo")
    (req,) = server.requests
    assert req.method == "POST" and req.url.path == "/v1/assert"
    assert req.headers["content-type"] == "application/json"
    assert_signed(req)
    assert result == {"id": hashlib.sha256(req.content).hexdigest(), "status": "accepted", "lsn": 7}
    assert orjson.loads(req.content)["context"] == "geo"


def test_quarantined_answer_is_returned_as_is() -> None:
    answer = {
        "id": "ab" * 32,
        "status": "quarantined",
        "quarantine_id": "q1",
        "reason": "Duplicate",
    }
    server = Server(httpx.Response(202, json=answer))
    with client(server) as c:
        assert c.assert_("s", "p", "o", 0.5) == answer


def test_post_signed_sends_given_signature_untouched() -> None:
    other = AgentKey.generate()
    body = build_assertion(other, "s", "p", "o", 0.5)
    sig = other.sign_b64(body)
    server = Server()
    with Client(URL, transport=server.transport) as c:  # no key needed with a signature
        c.post_signed(body, sig)
    assert server.requests[0].content == body
    assert server.requests[0].headers[SIGNATURE_HEADER] == sig


def test_signing_without_a_key_is_a_client_error() -> None:
    with Client(URL, transport=Server().transport) as c, pytest.raises(ClientError, match="key"):
        c.assert_("s", "p", "o", 0.5)


def test_retract() -> None:
    server = Server(httpx.Response(200, json={"id": "x", "status": "retracted"}))
    with client(server) as c:
        c.retract("cd" * 32, "superseded by a better source")
    req = server.requests[0]
    assert req.url.path == "/v1/retract"
    assert_signed(req)
    assert orjson.loads(req.content)["retracts"] == "cd" * 32


def test_assert_batch() -> None:
    other = AgentKey.generate()
    presigned = build_assertion(other, "a", "b", "c", 0.5)
    bodies = [build_assertion(KEY, f"s{i}", "p", "o", 0.5) for i in range(3)]
    results = [{"index": i, "status": "accepted", "id": str(i)} for i in range(4)]
    server = Server(httpx.Response(200, json={"results": results}))
    with client(server) as c:
        assert c.assert_batch([*bodies, (presigned, other.sign_b64(presigned))]) == results
    req = server.requests[0]
    assert req.url.path == "/v1/assert/batch"
    items = orjson.loads(req.content)["items"]
    assert [i["body"].encode() for i in items] == [*bodies, presigned]
    for item in items:
        body = item["body"].encode()
        agent = orjson.loads(body)["agent_id"]
        assert signing.verify(agent, body, signing.decode_signature(item["signature"]))


# -- retries -------------------------------------------------------------------------------


def test_retry_on_429_honours_retry_after_and_resends_same_bytes() -> None:
    limited = httpx.Response(
        429, json=problem(429, "Too many requests"), headers={"Retry-After": "2"}
    )
    server = Server(limited, accepted)
    sleeps = Sleeps()
    with client(server, sleeps) as c:
        result = c.assert_("s", "p", "o", 0.5)
    assert sleeps == [2.0]
    first, second = server.requests
    assert first.content == second.content
    assert first.headers[SIGNATURE_HEADER] == second.headers[SIGNATURE_HEADER]
    assert result["status"] == "accepted"


def test_retry_on_503_with_backoff() -> None:
    down = httpx.Response(503, json=problem(503, "Service unavailable"))
    server = Server(down, down, accepted)
    sleeps = Sleeps()
    with client(server, sleeps) as c:
        c.assert_("s", "p", "o", 0.5)
    assert len(server.requests) == 3
    assert len({r.content for r in server.requests}) == 1
    assert len({r.headers[SIGNATURE_HEADER] for r in server.requests}) == 1
    # Exponential backoff with jitter from a 0.1 s base: [0.05, 0.1] then [0.1, 0.2].
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2


def test_gives_up_after_max_retries() -> None:
    server = Server(
        httpx.Response(
            429,
            json=problem(429, "Too many requests", "agent rate limit"),
            headers={"Retry-After": "1", "x-request-id": "req-9"},
        )
    )
    sleeps = Sleeps()
    with client(server, sleeps, max_retries=3) as c, pytest.raises(ApiError) as info:
        c.assert_("s", "p", "o", 0.5)
    assert len(server.requests) == 4  # the first try and three retries
    assert sleeps == [1.0, 1.0, 1.0]
    err = info.value
    assert err.status == 429
    assert err.detail == "agent rate limit"
    assert err.retry_after == 1.0
    assert err.request_id == "req-9"


def test_retry_after_beyond_cap_is_handed_back() -> None:
    server = Server(
        httpx.Response(
            429,
            json=problem(429, "Too many requests", "breaker open"),
            headers={"Retry-After": "300", "x-circuit-breaker-state": "OPEN"},
        )
    )
    sleeps = Sleeps()
    with client(server, sleeps) as c, pytest.raises(ApiError) as info:
        c.assert_("s", "p", "o", 0.5)
    assert sleeps == [] and len(server.requests) == 1
    assert info.value.circuit_breaker_open
    assert "circuit breaker OPEN" in str(info.value)


def test_no_retry_when_max_retries_is_zero() -> None:
    server = Server(httpx.Response(503, json=problem(503, "Service unavailable")))
    with client(server, max_retries=0) as c, pytest.raises(ApiError):
        c.get("ab" * 32)
    assert len(server.requests) == 1


def test_connection_errors_are_retried_then_reported() -> None:
    server = Server(httpx.ConnectError("refused"), accepted)
    sleeps = Sleeps()
    with client(server, sleeps) as c:
        assert c.assert_("s", "p", "o", 0.5)["status"] == "accepted"
    assert len(sleeps) == 1
    assert server.requests[0].content == server.requests[1].content

    server = Server(httpx.ReadTimeout("slow"))
    with client(server, max_retries=2) as c, pytest.raises(ConnectionFailed, match="slow"):
        c.query(subject="s")
    assert len(server.requests) == 3


def test_non_idempotent_generic_post_is_not_resent_after_a_read_error() -> None:
    server = Server(httpx.ReadError("reset"))
    with client(server) as c, pytest.raises(ConnectionFailed):
        c.request("POST", "/v1/admin/quarantine/q1/notes", json={"note": "x"})
    assert len(server.requests) == 1


def test_client_errors_are_not_retried() -> None:
    errors = [{"field": "confidence", "message": "must be a finite number between 0 and 1"}]
    server = Server(
        httpx.Response(
            422,
            json=problem(422, "Request failed validation", "confidence: bad", errors=errors),
            headers={"content-type": "application/problem+json"},
        )
    )
    with client(server) as c, pytest.raises(ApiError) as info:
        c.assert_("s", "p", "o", 0.5)
    assert len(server.requests) == 1
    err = info.value
    assert err.status == 422
    assert err.errors == errors
    assert err.title == "Request failed validation"
    assert err.type.endswith("request-failed-validation")
    assert err.request_id == "req-123"  # from the problem's instance
    assert str(err) == "422 Request failed validation: confidence: bad [request req-123]"


def test_non_json_error_body_becomes_a_problem() -> None:
    server = Server(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with client(server) as c, pytest.raises(ApiError) as info:
        c.health()
    assert info.value.status == 502
    assert info.value.title == "Bad Gateway"
    assert "<html>" in info.value.detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", 2.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0), (None, None), ("soon", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None and 25 <= seconds <= 31


# -- reads --------------------------------------------------------------------------------


def test_get_and_path_safety() -> None:
    item = {"id": "ab" * 32, "status": "active", "lsn": 3}
    server = Server(httpx.Response(200, json=item))
    with client(server) as c:
        assert c.get("ab" * 32) == item
        c.get("../admin/quarantine")
    assert server.requests[0].url.path == "/v1/assertions/" + "ab" * 32
    assert server.requests[1].url.raw_path == b"/v1/assertions/..%2Fadmin%2Fquarantine"


def test_query_parameters() -> None:
    server = Server(httpx.Response(200, json={"items": [], "next_cursor": None}))
    with client(server) as c:
        page = c.query(
            subject="paris",
            object={"b": 1, "a": 2},
            since=datetime(2026, 1, 1, tzinfo=UTC),
            as_of=42,
            include_inactive=True,
            limit=10,
            context=None,
        )
    assert page == {"items": [], "next_cursor": None}
    params = dict(server.requests[0].url.params)
    assert params == {
        "subject": "paris",
        "object": '{"a":2,"b":1}',
        "since": "2026-01-01T00:00:00.000000Z",
        "as_of": "lsn:42",
        "include_inactive": "true",
        "limit": "10",
    }
    assert SIGNATURE_HEADER not in server.requests[0].headers


def test_query_rejects_unknown_filters() -> None:
    with client(Server()) as c, pytest.raises(TypeError, match="colour"):
        c.query(colour="red")  # type: ignore[call-arg]


def pages(pages: Iterable[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    by_cursor = {p.pop("_cursor"): p for p in pages}

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=by_cursor[request.url.params.get("cursor")])

    return reply


def three_pages() -> Callable[[httpx.Request], httpx.Response]:
    return pages(
        [
            {"_cursor": None, "items": [{"id": "1"}, {"id": "2"}], "next_cursor": "c1"},
            {"_cursor": "c1", "items": [{"id": "3"}], "next_cursor": "c2"},
            {"_cursor": "c2", "items": [{"id": "4"}], "next_cursor": None},
        ]
    )


def test_iter_query_follows_cursors() -> None:
    server = Server(three_pages())
    with client(server) as c:
        ids = [item["id"] for item in c.iter_query(subject="paris", limit=2)]
    assert ids == ["1", "2", "3", "4"]
    assert [r.url.params.get("cursor") for r in server.requests] == [None, "c1", "c2"]
    assert all(r.url.params["subject"] == "paris" for r in server.requests)


def test_search() -> None:
    server = Server(httpx.Response(200, json={"items": [{"id": "1"}], "next_cursor": None}))
    with client(server) as c:
        assert c.search("capital OR france", limit=5)["items"] == [{"id": "1"}]
    req = server.requests[0]
    assert req.url.path == "/v1/search"
    assert dict(req.url.params) == {"q": "capital OR france", "limit": "5"}


def test_beliefs_and_agent() -> None:
    server = Server(httpx.Response(200, json={"ok": True}))
    with client(server) as c:
        c.beliefs("paris", predicate="capital_of", as_of="2026-01-01T00:00:00Z")
        c.agent(KEY.agent_id)
    assert server.requests[0].url.path == "/v1/beliefs"
    assert dict(server.requests[0].url.params) == {
        "subject": "paris",
        "predicate": "capital_of",
        "as_of": "2026-01-01T00:00:00Z",
    }
    assert server.requests[1].url.path == f"/v1/agents/{KEY.agent_id}"


def test_health_and_ready() -> None:
    server = Server(
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(503, json={"status": "not_ready", "reason": "index catching up"}),
        httpx.Response(200, text="ok"),
    )
    sleeps = Sleeps()
    with client(server, sleeps) as c:
        assert c.health() == {"status": "ok"}
        ready = c.ready()
        assert c.ready() == {"detail": "ok", "status_code": 200, "ready": True}
    assert ready == {
        "status": "not_ready",
        "reason": "index catching up",
        "status_code": 503,
        "ready": False,
    }
    assert sleeps == []  # a 503 from /readyz is an answer, not a reason to retry


def test_non_json_success_is_an_error() -> None:
    server = Server(httpx.Response(200, text="<html>welcome to nginx</html>"))
    with client(server) as c, pytest.raises(ClientError, match="expected JSON"):
        c.get("ab" * 32)


def test_admin_token_goes_to_admin_paths_only() -> None:
    server = Server(httpx.Response(200, json={}))
    with client(server, admin_token="s3cret") as c:
        c.request("GET", "/v1/admin/quarantine", params={"agent_id": "8f3a2b1c"})
        c.get("ab" * 32)
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"
    assert server.requests[0].url.params["agent_id"] == "8f3a2b1c"
    assert "authorization" not in server.requests[1].headers


def test_base_url_prefix_and_user_agent() -> None:
    server = Server(httpx.Response(200, json={}))
    with Client(URL + "/stemedb/", transport=server.transport) as c:
        c.health()
        assert c.base_url == URL + "/stemedb"
    assert server.requests[0].url == httpx.URL(URL + "/stemedb/healthz")
    assert server.requests[0].headers["user-agent"].startswith("stemedb-python/")


# -- async --------------------------------------------------------------------------------


def aclient(server: Server, sleeps: Sleeps, **kw: Any) -> AsyncClient:
    return AsyncClient(URL, KEY, transport=server.transport, sleep=sleeps.asleep, **kw)


def test_async_assert_with_retry() -> None:
    limited = httpx.Response(429, json=problem(429, "Too many"), headers={"Retry-After": "2"})
    server = Server(limited, accepted)
    sleeps = Sleeps()

    async def main() -> dict[str, Any]:
        async with aclient(server, sleeps) as c:
            return await c.assert_("paris", "capital_of", "france", 0.9)

    result = asyncio.run(main())
    assert result["status"] == "accepted"
    assert sleeps == [2.0]
    first, second = server.requests
    assert first.content == second.content
    assert first.headers[SIGNATURE_HEADER] == second.headers[SIGNATURE_HEADER]
    assert_signed(second)


def test_async_errors_reads_and_cursors() -> None:
    errors = [{"field": "nonce", "message": "too short"}]
    server = Server(httpx.Response(422, json=problem(422, "Invalid", errors=errors)))
    sleeps = Sleeps()

    async def failing() -> None:
        async with aclient(server, sleeps) as c:
            await c.assert_("s", "p", "o", 0.5)

    with pytest.raises(ApiError) as info:
        asyncio.run(failing())
    assert info.value.errors == errors

    server = Server(three_pages())

    async def reading() -> list[str]:
        async with aclient(server, sleeps) as c:
            return [item["id"] async for item in c.iter_query(subject="x")]

    assert asyncio.run(reading()) == ["1", "2", "3", "4"]


def test_async_gives_up_and_batch() -> None:
    server = Server(httpx.Response(503, json=problem(503, "Read-only")))
    sleeps = Sleeps()

    async def main() -> None:
        async with aclient(server, sleeps, max_retries=2) as c:
            await c.assert_batch([build_assertion(KEY, "s", "p", "o", 0.5)])

    with pytest.raises(ApiError) as info:
        asyncio.run(main())
    assert info.value.status == 503
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_async_ready_health_search_retract() -> None:
    server = Server(
        httpx.Response(503, json={"reason": "journal read-only"}),
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(200, json={"items": [], "next_cursor": None}),
        httpx.Response(200, json={"status": "retracted"}),
    )

    async def main() -> list[dict[str, Any]]:
        async with aclient(server, Sleeps()) as c:
            return [
                await c.ready(),
                await c.health(),
                await c.search("paris"),
                await c.retract("ab" * 32),
            ]

    ready, health, found, retracted = asyncio.run(main())
    assert ready["ready"] is False and ready["status_code"] == 503
    assert health == {"status": "ok"}
    assert found["items"] == []
    assert retracted == {"status": "retracted"}
    assert_signed(server.requests[3])


def test_valid_at_is_sent_on_query_and_beliefs() -> None:
    server = Server(httpx.Response(200, json={"items": [], "next_cursor": None}),
                    httpx.Response(200, json={"ok": True}))
    with client(server) as c:
        c.query(subject="germany", valid_at=datetime(1980, 1, 1, tzinfo=UTC), as_of=7)
        c.beliefs("germany", predicate="capital", valid_at="1980-01-01T00:00:00+01:00")
    assert dict(server.requests[0].url.params) == {
        "subject": "germany", "valid_at": "1980-01-01T00:00:00.000000Z", "as_of": "lsn:7"}
    assert dict(server.requests[1].url.params) == {
        "subject": "germany", "predicate": "capital", "valid_at": "1980-01-01T00:00:00+01:00"}
