"""``client.admin`` against httpx.MockTransport: one request per endpoint, the same from
the sync and the async client; errors are the client's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from stemedb.client import ApiError, AsyncClient, Client, ConnectionFailed

URL = "http://stemedb.test"
TOKEN = "s3cret"
AGENT = "8f3a2b1c" + "0" * 56
QID = "a" * 32
AID = "b" * 64


class Recorder:
    """Answers every request with ``reply``; records them."""

    def __init__(self, reply: httpx.Response | None = None) -> None:
        self.reply = reply or httpx.Response(200, json={"ok": True})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.reply


# (method name, args, kwargs, HTTP method, raw path, query, JSON body or None)
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str, str, dict[str, str], Any]] = [
    ("quarantine", (), {"agent_id": "8f3a2b1c", "reason": "LowQuality", "status": "all",
                        "limit": 50, "cursor": None},
     "GET", "/v1/admin/quarantine",
     {"agent_id": "8f3a2b1c", "reason": "LowQuality", "status": "all", "limit": "50"}, None),
    ("quarantine_item", (QID,), {}, "GET", f"/v1/admin/quarantine/{QID}", {}, None),
    ("approve", (QID,), {}, "POST", f"/v1/admin/quarantine/{QID}/approve", {}, None),
    ("approve", (QID,), {"note": "checked"}, "POST", f"/v1/admin/quarantine/{QID}/approve", {},
     {"note": "checked"}),
    ("reject", (QID,), {"reason": "junk"}, "POST", f"/v1/admin/quarantine/{QID}/reject", {},
     {"reason": "junk"}),
    ("add_note", (QID, "looks fine"), {}, "POST", f"/v1/admin/quarantine/{QID}/notes", {},
     {"note": "looks fine"}),
    ("batch", ("reject",), {"ids": [QID, "c" * 32], "reason": "spam"}, "POST",
     "/v1/admin/quarantine/batch", {},
     {"action": "reject", "ids": [QID, "c" * 32], "reason": "spam"}),
    ("batch", ("approve",), {"agent_id": AGENT, "note": "backfill"}, "POST",
     "/v1/admin/quarantine/batch", {}, {"action": "approve", "agent_id": AGENT, "note": "backfill"}),
    ("retract", (AID, "wrong"), {}, "POST", f"/v1/admin/assertions/{AID}/retract", {},
     {"reason": "wrong"}),
    ("breakers", (), {}, "GET", "/v1/admin/circuit_breakers", {}, None),
    ("breaker", (AGENT,), {}, "GET", f"/v1/admin/circuit_breakers/{AGENT}", {}, None),
    ("open_breaker", (AGENT, "flooding", 3600), {}, "POST",
     f"/v1/admin/circuit_breakers/{AGENT}/open", {}, {"reason": "flooding", "duration_seconds": 3600}),
    ("reset_breaker", (AGENT,), {}, "POST", f"/v1/admin/circuit_breakers/{AGENT}/reset", {}, None),
    ("reset_breaker", (AGENT, "fixed"), {}, "POST", f"/v1/admin/circuit_breakers/{AGENT}/reset",
     {}, {"reason": "fixed"}),
    ("thresholds", (), {}, "GET", "/v1/admin/content_defense/thresholds", {}, None),
    ("set_thresholds", ({"quality_threshold": 0.7},), {}, "PUT",
     "/v1/admin/content_defense/thresholds", {}, {"quality_threshold": 0.7}),
    ("allowlist", (), {}, "GET", "/v1/admin/content_defense/allowlist", {}, None),
    ("allow", (AGENT, datetime(2026, 2, 12, tzinfo=UTC), "backfill"), {}, "POST",
     "/v1/admin/content_defense/allowlist", {},
     {"agent_id": AGENT, "expires_at": "2026-02-12T00:00:00.000000Z", "reason": "backfill"}),
    ("disallow", (AGENT,), {}, "DELETE", f"/v1/admin/content_defense/allowlist/{AGENT}", {}, None),
    ("audit", (), {"target": QID, "limit": 5}, "GET", "/v1/admin/audit",
     {"target": QID, "limit": "5"}, None),
]  # fmt: skip


def check(request: httpx.Request, method: str, path: str, query: dict[str, str],
          body: Any) -> None:  # fmt: skip
    assert request.method == method
    assert request.url.raw_path.split(b"?")[0].decode() == path
    assert dict(request.url.params) == query
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-admin-actor"] == "carol"
    if body is None:
        assert request.content == b""
    else:
        assert request.headers["content-type"] == "application/json"
        assert orjson.loads(request.content) == body


@pytest.mark.parametrize(("name", "args", "kwargs", "method", "path", "query", "body"), CALLS)
def test_each_endpoint_sync_and_async(name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                                      method: str, path: str, query: dict[str, str],
                                      body: Any) -> None:  # fmt: skip
    sync, asyn = Recorder(), Recorder()
    with Client(URL, admin_token=TOKEN, admin_actor="carol", transport=httpx.MockTransport(sync)
                ) as c:  # fmt: skip
        assert getattr(c.admin, name)(*args, **kwargs) == {"ok": True}

    async def run() -> Any:
        async with AsyncClient(URL, admin_token=TOKEN, transport=httpx.MockTransport(asyn)) as c:
            return await getattr(c.admin.acting_as("carol"), name)(*args, **kwargs)

    assert asyncio.run(run()) == {"ok": True}
    for recorder in (sync, asyn):
        (request,) = recorder.requests
        check(request, method, path, query, body)


def test_ids_are_one_escaped_segment() -> None:
    rec = Recorder()
    with Client(URL, admin_token=TOKEN, transport=httpx.MockTransport(rec)) as c:
        c.admin.quarantine_item(" ../content_defense/thresholds\n")
        c.admin.reset_breaker("a/b?c")
    assert rec.requests[0].url.raw_path == b"/v1/admin/quarantine/..%2Fcontent_defense%2Fthresholds"
    assert rec.requests[1].url.raw_path == b"/v1/admin/circuit_breakers/a%2Fb%3Fc/reset"
    assert "x-admin-actor" not in rec.requests[0].headers


def test_problem_answers_raise_api_error_with_the_problem() -> None:
    current = {"status": "approved", "decided_by": "admin:bob"}
    problem = {"type": "https://stemedb.dev/problems/already-decided", "title": "Already decided",
               "status": 409, "detail": f"quarantine item {QID} is already approved",
               "instance": "req-1", "current": current}  # fmt: skip
    rec = Recorder(httpx.Response(409, json=problem,
                                  headers={"content-type": "application/problem+json"}))  # fmt: skip
    with Client(URL, admin_token=TOKEN, transport=httpx.MockTransport(rec)) as c, \
            pytest.raises(ApiError) as info:  # fmt: skip
        c.admin.reject(QID, "late")
    assert info.value.status == 409 and info.value.problem["current"] == current
    assert len(rec.requests) == 1


def test_decisions_are_not_resent_after_a_read_error_but_reads_are() -> None:
    attempts: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ReadError("connection reset")

    with Client(URL, admin_token=TOKEN, transport=httpx.MockTransport(flaky),
                sleep=lambda s: None, max_retries=2) as c:  # fmt: skip
        with pytest.raises(ConnectionFailed):
            c.admin.approve(QID)
        assert attempts == ["POST"]
        with pytest.raises(ConnectionFailed):
            c.admin.breakers()
        assert attempts == ["POST", "GET", "GET", "GET"]


def test_quarantine_pages_follow_cursors() -> None:
    pages = iter([{"items": [{"id": "1"}], "total": 2, "next_cursor": "c1"},
                  {"items": [{"id": "2"}], "total": 2, "next_cursor": None}])  # fmt: skip
    seen: list[httpx.Request] = []

    def paged(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=next(pages))

    with Client(URL, admin_token=TOKEN, transport=httpx.MockTransport(paged)) as c:
        got = list(c.admin.quarantine_pages(status="pending", limit=1))
    assert [p["items"][0]["id"] for p in got] == ["1", "2"]
    assert "cursor" not in seen[0].url.params and seen[1].url.params["cursor"] == "c1"
    assert seen[1].url.params["limit"] == "1"


def test_local_mistakes_are_refused_before_sending() -> None:
    rec = Recorder()
    with Client(URL, admin_token=TOKEN, transport=httpx.MockTransport(rec)) as c:
        with pytest.raises(ValueError, match="ids or agent_id"):
            c.admin.batch("approve")
        with pytest.raises(ValueError, match="ids or agent_id"):
            c.admin.batch("approve", ids=[QID], agent_id=AGENT)
        with pytest.raises(TypeError, match="agent"):
            c.admin.quarantine(agent="x")  # type: ignore[call-arg]
    assert rec.requests == []
