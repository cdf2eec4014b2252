"""Request ids: every answer carries one; a sane incoming id is kept, others replaced."""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from stemedb.http.middleware import RequestIdMiddleware, new_request_id


def test_new_ids_look_like_uuid4_hex_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_answer_carries_an_id_and_a_sane_incoming_one_is_kept() -> None:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = RequestIdMiddleware(Starlette(routes=[Route("/", ok)]))
    with TestClient(app) as c:
        seen = {c.get("/").headers["x-request-id"] for _ in range(50)}
        assert len(seen) == 50
        assert c.get("/", headers={"x-request-id": "lb-probe-7"}).headers["x-request-id"] == "lb-probe-7"
        replaced = c.get("/", headers={"x-request-id": "bad id\x7f"}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)
