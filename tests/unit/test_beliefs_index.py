"""Beliefs and disputes over a real index, in process: trust as of an LSN, replay
consistency (later writes, reindex), the cache against fresh computation, disputes."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb.beliefs import aggregate
from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.index import beliefs as ib
from stemedb.ops.reindex import reindex
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, signed_headers

JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}
RIVERS = ["rhine", "danube", "elbe", "oder", "vistula", "loire", "seine", "rhone"]


def _db(data: Path, **env: str) -> Database:
    return Database(load_settings(env=env, overrides={"server.data_dir": str(data)}))


def _run(db: Database, scenario: Any) -> Any:
    app = create_app(db, close_on_shutdown=False)
    auth = {"Authorization": f"Bearer {app.state.admin_token}"}

    async def go() -> Any:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            return await scenario(World(c, auth))

    return asyncio.run(go())


class World:
    """A client with the few moves these tests make."""

    def __init__(self, c: httpx.AsyncClient, auth: dict[str, str]) -> None:
        self.c, self.auth = c, auth
        self.gauges = 0

    async def post(self, key: AgentKey, expect: int | None = 201, **fields: Any) -> dict[str, Any]:
        b = assertion_body(key, **fields)
        r = await self.c.post("/v1/assert", content=b, headers=signed_headers(key, b))
        if expect is not None:
            assert r.status_code == expect, r.text
        return dict(r.json())

    async def retract(self, key: AgentKey, aid: str) -> dict[str, Any]:
        from stemedb.client import build_retraction

        b = build_retraction(key, aid, "a mistake on my side")
        r = await self.c.post("/v1/retract", content=b, headers=signed_headers(key, b))
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def decide(self, qid: str, action: str = "approve") -> None:
        body = {"note": "checked by hand"} if action == "approve" else {"reason": "wrong"}
        r = await self.c.post(f"/v1/admin/quarantine/{qid}/{action}", headers=self.auth, json=body)
        assert r.status_code == 200, r.text

    async def trusted(self, key: AgentKey, n: int = 5) -> None:
        """n accepted writes on other subjects: enough for is_trusted."""
        for _ in range(n):
            self.gauges += 1
            i = self.gauges
            await self.post(
                key,
                subject=f"{RIVERS[i % len(RIVERS)]} basin gauge {i}",
                predicate="measured_by",
                object=f"station number {i}",  # no random hex: junk-like text
                confidence=0.8,
                evidence=[f"https://gauges.example/{i}"],
            )

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        r = await self.c.get(path, params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _lsn(db: Database) -> int:
    return db.index.applied_lsn


def _counters(db: Database) -> dict[str, tuple[int, ...]]:
    rows = db.index.query(
        "SELECT agent_id, accepted, quarantined, approved, rejected, retracted FROM agents", []
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def _as_of_counts(db: Database, agents: list[str], n: int) -> dict[str, tuple[int, ...]]:
    with ib.snapshot(db.index) as conn:
        got = ib.trust_counts_as_of(conn, agents, n)
    return {
        a: (c.accepted, c.quarantined, c.approved, c.rejected, c.retracted)
        for a, c in got.items()
        if any((c.accepted, c.quarantined, c.approved, c.rejected, c.retracted))
    }


def test_trust_counts_as_of_equal_the_counters_as_they_stood(tmp_path: Path) -> None:
    db = _db(tmp_path / "d")
    keys = [AgentKey.generate() for _ in range(3)]
    history: list[tuple[int, dict[str, tuple[int, ...]]]] = []

    async def scenario(w: World) -> None:
        def snap() -> None:
            history.append((_lsn(db), _counters(db)))

        a, b, c = keys
        first = await w.post(
            a, subject="rhine", predicate="flows_into", object="north sea", confidence=0.8
        )
        snap()
        await w.trusted(b)
        snap()
        q1 = await w.post(c, 202, **JUNK)
        q2 = await w.post(c, 202, **JUNK, context="second")
        q3 = await w.post(
            c,
            202,
            subject="rhine",
            predicate="flows_into",
            object="baltic sea",
            confidence=0.97,
            evidence=["https://atlas.example/rhine"],
        )
        snap()
        await w.decide(q1["quarantine_id"], "reject")
        snap()
        await w.decide(q3["quarantine_id"], "approve")
        snap()
        second = await w.post(
            a,
            subject="rhine",
            predicate="flows_into",
            object="the north sea",
            confidence=0.8,
            supersedes=first["id"],
        )
        snap()
        await w.retract(a, second["id"])
        snap()
        await w.decide(q2["quarantine_id"], "approve")
        snap()

    _run(db, scenario)
    agents = [k.agent_id for k in keys]
    for n, counters in history:
        assert _as_of_counts(db, agents, n) == counters, n
    assert _as_of_counts(db, agents, 0) == {}
    db.close()


def test_rejections_forgotten_by_retention_still_count(tmp_path: Path) -> None:
    db = _db(tmp_path / "d", STEMEDB_REJECTED_RETENTION_DAYS="0")
    key = AgentKey.generate()

    async def scenario(w: World) -> None:
        q = await w.post(key, 202, **JUNK)
        await w.decide(q["quarantine_id"], "reject")
        assert await db.admin.purge_rejected() == 1

    _run(db, scenario)
    assert db.index.query("SELECT count(*) FROM quarantine", [])[0][0] == 0
    n = _lsn(db)
    assert _as_of_counts(db, [key.agent_id], n) == _counters(db) == {key.agent_id: (0, 1, 0, 1, 0)}
    db.close()


async def _contested_world(w: World, keys: list[AgentKey]) -> dict[str, Any]:
    """Two trusted agents say 'black sea', two say 'baltic sea'; one fresh agent 'caspian'."""
    for k in keys[:4]:
        await w.trusted(k)
    ids = {}
    for i, k in enumerate(keys[:4]):
        out = await w.post(
            k,
            subject="danube",
            predicate="flows_into",
            object="black sea" if i < 2 else "baltic sea",
            confidence=0.85,
            evidence=[f"https://atlas-{i}.example/danube"],
        )
        ids[i] = out["id"]
    await w.post(
        keys[4], subject="danube", predicate="flows_into", object="caspian sea", confidence=0.5
    )
    return ids


def test_as_of_answers_do_not_change_after_later_writes_or_reindex(tmp_path: Path) -> None:
    data = tmp_path / "d"
    db = _db(data)
    keys = [AgentKey.generate() for _ in range(6)]
    seen: dict[str, Any] = {}

    async def scenario(w: World) -> None:
        ids = await _contested_world(w, keys)
        n = _lsn(db)
        seen["n"] = n
        seen["belief"] = await w.get("/v1/beliefs", subject="danube", predicate="flows_into")
        seen["subject"] = await w.get("/v1/beliefs", subject="danube")
        seen["disputes"] = await w.get("/v1/disputes", as_of=f"lsn:{n}")
        assert seen["belief"]["as_of_lsn"] == n and seen["belief"]["contested"]
        assert seen["disputes"]["items"][0]["subject"] == "danube"
        # what the trust weights at n depend on keeps moving afterwards
        await w.trusted(keys[4])
        await w.post(keys[5], 202, **JUNK)
        await w.retract(keys[2], ids[2])
        await w.post(
            keys[3],
            subject="danube",
            predicate="flows_into",
            object="black sea",
            confidence=0.85,
            evidence=["https://atlas-3.example/danube-fixed"],
            supersedes=ids[3],
        )
        now = await w.get("/v1/beliefs", subject="danube", predicate="flows_into")
        assert [c["object"] for c in now["candidates"]][:1] == ["black sea"]
        assert not now["contested"]
        await _same_as_before(w, seen)

    _run(db, scenario)
    db.close()
    reindex(data)
    db = _db(data)
    _run(db, lambda w: _same_as_before(w, seen))
    db.close()


async def _same_as_before(w: World, seen: dict[str, Any]) -> None:
    n = seen["n"]
    assert (
        await w.get("/v1/beliefs", subject="danube", predicate="flows_into", as_of=f"lsn:{n}")
        == seen["belief"]
    )
    assert await w.get("/v1/beliefs", subject="danube", as_of=f"lsn:{n}") == seen["subject"]
    assert await w.get("/v1/disputes", as_of=f"lsn:{n}") == seen["disputes"]


def _reference_beliefs(
    conn: Any, subject: str, predicate: str | None, context: str | None, n: int
) -> list[dict[str, Any]]:
    """The beliefs at ``n`` the plain way: every row of the key read, each agent's latest
    active claim picked in Python, trust recounted as of ``n``."""
    sql = f"SELECT {ib._ROW_COLS} FROM assertions WHERE subject = ? AND lsn <= ?"
    params: list[Any] = [subject, n]
    if predicate is not None:
        sql += " AND predicate = ?"
        params.append(predicate)
    if context is not None:
        sql += " AND context = ?"
        params.append(context)
    by_predicate: dict[str, list[Any]] = {}
    for r in conn.execute(sql, params):
        by_predicate.setdefault(r["predicate"], []).append(r)
    out = []
    for p in sorted(by_predicate):
        claims = [ib._claim(r) for r in ib._latest_active(by_predicate[p], n)]
        if claims:
            st = ib.standings(conn, {c.agent_id for c in claims}, n, current=False)
            out.append({"predicate": p, **ib.belief_dict(aggregate(claims, st))})
    return out


def test_cached_answers_equal_fresh_computation_under_random_writes(tmp_path: Path) -> None:
    """The newest-LSN cache is re-validated on every read; after each random write, the
    served answer must equal one computed from scratch."""
    db = _db(tmp_path / "d")
    rnd = random.Random(1234)
    keys = [AgentKey.generate() for _ in range(6)]
    objects = ["black sea", "baltic sea", "north sea"]

    async def scenario(w: World) -> None:
        for k in keys[:3]:
            await w.trusted(k)
        live: dict[str, list[str]] = {k.agent_id: [] for k in keys}
        pending: list[str] = []
        for step in range(60):
            k = rnd.choice(keys)
            move = rnd.random()
            if move < 0.45:
                fields: dict[str, Any] = {
                    "subject": "danube",
                    "predicate": rnd.choice(["flows_into", "ends_in"]),
                    "object": rnd.choice(objects),
                    "context": rnd.choice([None, "geo"]),
                    "confidence": rnd.choice([0.6, 0.8, 0.97]),
                    "evidence": [f"https://atlas-{rnd.randrange(4)}.example/danube"],
                }
                if live[k.agent_id] and rnd.random() < 0.3:
                    fields["supersedes"] = live[k.agent_id].pop()
                out = await w.post(k, None, **{f: v for f, v in fields.items() if v is not None})
                if out.get("status") == "accepted":
                    live[k.agent_id].append(out["id"])
                elif out.get("status") == "quarantined":
                    pending.append(out["quarantine_id"])
            elif move < 0.6 and live[k.agent_id]:
                await w.retract(k, live[k.agent_id].pop(rnd.randrange(len(live[k.agent_id]))))
            elif move < 0.75 and pending:
                await w.decide(pending.pop(0), rnd.choice(["approve", "reject"]))
            elif move < 0.85:
                await w.post(k, None, **JUNK, context=f"junk {step}")
            else:
                await w.trusted(k, 1)
            for params in (
                {"predicate": "flows_into"},
                {"predicate": "ends_in", "context": "geo"},
                {},
            ):
                served = await w.get("/v1/beliefs", subject="danube", **params)
                with ib.snapshot(db.index) as conn:
                    n, current = ib.pin(conn, None)
                    fresh = ib.compute_beliefs(
                        conn, "danube", params.get("predicate"), params.get("context"), n, current
                    )
                    recount = ib.compute_beliefs(
                        conn, "danube", params.get("predicate"), params.get("context"), n, False
                    )
                got = (
                    served["beliefs"]
                    if "beliefs" in served
                    else (
                        [{k: served[k] for k in ("candidates", "contested", "contention")}]
                        if served["candidates"]
                        else []
                    )
                )
                want = [
                    {k: v for k, v in b.items() if k != "predicate"} if "predicate" in params else b
                    for b in fresh.beliefs
                ]
                assert got == want, (step, params)
                assert fresh.beliefs == recount.beliefs  # counters == recount at the newest LSN
                earlier = random.Random(step).randrange(1, n + 1)  # rnd keeps its sequence
                with ib.snapshot(db.index) as conn:
                    for at, cur in ((n, True), (earlier, False)):
                        pred, ctx = params.get("predicate"), params.get("context")
                        assert ib.compute_beliefs(conn, "danube", pred, ctx, at, cur).beliefs == (
                            _reference_beliefs(conn, "danube", pred, ctx, at)
                        ), (step, params, at)

    _run(db, scenario)
    db.close()


def test_beliefs_change_at_once_after_supersede_retract_and_approval(tmp_path: Path) -> None:
    db = _db(tmp_path / "d")
    a, b, fresh = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()

    async def scenario(w: World) -> None:
        async def objects() -> dict[Any, int]:
            got = await w.get("/v1/beliefs", subject="pluto", predicate="is_a")
            return {c["object"]: c["agents"] for c in got["candidates"]}

        await w.trusted(a)
        await w.trusted(b)
        first = await w.post(a, subject="pluto", predicate="is_a", object="planet", confidence=0.8)
        await w.post(b, subject="pluto", predicate="is_a", object="planet", confidence=0.8)
        assert await objects() == {"planet": 2}
        second = await w.post(
            a,
            subject="pluto",
            predicate="is_a",
            object="dwarf planet",
            confidence=0.8,
            supersedes=first["id"],
        )
        assert await objects() == {"planet": 1, "dwarf planet": 1}
        await w.retract(a, second["id"])
        assert await objects() == {"planet": 1}
        q = await w.post(
            fresh,
            202,
            subject="pluto",
            predicate="is_a",
            object="dwarf planet",
            confidence=0.97,
            evidence=["https://iau.example/2006/resolution-b5"],
        )
        assert await objects() == {"planet": 1}  # quarantined: not knowledge yet
        await w.decide(q["quarantine_id"])
        assert await objects() == {"planet": 1, "dwarf planet": 1}

    _run(db, scenario)
    db.close()


def test_disputes_order_pagination_and_filters(tmp_path: Path) -> None:
    db = _db(tmp_path / "d")
    keys = [AgentKey.generate() for _ in range(4)]

    async def scenario(w: World) -> None:
        for k in keys:
            await w.trusted(k)
        # a dead heat on "danube", a lopsided dispute on "elbe", no dispute on "oder"
        for i, k in enumerate(keys[:2]):
            await w.post(
                k,
                subject="danube",
                predicate="flows_into",
                object=["black sea", "baltic sea"][i],
                confidence=0.85,
                evidence=[f"https://a{i}.example/"],
            )
        for i, k in enumerate(keys):
            await w.post(
                k,
                subject="elbe",
                predicate="flows_into",
                object="north sea" if i < 3 else "baltic sea",
                confidence=0.85,
                evidence=[f"https://b{i}.example/"],
            )
        for k in keys[:2]:
            await w.post(
                k,
                subject="oder",
                predicate="flows_into",
                object="baltic sea",
                confidence=0.85,
                evidence=[f"https://c-{keys.index(k)}.example/"],
            )
        # the same pair in two contexts is two keys; one weak voice does not make a dispute
        await w.post(
            keys[0],
            subject="oder",
            predicate="flows_into",
            object="north sea",
            confidence=0.3,
            context="myths",
        )
        await w.post(
            keys[1],
            subject="oder",
            predicate="flows_into",
            object="black sea",
            confidence=0.8,
            context="myths",
            evidence=["https://myths.example/"],
        )

        page = await w.get("/v1/disputes")
        assert [(d["subject"], d["context"]) for d in page["items"]] == [
            ("danube", None),
            ("elbe", None),
        ]
        heat, lopsided = page["items"]
        assert heat["contention"] == 1.0 > lopsided["contention"]
        assert lopsided["candidates"][0]["object"] == "north sea"
        assert "support" not in lopsided["candidates"][0]
        assert lopsided["open_since_lsn"] > heat["open_since_lsn"]
        assert heat["open_for_seconds"] >= lopsided["open_for_seconds"] >= 0
        assert page["total"] == 2 and page["next_cursor"] is None

        first = await w.get("/v1/disputes", limit=1)
        assert first["items"] == [
            {**heat, "open_for_seconds": first["items"][0]["open_for_seconds"]}
        ]
        # a new dispute after the first page does not shift the pinned snapshot
        for i, k in enumerate(keys[:2]):
            await w.post(
                k,
                subject="aaa river",
                predicate="flows_into",
                object=["x sea", "y sea"][i],
                confidence=0.85,
                evidence=[f"https://d{i}.example/"],
            )
        second = await w.get("/v1/disputes", limit=1, cursor=first["next_cursor"])
        assert second["items"][0]["subject"] == "elbe" and second["next_cursor"] is None
        assert second["as_of_lsn"] == first["as_of_lsn"]
        assert [d["subject"] for d in (await w.get("/v1/disputes"))["items"]].count(
            "aaa river"
        ) == 1
        only = await w.get("/v1/disputes", subject="elbe")
        assert [d["subject"] for d in only["items"]] == ["elbe"]

        bad = await w.c.get("/v1/disputes", params={"cursor": "garbage!"})
        assert bad.status_code == 422
        bad = await w.c.get("/v1/disputes", params={"limit": 0})
        assert bad.status_code == 422

    _run(db, scenario)
    db.close()


def test_subject_alone_lists_every_predicate_with_pages(tmp_path: Path) -> None:
    db = _db(tmp_path / "d")
    key = AgentKey.generate()

    async def scenario(w: World) -> None:
        for p in ["length_km", "flows_into", "source"]:
            await w.post(
                key, subject="  Danube ", predicate=p, object={"v": p, "a": 1}, confidence=0.7
            )
        got = await w.get("/v1/beliefs", subject="Danube")
        assert got["subject"] == "Danube" and got["next_cursor"] is None
        assert [b["predicate"] for b in got["beliefs"]] == ["flows_into", "length_km", "source"]
        assert got["beliefs"][0]["candidates"][0]["object"] == {"a": 1, "v": "flows_into"}
        page1 = await w.get("/v1/beliefs", subject="Danube", limit=2)
        page2 = await w.get("/v1/beliefs", subject="Danube", limit=2, cursor=page1["next_cursor"])
        assert [b["predicate"] for b in page1["beliefs"] + page2["beliefs"]] == [
            "flows_into",
            "length_km",
            "source",
        ]
        empty = await w.get("/v1/beliefs", subject="nowhere", predicate="flows_into")
        assert empty["candidates"] == [] and empty["contested"] is False
        for params in ({"subject": ""}, {"subject": "x", "as_of": "yesterday"}, {}):
            r = await w.c.get("/v1/beliefs", params=params)
            assert r.status_code == 422, params
            assert r.headers["content-type"].startswith("application/problem+json")

    _run(db, scenario)
    db.close()


@pytest.mark.parametrize("variant", ["number", "key order", "unicode"])
def test_objects_are_compared_canonically(tmp_path: Path, variant: str) -> None:
    db = _db(tmp_path / "d")
    a, b = AgentKey.generate(), AgentKey.generate()
    left, right = {
        "number": ([2, {"m": 1}], [2.0, {"m": 1.0}]),
        "key order": ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        "unicode": ("Zu\u0308rich", "Z\u00fcrich"),
    }[variant]

    async def scenario(w: World) -> None:
        await w.post(a, subject="lake", predicate="near", object=left, confidence=0.7)
        await w.post(b, subject="lake", predicate="near", object=right, confidence=0.7)
        got = await w.get("/v1/beliefs", subject="lake", predicate="near")
        assert len(got["candidates"]) == 1 and got["candidates"][0]["agents"] == 2

    _run(db, scenario)
    db.close()


def test_fast_routes_answer_as_the_fastapi_routes(tmp_path: Path) -> None:
    """``/v1/beliefs`` and ``/v1/assertions/{id}`` are served by plain routes ahead of
    FastAPI's (routes/fast.py) when the query is a plain one; any other query falls
    through to the FastAPI route. Both must give the same answer, and the fast ones must
    be labelled with their route template in the metrics."""
    db = _db(tmp_path / "d")
    a, b = AgentKey.generate(), AgentKey.generate()

    async def scenario(w: World) -> None:
        await w.trusted(a)
        first = await w.post(a, subject="danube", predicate="flows_into", object="black sea",
                             confidence=0.9, evidence=["https://a.example/"], context="geo")
        await w.post(b, subject="danube", predicate="flows_into", object="baltic sea",
                     confidence=0.8)
        pairs = [
            ({"subject": "danube", "predicate": "flows_into"}, {"limit": "100"}),
            ({"subject": "danube", "predicate": "flows_into", "context": "geo"}, {"limit": "100"}),
            ({"subject": "danube", "predicate": "flows_into", "as_of": "lsn:7"}, {"limit": "100"}),
            ({"subject": "danube"}, {"limit": "100"}),
            ({"subject": "danube", "predicate": "flows_into", "as_of": "soon"}, {"limit": "100"}),
            ({"subject": " ", "predicate": "flows_into"}, {"limit": "100"}),
        ]
        rid = {"x-request-id": "same-id"}
        for plain, extra in pairs:
            for _ in range(2):  # the second answer of the plain query comes from the cache
                fast = await w.c.get("/v1/beliefs", params=plain, headers=rid)
                slow = await w.c.get("/v1/beliefs", params={**plain, **extra}, headers=rid)
                assert (fast.status_code, fast.headers["content-type"], fast.json()) == (
                    slow.status_code, slow.headers["content-type"], slow.json()), plain
        aid = first["id"]
        for path in (f"/v1/assertions/{aid}", f"/v1/assertions/{aid.upper()}", "/v1/assertions/0"):
            fast = await w.c.get(path, headers=rid)
            assert fast.status_code in (200, 404), path
            # any query falls through to the FastAPI route, which knows no parameters
            slow = await w.c.get(path, params={"x": "1"}, headers=rid)
            assert slow.status_code == 422 and slow.json()["errors"][0]["field"] == "x", path
        assert (await w.c.head(f"/v1/assertions/{aid}")).status_code == 405
        assert (await w.c.post(f"/v1/assertions/{aid}")).status_code == 405
        metrics = (await w.c.get("/metrics")).text
        for route, status in (("/v1/beliefs", "200"), ("/v1/beliefs", "422"),
                              ("/v1/assertions/{assertion_id}", "200"),
                              ("/v1/assertions/{assertion_id}", "404")):
            assert f'method="GET",route="{route}",status="{status}"' in metrics, route

    _run(db, scenario)
    db.close()
