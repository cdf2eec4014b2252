"""``stemedb admin …``: arguments, output, exit codes against an httpx.MockTransport, and one
real-server run of ``stemedb admin quarantine list --json`` reading the token file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from stemedb.cli import admin_cmds
from stemedb.client import Client
from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, signed_headers

TOKEN = "t0ken-from-env"
AGENT = "8f3a2b1c" + "0" * 56
OTHER = "7d2e5f9a" + "1" * 56
QID = "a" * 32


def item(qid: str = QID, agent_id: str = AGENT, reason: str = "LowQuality", **extra: Any) -> dict:
    return {
        "id": qid,
        "assertion_id": "b" * 64,
        "agent_id": agent_id,
        "reason": reason,
        "score": 0.21,
        "signals": [
            {
                "name": "placeholder_text",
                "amount": 0.6,
                "detail": "subject is a placeholder: 'asdfasdf'",
            }
        ],
        "breakdown": {"quality": 0.21, "trust": 0.4, "trusted": False, "reason": reason},
        "status": "pending",
        "created_at": "2026-02-11T10:23:45.123456Z",
        "decided_at": None,
        "decided_by": None,
        "decision_reason": None,
        "notes": [],
        "assertion": {
            "subject": "asdfasdf",
            "predicate": "is",
            "object": "!!!!!!!!",
            "confidence": 0.5,
            "agent_id": agent_id,
        },  # fmt: skip
        **extra,
    }


class FakeServer:
    """Answers by (method, path); records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Any] = {}
        self.requests: list[httpx.Request] = []
        self.tokens: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.routes.get((request.method, request.url.path))
        if reply is None:
            return problem(404, "Not found", f"no route {request.method} {request.url.path}")
        return reply(request) if callable(reply) else reply

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, i: int = -1) -> Any:
        content = self.requests[i].content
        return orjson.loads(content) if content else None


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": "req-7", **extra}  # fmt: skip
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()

    def make_client(url: str, token: str | None) -> Client:
        fake.tokens.append(token)
        return Client(url, admin_token=token, transport=httpx.MockTransport(fake),
                      sleep=lambda s: None)  # fmt: skip

    monkeypatch.setattr(admin_cmds, "make_client", make_client)
    for name in ("STEMEDB_URL", "STEMEDB_DATA_DIR", "STEMEDB_ADMIN_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEMEDB_ADMIN_TOKEN", TOKEN)
    return fake


def run(*args: str, input: str | None = None, env: dict[str, str | None] | None = None,
        columns: int = 200) -> Any:  # fmt: skip
    env = {"COLUMNS": str(columns), **(env or {})}
    return CliRunner().invoke(admin_cmds.admin, list(args), input=input, env=env,
                              catch_exceptions=False)  # fmt: skip


# -- token, headers, errors ---------------------------------------------------------------------


def test_token_from_env_is_sent_as_bearer_with_actor(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/quarantine"] = httpx.Response(
        200, json={"items": [], "total": 0, "next_cursor": None}
    )
    result = run("quarantine", "list", "--actor", "alice", "--url", "http://db.example:9")
    assert result.exit_code == 0, result.output
    req = server.last
    assert str(req.url).startswith("http://db.example:9/v1/admin/quarantine")
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["x-admin-actor"] == "alice"
    assert req.url.params["status"] == "pending"


