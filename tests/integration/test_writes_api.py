"""Every SPEC §3 status code against a real server process; nothing stored on rejection."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, now_rfc3339, signed_headers

pytestmark = pytest.mark.integration


def _count(srv: ServerProcess) -> int:
    r = httpx.get(srv.url + "/v1/assertions", params={"include_inactive": "true", "limit": 1000})
    return len(r.json()["items"])


def _is_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    p = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(p)
    assert p["status"] == status
    assert p["instance"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text and "/src/" not in r.text and ".py" not in r.text
    return p


def test_status_codes_and_nothing_stored_on_rejection(server: ServerProcess, key: AgentKey) -> None:
    url = server.url + "/v1/assert"
    body = assertion_body(key)

    # 201 stored
    r = httpx.post(url, content=body, headers=signed_headers(key, body))
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "accepted" and first["lsn"] >= 1 and len(first["id"]) == 64
    assert r.headers["x-request-id"]

    # 200 retry: same body + signature → original outcome, nothing stored twice
    r = httpx.post(url, content=body, headers=signed_headers(key, body))
    assert r.status_code == 200 and r.json() == first
    assert _count(server) == 1

    # 400 not JSON / not UTF-8
    for bad in (b"{not json", b'{"subject": "\xff\xfe"}'):
        _is_problem(httpx.post(url, content=bad, headers=signed_headers(key, bad)), 400)

    # 401 missing / invalid signature
    b2 = assertion_body(key)
    _is_problem(httpx.post(url, content=b2, headers={"Content-Type": "application/json"}), 401)
    other = AgentKey.generate()
    _is_problem(httpx.post(url, content=b2, headers={
        "Content-Type": "application/json", "X-Agent-Signature": other.sign_b64(b2)}), 401)
    _is_problem(httpx.post(url, content=b2, headers={
        "Content-Type": "application/json", "X-Agent-Signature": "not base64!"}), 401)

    # 409 nonce reused with a different body
    nonce = orjson.loads(body)["nonce"]
    b3 = assertion_body(key, object="germany", nonce=nonce)
    _is_problem(httpx.post(url, content=b3, headers=signed_headers(key, b3)), 409)

    # 413 body too large
    big = assertion_body(key, object="x" * 70_000)
    _is_problem(httpx.post(url, content=big, headers=signed_headers(key, big)), 413)

    # 415 wrong content type
    b4 = assertion_body(key)
    h = signed_headers(key, b4) | {"Content-Type": "text/plain"}
    _is_problem(httpx.post(url, content=b4, headers=h), 415)

    # 422 schema violations, each naming the field
    cases = {
        "confidence": assertion_body(key, confidence=1.5),
        "subject": assertion_body(key, subject="   "),
        "surprise": assertion_body(key, surprise=1),
        "nonce": assertion_body(key, nonce="short"),
        "object": assertion_body(key, object=None),
        "evidence": assertion_body(key, evidence=["e"] * 33),
    }
    for field, b in cases.items():
        p = _is_problem(httpx.post(url, content=b, headers=signed_headers(key, b)), 422)
        assert field in {e["field"].split(".")[0] for e in p["errors"]}, p

    # 422 timestamp outside the skew window names the field
    for delta in (-3600, 3600):
        b = assertion_body(key, timestamp=now_rfc3339(delta))
        p = _is_problem(httpx.post(url, content=b, headers=signed_headers(key, b)), 422)
        assert p["errors"][0]["field"] == "timestamp"

    assert _count(server) == 1  # nothing from any rejected request was stored


def test_signature_header_is_standard_base64_of_raw_signature(server: ServerProcess,
                                                             key: AgentKey) -> None:
    body = assertion_body(key)
    sig = base64.b64encode(key.sign(body)).decode()
    r = httpx.post(server.url + "/v1/assert", content=body,
                   headers={"Content-Type": "application/json; charset=utf-8",
                            "X-Agent-Signature": sig})
    assert r.status_code == 201


def test_retract_rules(server: ServerProcess, key: AgentKey) -> None:
    body = assertion_body(key, subject="earth", predicate="shape", object="flat")
    aid = httpx.post(server.url + "/v1/assert", content=body,
                     headers=signed_headers(key, body)).json()["id"]

    def retract(k: AgentKey, target: str) -> httpx.Response:
        rb = orjson.dumps({"retracts": target, "reason": "wrong", "agent_id": k.agent_id,
                           "timestamp": now_rfc3339(), "nonce": f"r-{target[:10]}-{k.agent_id[:6]}"})
        return httpx.post(server.url + "/v1/retract", content=rb, headers=signed_headers(k, rb))

    _is_problem(retract(AgentKey.generate(), aid), 403)   # not the author
    _is_problem(retract(key, "0" * 64), 404)               # unknown assertion
    r = retract(key, aid)
    assert r.status_code == 201 and r.json()["status"] == "retracted"
    got = httpx.get(f"{server.url}/v1/assertions/{aid}").json()
    assert got["status"] == "retracted"
    listed = httpx.get(server.url + "/v1/assertions", params={"subject": "earth"}).json()
    assert listed["items"] == []
    with_inactive = httpx.get(server.url + "/v1/assertions",
                              params={"subject": "earth", "include_inactive": "true"}).json()
    assert [i["status"] for i in with_inactive["items"]] == ["retracted"]
    again = orjson.dumps({"retracts": aid, "reason": "again", "agent_id": key.agent_id,
                          "timestamp": now_rfc3339(), "nonce": "second-retraction"})
    _is_problem(httpx.post(server.url + "/v1/retract", content=again,
                           headers=signed_headers(key, again)), 409)


def test_batch_one_bad_item_never_fails_the_others(server: ServerProcess, key: AgentKey) -> None:
    good = [assertion_body(key, subject=f"s{i}") for i in range(5)]
    items = [{"body": b.decode(), "signature": key.sign_b64(b)} for b in good]
    bad_sig = assertion_body(key, subject="forged")
    items.insert(2, {"body": bad_sig.decode(), "signature": AgentKey.generate().sign_b64(bad_sig)})
    items.append({"body": "{nope", "signature": key.sign_b64(b"{nope")})
    items.append(items[0])  # the same write twice in one batch
    r = httpx.post(server.url + "/v1/assert/batch", json={"items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(len(items)))
    statuses = [x["status"] for x in results]
    assert statuses == ["accepted", "accepted", "error", "accepted", "accepted", "accepted",
                        "error", "accepted"]
    assert results[2]["error"]["status"] == 401
    assert results[6]["error"]["status"] == 400
    assert results[7]["id"] == results[0]["id"] and results[7]["lsn"] == results[0]["lsn"]
    assert _count(server) == 5


def test_batch_envelope_errors(server: ServerProcess) -> None:
    url = server.url + "/v1/assert/batch"
    _is_problem(httpx.post(url, json={"items": []}), 422)
    _is_problem(httpx.post(url, json={"things": 1}), 422)
    _is_problem(httpx.post(url, content=b"[", headers={"Content-Type": "application/json"}), 400)
    _is_problem(httpx.post(url, json={"items": [{"body": 1, "signature": "x"}]}), 422)


def test_unknown_route_and_method_are_problems(server: ServerProcess) -> None:
    _is_problem(httpx.get(server.url + "/v1/nothing"), 404)
    _is_problem(httpx.get(server.url + "/v1/assert"), 405)
    _is_problem(httpx.get(server.url + "/v1/assertions/" + "a" * 64), 404)
