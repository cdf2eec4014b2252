"""Strict input: a signed body means one thing to every JSON parser, or it is refused.

Refused with 400: a key repeated in one object, a number overflowing to infinity, an
integer beyond 64 bits, a lone UTF-16 surrogate, nesting deeper than ``MAX_DEPTH``.
Refused with 422: C0 control characters in subject, predicate, context, nonce, evidence
(in ``object`` they stay data). The same for batch items, retractions and admin bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb.engine import Database
from stemedb.errors import MalformedBody, StemeError, ValidationFailed
from stemedb.http import create_app
from stemedb.model import MAX_DEPTH
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from stemedb.store import AssertionFilter
from tests.helpers import assertion_body, now_rfc3339

KEY = AgentKey.generate()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    data = tmp_path_factory.mktemp("strict") / "d"
    database = Database(load_settings(env={"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0"},
                                      overrides={"server.data_dir": str(data)}))
    yield database
    database.close()


def write(db: Database, body: bytes, kind: str = "assert", key: AgentKey = KEY) -> int:
    """The status a signed write of ``body`` is answered with."""
    try:
        return asyncio.run(db.write(kind, body, key.sign_b64(body))).status
    except StemeError as e:
        return e.status


def fields(key: AgentKey = KEY, **extra: Any) -> str:
    """The members of a valid assertion body as JSON text, without braces."""
    base = {"subject": "paris", "predicate": "capital_of", "object": "france",
            "confidence": 0.5, "agent_id": key.agent_id, "timestamp": now_rfc3339(),
            "nonce": f"strict-{id(extra)}-{len(extra)}-{now_rfc3339()}"}
    base.update(extra)
    return orjson.dumps(base).decode()[1:-1]


@pytest.mark.parametrize(("text", "names"), [
    ('{%s,"subject":"lyon"}', "'subject'"),
    ('{%s,"object2":{"a":1,"a":2}}', "'a'"),  # nested: refused before the unknown field
    ('{"confidence":0.9,%s}', "'confidence'"),
])
def test_a_repeated_key_is_refused_naming_it(db: Database, text: str, names: str) -> None:
    body = text.replace("%s", fields()).encode()
    with pytest.raises(MalformedBody) as e:
        asyncio.run(db.write("assert", body, KEY.sign_b64(body)))
    assert e.value.status == 400 and names in e.value.detail


@pytest.mark.parametrize("member", [
    '"object":1e400', '"object":-1e999', '"object":123456789012345678901234',
    '"object":"\\ud800"', '"object":"a\\udc00b"', '"object":NaN', '"object":Infinity',
    '"object":' + "[" * MAX_DEPTH + "]" * MAX_DEPTH,
])
def test_numbers_surrogates_and_depth_parsers_disagree_on_are_refused(db: Database,
                                                                       member: str) -> None:
    body = ("{" + fields(object=None).replace('"object":null', member) + "}").encode()
    assert write(db, body) == 400


def test_nesting_up_to_the_limit_is_data(db: Database) -> None:
    deep = "[" * (MAX_DEPTH - 1) + '"x"' + "]" * (MAX_DEPTH - 1)
    body = ("{" + fields(object=None).replace('"object":null', '"object":' + deep) + "}").encode()
    assert write(db, body) in (201, 202)


@pytest.mark.parametrize("name", ["subject", "predicate", "context", "nonce"])
@pytest.mark.parametrize("char", ["\x00", "\x1f", "\t", "\n"])
def test_control_characters_in_the_naming_fields_are_refused(db: Database, name: str,
                                                             char: str) -> None:
    value = f"valid{char}value-{name}-{ord(char)}"
    body = assertion_body(KEY, **{name: value})
    with pytest.raises(ValidationFailed) as e:
        asyncio.run(db.write("assert", body, KEY.sign_b64(body)))
    assert e.value.status == 422 and e.value.errors[0]["field"] == name


def test_control_characters_in_evidence_are_refused_and_in_the_object_kept(db: Database) -> None:
    body = assertion_body(KEY, evidence=["https://example.org/a", "bad\x00one"])
    with pytest.raises(ValidationFailed) as e:
        asyncio.run(db.write("assert", body, KEY.sign_b64(body)))
    assert e.value.errors[0]["field"] == "evidence.1"
    body = assertion_body(KEY, subject="nul object", object="line one\nline two\x00end")
    result = asyncio.run(db.write("assert", body, KEY.sign_b64(body)))
    assert result.status in (201, 202)
    assert db.get_assertion(result.body["id"])["object"] == "line one\nline two\x00end"


def test_retractions_batches_and_admin_bodies_follow_the_same_rules(db: Database) -> None:
    stored = assertion_body(KEY, subject="to retract")
    aid = asyncio.run(db.write("assert", stored, KEY.sign_b64(stored))).body["id"]
    retraction = orjson.dumps({"retracts": aid, "reason": "x", "agent_id": KEY.agent_id,
                               "timestamp": now_rfc3339(), "nonce": "retract-strict-1"})
    doubled = retraction[:-1] + b',"reason":"y"}'
    assert write(db, doubled, "retract") == 400
    bad_reason = retraction.replace(b'"reason":"x"', b'"reason":"x\\u0000"')
    assert write(db, bad_reason, "retract") == 422
    app = create_app(db, close_on_shutdown=False)
    good = assertion_body(KEY, subject="batch good")
    dup = ("{" + fields(subject="batch dup") + ',"predicate":"again"}').encode()
    items = [{"body": b.decode(), "signature": KEY.sign_b64(b)} for b in (good, dup)]

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            r = await c.post("/v1/assert/batch", json={"items": items})
            assert r.status_code == 200
            first, second = r.json()["results"]
            assert first["status"] in ("accepted", "quarantined")
            assert second["status"] == "error" and second["error"]["status"] == 400
            assert "'predicate'" in second["error"]["detail"]
            envelope = b'{"items":[],"items":[]}'
            r = await c.post("/v1/assert/batch", content=envelope,
                             headers={"Content-Type": "application/json"})
            assert r.status_code == 400
            auth = {"Authorization": f"Bearer {app.state.admin_token}",
                    "Content-Type": "application/json"}
            r = await c.put("/v1/admin/content_defense/thresholds", headers=auth,
                            content=b'{"quality_threshold":0.5,"quality_threshold":0.1}')
            assert r.status_code == 400 and "quality_threshold" in r.json()["detail"]
            r = await c.get("/v1/admin/content_defense/thresholds", headers=auth)
            assert r.json()["quality_threshold"] != 0.1  # nothing changed

    asyncio.run(scenario())


# -- one reading or none -------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
_keys = st.sampled_from(["subject", "predicate", "object", "context", "evidence", "a", "b"])


@st.composite
def _object_text(draw: st.DrawFn, depth: int = 0) -> str:
    """JSON object text whose keys may repeat (what a JSON encoder never writes)."""
    members = []
    for key in draw(st.lists(_keys, max_size=4)):
        if depth < 3 and draw(st.booleans()):
            value = draw(_object_text(depth + 1))
        else:
            value = json.dumps(draw(_scalars))
        members.append(f"{json.dumps(key)}:{value}")
    return "{" + ",".join(members) + "}"


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[AgentKey, bytes]:
    """A key of its own (refused writes count against an agent's breaker) and a body."""
    key = AgentKey.generate()
    extra = draw(st.lists(st.tuples(_keys, st.one_of(_object_text(), _scalars.map(json.dumps))),
                          max_size=3))
    text = fields(key, nonce=f"prop-{draw(st.integers(0, 2**62))}")
    for name, value in extra:
        text += f",{json.dumps(name)}:{value}" if isinstance(value, str) else ""
    if draw(st.booleans()):  # the same members in another order
        text = ",".join(reversed(text.split(",")))
    return key, ("{" + text + "}").encode()


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(signed=_bodies())
def test_every_body_is_stored_with_exactly_one_reading_or_refused(
        db: Database, signed: tuple[AgentKey, bytes]) -> None:
    key, body = signed
    status = write(db, body, key=key)
    if status >= 400:
        assert status in (400, 409, 422)
        return
    last = json.loads(body)
    first = json.loads(body, object_pairs_hook=_first_wins)
    assert first == last  # no parser could read it another way
    stored = db.get_assertion(hashlib.sha256(body).hexdigest())
    assert stored["subject"] == last["subject"] and stored["object"] == last["object"]
    assert stored["body"] == body.decode()


def test_the_reading_of_a_refused_body_never_reaches_the_store(db: Database) -> None:
    before = db.reads.applied_lsn
    body = ("{" + fields(subject="visible") + ',"subject":"shadow"}').encode()
    assert write(db, body) == 400
    assert db.reads.applied_lsn == before
    assert db.list_assertions(AssertionFilter(subject="shadow"), None, None)["items"] == []


def test_limits_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "http-api.md").read_text()
    assert f"deeper than {MAX_DEPTH} levels" in doc and "a repeated key" in doc