def test_token_from_data_dir_when_env_is_unset(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEMEDB_ADMIN_TOKEN")
    (tmp_path / "admin.token").write_text("from-file\n")
    server.routes["GET", "/v1/admin/content_defense/thresholds"] = httpx.Response(
        200, json={"quality_threshold": 0.6}
    )
    result = run("thresholds", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert server.last.headers["authorization"] == "Bearer from-file"
    # the environment variable names the data dir too
    result = run("thresholds", env={"STEMEDB_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0 and server.tokens[-1] == "from-file"
    # and STEMEDB_ADMIN_TOKEN wins over the file
    result = run("thresholds", "--data-dir", str(tmp_path), env={"STEMEDB_ADMIN_TOKEN": "env"})
    assert result.exit_code == 0 and server.tokens[-1] == "env"


def test_no_token_is_a_clear_usage_error(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEMEDB_ADMIN_TOKEN")
    result = run("quarantine", "list", "--data-dir", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "no admin token" in result.stderr
    assert "STEMEDB_ADMIN_TOKEN" in result.stderr and "admin.token" in result.stderr
    assert server.requests == []
    (tmp_path / "admin.token").write_text("  \n")
    result = run("quarantine", "list", "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "is empty" in result.stderr


def test_unreadable_token_file(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEMEDB_ADMIN_TOKEN")
    (tmp_path / "admin.token").write_text("secret")
    real = Path.read_text

    def denied(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "admin.token":  # what a 0600 file of another user does
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    result = run("quarantine", "list", "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "permission denied" in result.stderr
    assert "run this command as that user or set STEMEDB_ADMIN_TOKEN" in result.stderr
    assert server.requests == []


def test_refused_token_exit_1_with_hint(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/quarantine"] = problem(
        401, "Missing or invalid admin token", "send Authorization: Bearer <admin token>"
    )
    result = run("quarantine", "list")
    assert result.exit_code == 1
    assert "401 Missing or invalid admin token" in result.stderr
    assert "refused the admin token from STEMEDB_ADMIN_TOKEN" in result.stderr
    assert result.stdout == ""


def test_unreachable_server_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(
        admin_cmds,
        "make_client",
        lambda url, token: Client(
            url, admin_token=token, transport=httpx.MockTransport(refuse), sleep=lambda s: None
        ),
    )
    monkeypatch.setenv("STEMEDB_ADMIN_TOKEN", TOKEN)
    result = run("breaker", "list")
    assert result.exit_code == 3
    assert "cannot reach the server" in result.stderr


def test_agent_needs_no_token(server: FakeServer, monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.delenv("STEMEDB_ADMIN_TOKEN")
    server.routes["GET", f"/v1/agents/{AGENT}"] = httpx.Response(200, json={
        "agent_id": AGENT, "trust": 0.42, "trusted": False,
        "counts": {"accepted": 3, "quarantined": 9, "approved": 1, "rejected": 7, "retracted": 0},
        "quarantine_pending": 1, "first_seen": "2026-02-11T10:00:00Z",
        "last_seen": "2026-02-11T11:00:00Z", "allowlisted": False,
        "circuit_breaker": {"agent_id": AGENT, "state": "OPEN", "reason": "flooding_quarantine",
                            "until": "2026-02-11T12:00:00Z"},
    })  # fmt: skip
    result = run("agent", AGENT, "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    for text in ("0.42", "quarantined", "rejected", "OPEN", "flooding_quarantine"):
        assert text in result.stdout
    assert "authorization" not in server.last.headers
    result = run("agent", AGENT, "--json")
    assert orjson.loads(result.stdout)["counts"]["rejected"] == 7


def test_path_segments_are_escaped(server: FakeServer) -> None:
    result = run("quarantine", "show", "../content_defense/thresholds")
    assert result.exit_code == 1
    assert server.last.url.raw_path.startswith(b"/v1/admin/quarantine/..%2Fcontent_defense")


# -- quarantine list ----------------------------------------------------------------------------


def test_list_table_and_filters(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/quarantine"] = httpx.Response(200, json={
        "items": [item(), item("c" * 32, OTHER, "Duplicate")], "total": 7,
        "next_cursor": "CUR1"})  # fmt: skip
    result = run("quarantine", "list", "--agent", "8f3a2b1c", "--reason", "LowQuality",
                 "--limit", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    params = server.last.url.params
    assert (params["agent_id"], params["reason"], params["limit"]) == (
        "8f3a2b1c",
        "LowQuality",
        "2",
    )
    assert "cursor" not in params
    assert "2 items of 7 (pending)" in result.stdout
    for text in (QID, "8f3a2b1c0000", "LowQuality", "Duplicate", "asdfasdf", "!!!!!!!!"):
        assert text in result.stdout
    assert "--cursor CUR1" in result.stderr
    # on an 80-column terminal the full item id (needed to act on it) still fits
    narrow = run("quarantine", "list", columns=80)
    assert QID in narrow.stdout and "8f3a2b1c " in narrow.stdout and "asdfasdf" in narrow.stdout
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    result = run("quarantine", "list", "--cursor", "CUR1", "--status", "all")
    assert server.last.url.params["cursor"] == "CUR1"
    assert server.last.url.params["status"] == "all"
    assert "status" in result.stdout


def test_list_json_is_the_server_answer(server: FakeServer) -> None:
    page = {"items": [item()], "total": 1, "next_cursor": None}
    server.routes["GET", "/v1/admin/quarantine"] = httpx.Response(200, json=page)
    result = run("quarantine", "list", "--json")
    assert orjson.loads(result.stdout) == page


def test_list_bad_status_is_a_usage_error(server: FakeServer) -> None:
    result = run("quarantine", "list", "--status", "maybe")
    assert result.exit_code == 2 and server.requests == []


def test_list_server_validation_error(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/quarantine"] = problem(
        422,
        "Request failed validation",
        "reason: must be one of …",
        errors=[{"field": "reason", "message": "must be one of Duplicate, LowQuality"}],
    )
    result = run("quarantine", "list", "--reason", "Nope")
    assert result.exit_code == 1
    assert "reason: must be one of Duplicate, LowQuality" in result.stderr


def _paged(pages: list[list[dict]]) -> Any:
    def reply(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("cursor", "0"))
        nxt = str(n + 1) if n + 1 < len(pages) else None
        total = sum(len(p) for p in pages)
        return httpx.Response(200, json={"items": pages[n], "total": total, "next_cursor": nxt})

    return reply


def test_list_all_follows_cursors(server: FakeServer) -> None:
    pages = [[item("1" * 32), item("2" * 32)], [item("3" * 32)]]
    server.routes["GET", "/v1/admin/quarantine"] = _paged(pages)
    result = run("quarantine", "list", "--all", "--json", "--limit", "2")
    data = orjson.loads(result.stdout)
    assert [i["id"] for i in data["items"]] == ["1" * 32, "2" * 32, "3" * 32]
    assert data["total"] == 3 and data["next_cursor"] is None
    assert len(server.requests) == 2
    assert all(r.url.params["limit"] == "2" for r in server.requests)


def test_list_by_agent_counts_busiest_first_over_every_page(server: FakeServer) -> None:
    third = "6c1b4a8e" + "2" * 56
    pages = [
        [item(f"{i:032x}", AGENT) for i in range(4)] + [item("e" * 32, OTHER, "Duplicate")],
        [item("f" * 32, OTHER), item("d" * 32, third), item("9" * 32, AGENT, "Duplicate")],
    ]
    server.routes["GET", "/v1/admin/quarantine"] = _paged(pages)
    result = run("quarantine", "list", "--by-agent", "--json")
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert rows == [
        {"agent_id": AGENT, "count": 5, "reasons": {"LowQuality": 4, "Duplicate": 1}},
        {"agent_id": OTHER, "count": 2, "reasons": {"Duplicate": 1, "LowQuality": 1}},
        {"agent_id": third, "count": 1, "reasons": {"LowQuality": 1}},
    ]
    result = run("quarantine", "list", "--by-agent")
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert "8 items (pending) by agent" in lines[0]
    body = [ln for ln in lines if ln.lstrip().startswith(("8f3a", "7d2e", "6c1b"))]
    assert [ln.split()[0][:8] for ln in body] == ["8f3a2b1c", "7d2e5f9a", "6c1b4a8e"]
    assert body[0].split()[1] == "5"
    result = run("quarantine", "list", "--by-reason", "--json")
    assert orjson.loads(result.stdout) == [
        {"reason": "LowQuality", "count": 6},
        {"reason": "Duplicate", "count": 2},
    ]
    assert run("quarantine", "list", "--by-agent", "--by-reason").exit_code == 2


# -- one item -----------------------------------------------------------------------------------


def test_show_table_with_breakdown_and_notes_no_markup(server: FakeServer) -> None:
    it = item(notes=[{"note": "looks like [bold]spam[/bold]", "by": "admin:bob",
                      "at": "2026-02-11T10:30:00Z"}])  # fmt: skip
    it["assertion"]["subject"] = "[red]x[/red] [/]"
    server.routes["GET", f"/v1/admin/quarantine/{QID}"] = httpx.Response(200, json=it)
    result = run("quarantine", "show", QID)
    assert result.exit_code == 0, result.output
    for text in ("LowQuality", "placeholder_text", "0.6", "subject is a placeholder",
                 "score breakdown", "quality", "trusted", "[red]x[/red] [/]",
                 "admin:bob", "looks like [bold]spam[/bold]", "!!!!!!!!"):  # fmt: skip
        assert text in result.stdout
    assert orjson.loads(run("quarantine", "show", QID, "--json").stdout) == it


def test_show_unknown_id_exit_1(server: FakeServer) -> None:
    server.routes["GET", f"/v1/admin/quarantine/{QID}"] = problem(
        404, "Not found", f"no quarantine item {QID}"
    )
    result = run("quarantine", "show", QID)
    assert result.exit_code == 1
    assert f"404 Not found: no quarantine item {QID}" in result.stderr


def test_approve_without_and_with_note(server: FakeServer) -> None:
    done = item(status="approved")
    server.routes["POST", f"/v1/admin/quarantine/{QID}/approve"] = httpx.Response(200, json=done)
    result = run("quarantine", "approve", QID)
    assert result.exit_code == 0, result.output
    assert server.last.content == b""  # the body is optional
    assert f"approved {QID} (assertion {'b' * 64} is now active)" in result.stdout
    result = run("quarantine", "approve", QID, "--note", "checked the source", "--json")
    assert server.body() == {"note": "checked the source"}
    assert orjson.loads(result.stdout)["status"] == "approved"


def test_approve_twice_shows_current_state(server: FakeServer) -> None:
    server.routes["POST", f"/v1/admin/quarantine/{QID}/approve"] = problem(
        409, "Quarantine item is already decided", f"quarantine item {QID} is already rejected",
        current={"id": QID, "status": "rejected", "decided_at": "2026-02-11T10:40:00Z",
                 "decided_by": "admin:carol", "decision_reason": "spam"})  # fmt: skip
    result = run("quarantine", "approve", QID)
    assert result.exit_code == 1
    assert "409 Quarantine item is already decided" in result.stderr
    assert "current status: rejected (by admin:carol at 2026-02-11T10:40:00Z)" in result.stderr


def test_reject_and_note(server: FakeServer) -> None:
    server.routes["POST", f"/v1/admin/quarantine/{QID}/reject"] = httpx.Response(
        200, json=item(status="rejected")
    )
    result = run("quarantine", "reject", QID, "--reason", "agent_flooding")
    assert result.exit_code == 0, result.output
    assert server.body() == {"reason": "agent_flooding"}
    assert "kept for audit" in result.stdout
    server.routes["POST", f"/v1/admin/quarantine/{QID}/notes"] = httpx.Response(
        201, json=item(notes=[{"note": "n", "by": "admin:x", "at": "2026-02-11T10:00:00Z"}])
    )
    result = run("quarantine", "note", QID, "asked the agent owner")
    assert result.exit_code == 0, result.output
    assert server.body() == {"note": "asked the agent owner"}
    assert run("quarantine", "note", QID, "  ").exit_code == 2


# -- batch --------------------------------------------------------------------------------------


def _batch_reply(request: httpx.Request) -> httpx.Response:
    body = orjson.loads(request.content)
    ids = body.get("ids") or ["1" * 32, "2" * 32]
    done = [i for i in ids if i != "gone"]
    skipped = [{"id": "gone", "status": "not_found"}] if "gone" in ids else []
    status = "approved" if body["action"] == "approve" else "rejected"
    return httpx.Response(
        200,
        json={
            "action": body["action"],
            "status": status,
            "processed": len(done),
            "ids": done,
            "skipped": skipped,
        },
    )


def test_batch_by_ids_comma_repeat_and_stdin(server: FakeServer) -> None:
    server.routes["POST", "/v1/admin/quarantine/batch"] = _batch_reply
    result = run("quarantine", "batch", "reject", "--ids", "a1,a2", "--ids", "a3 gone",
                 "--reason", "agent_flooding")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert server.body() == {"action": "reject", "ids": ["a1", "a2", "a3", "gone"],
                             "reason": "agent_flooding"}  # fmt: skip
    assert "rejected 3 items" in result.stdout
    assert "skipped 1 (1 not_found)" in result.stderr and "gone" in result.stderr
    # ids piped in, as `jq -r '.items[].id'` prints them (or quoted, as `jq '.items[].id'`)
    result = run("quarantine", "batch", "approve", "--ids", "-", "--note", "ok",
                 input='"b1"\nb2\n\n')  # fmt: skip
    assert result.exit_code == 0, result.output
    assert server.body() == {"action": "approve", "ids": ["b1", "b2"], "note": "ok"}
    assert "approved 2 items" in result.stdout


def test_batch_by_agent(server: FakeServer) -> None:
    server.routes["POST", "/v1/admin/quarantine/batch"] = _batch_reply
    result = run("quarantine", "batch", "reject", "--agent", "8f3a2b1c", "--json")
    assert result.exit_code == 0, result.output
    assert server.body() == {"action": "reject", "agent_id": "8f3a2b1c"}
    assert orjson.loads(result.stdout)["processed"] == 2


@pytest.mark.parametrize("args", [
    ["reject"],
    ["reject", "--ids", "a", "--agent", "8f3a2b1c"],
    ["approve", "--ids", "a", "--reason", "x"],
    ["reject", "--ids", "a", "--note", "x"],
    ["reject", "--ids", " , "],
    ["delete", "--ids", "a"],
])  # fmt: skip
def test_batch_usage_errors(server: FakeServer, args: list[str]) -> None:
    result = run("quarantine", "batch", *args)
    assert result.exit_code == 2
    assert server.requests == []


# -- allowlist ----------------------------------------------------------------------------------


def test_allowlist_list_add_remove(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/content_defense/allowlist"] = httpx.Response(200, json={
        "allowlist": [{"agent_id": AGENT, "expires_at": "2026-02-12T00:00:00Z", "active": True,
                       "reason": "backfill_operation", "added_by": "admin:alice",
                       "added_at": "2026-02-11T10:00:00Z"}]})  # fmt: skip
    result = run("allowlist", "list")
    assert result.exit_code == 0, result.output
    assert "1 allowlisted agent" in result.stdout and "backfill_operation" in result.stdout

    def added(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        return httpx.Response(201, json={**body, "added_by": "admin:alice"})

    server.routes["POST", "/v1/admin/content_defense/allowlist"] = added
    result = run("allowlist", "add", AGENT, "--expires-at", "2026-02-12T00:00:00Z",
                 "--reason", "backfill_operation")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert server.body() == {"agent_id": AGENT, "expires_at": "2026-02-12T00:00:00Z",
                             "reason": "backfill_operation"}  # fmt: skip
    assert f"allowlisted {AGENT} until 2026-02-12T00:00:00Z" in result.stdout

    before = datetime.now(UTC)
    result = run("allowlist", "add", AGENT, "--for", "12h", "--reason", "backfill")
    assert result.exit_code == 0, result.output
    expires = datetime.fromisoformat(server.body()["expires_at"].replace("Z", "+00:00"))
    assert (
        timedelta(hours=12) - timedelta(seconds=2)
        <= expires - before
        <= timedelta(hours=12, seconds=2)
    )

    server.routes["DELETE", f"/v1/admin/content_defense/allowlist/{AGENT}"] = httpx.Response(
        200, json={"status": "removed", "agent_id": AGENT}
    )
    result = run("allowlist", "remove", AGENT)
    assert result.exit_code == 0 and f"removed {AGENT}" in result.stdout


@pytest.mark.parametrize("args", [
    [AGENT, "--reason", "r"],
    [AGENT, "--reason", "r", "--for", "1h", "--expires-at", "2026-02-12T00:00:00Z"],
    [AGENT, "--reason", "r", "--for", "soon"],
    [AGENT, "--for", "1h"],
])  # fmt: skip
def test_allowlist_add_usage_errors(server: FakeServer, args: list[str]) -> None:
    assert run("allowlist", "add", *args).exit_code == 2
    assert server.requests == []


def test_allowlist_add_past_expiry_is_refused_by_the_server(server: FakeServer) -> None:
    server.routes["POST", "/v1/admin/content_defense/allowlist"] = problem(
        422,
        "Request failed validation",
        "expires_at: must be in the future",
        errors=[{"field": "expires_at", "message": "must be in the future"}],
    )
    result = run("allowlist", "add", AGENT, "--expires-at", "2020-01-01T00:00:00Z",
                 "--reason", "r")  # fmt: skip
    assert result.exit_code == 1 and "expires_at: must be in the future" in result.stderr


# -- thresholds ---------------------------------------------------------------------------------

DEFAULTS = {"quality_threshold": 0.6, "confidence_threshold": 0.85,
            "duplicate_lookback_hours": 48.0, "untrusted_confidence_threshold": 0.95}  # fmt: skip


def test_thresholds_get_and_set(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/content_defense/thresholds"] = httpx.Response(
        200, json=DEFAULTS
    )
    server.routes["PUT", "/v1/admin/content_defense/thresholds"] = lambda r: httpx.Response(
        200, json={**DEFAULTS, **orjson.loads(r.content)}
    )
    result = run("thresholds")
    assert result.exit_code == 0, result.output
    assert "quality_threshold" in result.stdout and "0.6" in result.stdout
    assert server.last.method == "GET"
    result = run("thresholds", "--set", "quality_threshold=0.5", "--set",
                 "duplicate_lookback_hours=24", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert server.last.method == "PUT"
    assert server.body() == {"quality_threshold": 0.5, "duplicate_lookback_hours": 24}
    assert orjson.loads(result.stdout)["quality_threshold"] == 0.5


@pytest.mark.parametrize(
    "assignment",
    ["quality_threshold", "=0.5", "quality=0.5", "quality_threshold=high", "quality_threshold=nan"],
)
def test_thresholds_bad_set_is_a_usage_error(server: FakeServer, assignment: str) -> None:
    assert run("thresholds", "--set", assignment).exit_code == 2
    assert server.requests == []


def test_thresholds_out_of_range_from_server(server: FakeServer) -> None:
    server.routes["PUT", "/v1/admin/content_defense/thresholds"] = problem(
        422,
        "Request failed validation",
        "quality_threshold: must be between 0 and 1",
        errors=[{"field": "quality_threshold", "message": "must be between 0 and 1"}],
    )
    result = run("thresholds", "--set", "quality_threshold=7")
    assert result.exit_code == 1
    assert "quality_threshold: must be between 0 and 1" in result.stderr


# -- breakers -----------------------------------------------------------------------------------

BREAKERS = [
    {"agent_id": AGENT, "state": "OPEN", "failure_rate": 0.97, "requests": 40,
     "reason": "flooding_quarantine", "opened_at": "2026-02-11T10:23:45Z",
     "until": "2026-02-11T11:23:45Z"},
    {"agent_id": OTHER, "state": "CLOSED", "failure_rate": 0.1, "requests": 30, "reason": None,
     "opened_at": None, "until": None},
]  # fmt: skip


def test_breaker_list_show_open_reset(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/circuit_breakers"] = httpx.Response(
        200, json={"circuit_breakers": BREAKERS}
    )
    result = run("breaker", "list")
    assert result.exit_code == 0, result.output
    assert "2 circuit breakers" in result.stdout and "flooding_quarantine" in result.stdout
    result = run("breaker", "list", "--state", "open", "--json")
    assert orjson.loads(result.stdout) == {"circuit_breakers": BREAKERS[:1]}

    server.routes["GET", f"/v1/admin/circuit_breakers/{AGENT}"] = httpx.Response(
        200, json=BREAKERS[0]
    )
    result = run("breaker", "show", AGENT)
    assert result.exit_code == 0 and "OPEN" in result.stdout and "0.97" in result.stdout

    server.routes["POST", f"/v1/admin/circuit_breakers/{AGENT}/open"] = httpx.Response(
        200, json={"status": "opened", "agent_id": AGENT, "state": "OPEN",
                   "until": "2026-02-11T11:23:45Z"})  # fmt: skip
    result = run("breaker", "open", AGENT, "--reason", "flooding_quarantine",
                 "--duration-seconds", "3600")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert server.body() == {"reason": "flooding_quarantine", "duration_seconds": 3600}
    assert f"opened breaker of {AGENT} until 2026-02-11T11:23:45Z" in result.stdout

    server.routes["POST", f"/v1/admin/circuit_breakers/{AGENT}/reset"] = httpx.Response(
        200, json={"status": "reset", "agent_id": AGENT, "state": "CLOSED"}
    )
    result = run("breaker", "reset", AGENT, "--json")
    assert orjson.loads(result.stdout)["state"] == "CLOSED"
    assert server.last.content == b""
    result = run("breaker", "reset", AGENT, "--reason", "owner fixed the agent")
    assert result.exit_code == 0 and f"reset breaker of {AGENT}: CLOSED" in result.stdout
    assert server.body() == {"reason": "owner fixed the agent"}


@pytest.mark.parametrize(
    "args",
    [
        [AGENT, "--reason", "x"],
        [AGENT, "--duration-seconds", "60"],
        [AGENT, "--reason", "x", "--duration-seconds", "0"],
    ],
)
def test_breaker_open_usage_errors(server: FakeServer, args: list[str]) -> None:
    assert run("breaker", "open", *args).exit_code == 2
    assert server.requests == []


# -- audit --------------------------------------------------------------------------------------


def test_audit(server: FakeServer) -> None:
    server.routes["GET", "/v1/admin/audit"] = httpx.Response(200, json={"items": [
        {"lsn": 9, "at": "2026-02-11T10:40:00.5Z", "by": "admin:carol",
         "action": "quarantine.reject", "target": QID, "detail": {"id": QID, "reason": "spam"}},
    ]})  # fmt: skip
    result = run("audit", "--target", QID, "--limit", "5")
    assert result.exit_code == 0, result.output
    assert server.last.url.params["target"] == QID and server.last.url.params["limit"] == "5"
    for text in ("quarantine.reject", "admin:carol", "spam", "2026-02-11 10:40:00"):
        assert text in result.stdout


def test_admin_group_is_registered_in_main() -> None:
    from stemedb.cli import main

    assert main.commands["admin"] is admin_cmds.admin
    assert [admin_cmds.admin] == admin_cmds.COMMANDS
    assert set(admin_cmds.admin.commands) == {
        "quarantine",
        "allowlist",
        "thresholds",
        "breaker",
        "retract",
        "audit",
        "agent",
        "token",
    }
    assert set(admin_cmds.token.commands) == {"create", "list", "revoke"}
    assert set(admin_cmds.quarantine.commands) == {
        "list",
        "show",
        "approve",
        "reject",
        "note",
        "batch",
    }


# -- against a real server ----------------------------------------------------------------------


@pytest.mark.integration
def test_real_server_quarantine_list_json_with_token_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "STEMEDB_ADMIN_TOKEN"}
    srv = ServerProcess(data, env=env).start()
    try:
        key = AgentKey.generate()
        body = assertion_body(key, subject="asdfasdf", object="!!!!!!!!", evidence=...)
        r = httpx.post(srv.url + "/v1/assert", content=body, headers=signed_headers(key, body))
        assert r.status_code == 202, r.text
        qid = r.json()["quarantine_id"]
        assert (data / "admin.token").stat().st_mode & 0o077 == 0

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "stemedb", "admin", *args, "--url", srv.url,
                 "--data-dir", str(data)],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip

        out = cli("quarantine", "list", "--json")
        assert out.returncode == 0, out.stderr
        page = orjson.loads(out.stdout)
        assert page["total"] == 1
        assert [(i["id"], i["agent_id"]) for i in page["items"]] == [(qid, key.agent_id)]

        out = cli("quarantine", "reject", qid, "--reason", "junk", "--actor", "ci")
        assert out.returncode == 0, out.stderr
        out = cli("audit", "--target", qid, "--json")
        assert out.returncode == 0, out.stderr
        (entry,) = orjson.loads(out.stdout)["items"]
        assert entry["action"] == "quarantine.reject" and entry["by"] == "admin:ci"

        wrong = subprocess.run(
            [sys.executable, "-m", "stemedb", "admin", "quarantine", "list", "--url", srv.url],
            env={**env, "STEMEDB_ADMIN_TOKEN": "wrong"}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert wrong.returncode == 1 and "401" in wrong.stderr
    finally:
        srv.stop()
