"""Reads against a real server: point reads, filters, cursors, as_of, search."""

from __future__ import annotations

import time

import httpx
import pytest

from stemedb.signing import AgentKey, decode_signature, verify
from tests.helpers import ServerProcess, assertion_body, now_rfc3339, signed_headers

pytestmark = pytest.mark.integration


def _post(srv: ServerProcess, key: AgentKey, **fields: object) -> dict:
    b = assertion_body(key, **fields)
    r = httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(key, b))
    assert r.status_code == 201, r.text
    return r.json()


def test_point_read_carries_what_is_needed_to_reverify(server: ServerProcess, key: AgentKey) -> None:
    out = _post(server, key, object={"b": 1, "a": [1, 2]}, context="geo")
    got = httpx.get(f"{server.url}/v1/assertions/{out['id']}").json()
    assert got["status"] == "active" and got["lsn"] == out["lsn"]
    assert got["object"] == {"b": 1, "a": [1, 2]} and got["context"] == "geo"
    assert got["recorded_at"].endswith("Z")
    body = got["body"].encode()
    assert verify(got["agent_id"], body, decode_signature(got["signature"]))
    import hashlib
    assert hashlib.sha256(body).hexdigest() == out["id"]


def test_filters_and_cursor_pagination(server: ServerProcess) -> None:
    a, b = AgentKey.generate(), AgentKey.generate()
    ids = [_post(server, a, subject="mars", predicate="moons", object=n)["id"] for n in range(7)]
    _post(server, b, subject="mars", predicate="color", object="red", context="astro")
    _post(server, b, subject="venus", predicate="moons", object=0)

    def q(**params: object) -> dict:
        r = httpx.get(server.url + "/v1/assertions", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    assert len(q(subject="mars")["items"]) == 8
    assert len(q(subject="mars", predicate="moons")["items"]) == 7
    assert [i["object"] for i in q(agent_id=b.agent_id)["items"]] == [0, "red"]
    assert len(q(context="astro")["items"]) == 1
    assert len(q(object="red")["items"]) == 1
    assert len(q(predicate="moons", object="3")["items"]) == 1

    seen = []
    page = q(subject="mars", predicate="moons", limit=3)
    # a write after the first page does not shift the snapshot the cursor pages through
    _post(server, a, subject="mars", predicate="moons", object=99)
    while True:
        seen += [i["id"] for i in page["items"]]
        if not page["next_cursor"]:
            break
        page = q(subject="mars", predicate="moons", limit=3, cursor=page["next_cursor"])
    assert seen == list(reversed(ids))  # newest first, each exactly once

    r = httpx.get(server.url + "/v1/assertions", params={"cursor": "garbage!"})
    assert r.status_code == 422
    r = httpx.get(server.url + "/v1/assertions", params={"limit": 0})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


def test_as_of_answers_as_the_database_stood(server: ServerProcess, key: AgentKey) -> None:
    first = _post(server, key, subject="pluto", predicate="is_a", object="planet")
    time.sleep(0.05)
    between = now_rfc3339()
    time.sleep(0.05)
    second = _post(server, key, subject="pluto", predicate="is_a", object="dwarf planet",
                   supersedes=first["id"])

    def objs(**params: object) -> list:
        r = httpx.get(server.url + "/v1/assertions", params={"subject": "pluto", **params})
        assert r.status_code == 200, r.text
        return [(i["object"], i["status"]) for i in r.json()["items"]]

    assert objs() == [("dwarf planet", "active")]
    assert objs(as_of=f"lsn:{first['lsn']}") == [("planet", "active")]
    assert objs(as_of=between) == [("planet", "active")]
    assert objs(as_of=f"lsn:{second['lsn']}") == [("dwarf planet", "active")]
    assert objs(include_inactive="true") == [("dwarf planet", "active"), ("planet", "superseded")]
    assert objs(as_of="2000-01-01T00:00:00Z") == []
    assert httpx.get(server.url + "/v1/assertions", params={"as_of": "soon"}).status_code == 422


def test_search_plain_words_never_fts_syntax(server: ServerProcess, key: AgentKey) -> None:
    _post(server, key, subject="Eiffel Tower", predicate="located_in", object="Paris, France")
    _post(server, key, subject="Big Ben", predicate="located_in", object="London")
    r = httpx.get(server.url + "/v1/search", params={"q": "eiffel paris"})
    assert [i["subject"] for i in r.json()["items"]] == ["Eiffel Tower"]
    for hostile in ('"unbalanced', "a OR b NOT c", "subject:* NEAR(", "*", "')--"):
        r = httpx.get(server.url + "/v1/search", params={"q": hostile})
        assert r.status_code in (200, 422), r.text
    assert httpx.get(server.url + "/v1/search", params={"q": "London OR"}).json()["items"] == []


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
