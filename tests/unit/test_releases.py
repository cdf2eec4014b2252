"""A nonce answer read before the nonce's write left the in-flight table is read again.

A single write reads its checks' facts in a round (``rounds.Rounds``: on the event loop,
or in a worker thread under load) and reserves its nonce on the event loop afterwards.
If the nonce's first write commits in between, it has left the in-flight table and the
answer read before says "unused": the engine must not trust that answer
(``rounds.Releases``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from stemedb.engine import Database, WriteResult
from stemedb.errors import NonceReused
from stemedb.http import create_app
from stemedb.records import ASSERT
from stemedb.rounds import Releases
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, signed_headers


def test_a_key_released_after_a_mark_is_seen_since_it() -> None:
    r = Releases(keep=3)
    before = r.mark()
    r.add("a")
    after_a = r.mark()
    assert r.since("a", before) and not r.since("a", after_a)
    assert not r.since("b", before)
    r.add("b")
    r.add("a")  # released again: its newest release counts
    assert r.since("a", after_a)


def test_a_mark_older_than_what_was_dropped_is_stale_for_every_key() -> None:
    r = Releases(keep=2)
    old = r.mark()
    for key in ("a", "b", "c"):  # "a" is dropped
        r.add(key)
    assert r.since("z", old)  # "z" might have been among the dropped
    recent = r.mark()
    r.add("d")
    assert not r.since("z", recent)


@pytest.mark.parametrize("same_body", [True, False])
def test_an_answer_read_before_the_first_write_committed_is_read_again(
        tmp_path: Path, same_body: bool) -> None:
    key = AgentKey.generate()
    db = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))
    app = create_app(db, close_on_shutdown=False)
    first = assertion_body(key, nonce="nonce-0001")
    second = first if same_body else assertion_body(key, nonce="nonce-0001", subject="lyon")

    async def scenario() -> None:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            parsed, sig = db._verified(ASSERT, second, signed_headers(key, second)[
                "X-Agent-Signature"], None)
            mark = db._releases.mark()
            stale = db.reads.writes_by_nonce([(key.agent_id, "nonce-0001")])  # read: unused
            assert stale == {}
            r = await c.post("/v1/assert", content=first, headers=signed_headers(key, first))
            assert r.status_code == 201
            for _ in range(500):  # the commit thread releases it just after answering
                if not db._inflight:
                    break
                await asyncio.sleep(0.01)
            assert not db._inflight
            if same_body:  # a retry: answered with the original outcome
                got = db._reserve(ASSERT, second, sig, parsed, stale, mark)
                assert isinstance(got, WriteResult) and got.status == 200
                assert got.body == r.json()
            else:
                with pytest.raises(NonceReused):
                    db._reserve(ASSERT, second, sig, parsed, stale, mark)
            # Without the mark (an answer read after the release) it would be trusted:
            # what the check above is there to prevent.
            fresh = db._releases.mark()
            assert not isinstance(db._reserve(ASSERT, second, sig, parsed, stale, fresh),
                                  WriteResult)

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_embedded_check_reads_leave_the_loop_once_enough_writes_are_in_flight(
        tmp_path: Path) -> None:
    from stemedb.engine import ROUNDS_IN_THREAD_FROM

    db = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))
    try:
        assert not db._read_in_thread()
        for i in range(ROUNDS_IN_THREAD_FROM - 1):
            db._inflight[("agent", f"n{i}")] = object()  # type: ignore[assignment]
        assert not db._read_in_thread()
        db._inflight[("agent", "last")] = object()  # type: ignore[assignment]
        assert db._read_in_thread()
        db._inflight.clear()
        assert not db._read_in_thread()
    finally:
        db.close()
