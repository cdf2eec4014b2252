"""The engine through the real ASGI app, in process: fsync failure, reindex identity."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import httpx
import pytest

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.ops.reindex import reindex
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, now_rfc3339, signed_headers


def _settings(data_dir: Path):
    return load_settings(env={}, overrides={"server.data_dir": str(data_dir)})


class FlakyFsync:
    """An fsync that fails (EIO) from the n-th call on, counting calls."""

    def __init__(self, fail_from: int) -> None:
        self.calls = 0
        self.fail_from = fail_from

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls >= self.fail_from:
            raise OSError(errno.EIO, "Input/output error")
        import os

        os.fsync(fd)


def test_fsync_failure_makes_the_journal_read_only(tmp_path: Path) -> None:
    key = AgentKey.generate()
    fsync = FlakyFsync(fail_from=10**9)
    db = Database(_settings(tmp_path / "d"), fsync=fsync)
    app = create_app(db, close_on_shutdown=False)

    async def scenario() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            b = assertion_body(key)
            assert (
                await c.post("/v1/assert", content=b, headers=signed_headers(key, b))
            ).status_code == 201
            fsync.fail_from = fsync.calls + 1  # the next fsync fails
            calls_before = fsync.calls
            bodies = [assertion_body(key, subject=f"s{i}") for i in range(16)]
            rs = await asyncio.gather(
                *[c.post("/v1/assert", content=b, headers=signed_headers(key, b)) for b in bodies]
            )
            assert not [r for r in rs if r.status_code < 300]  # no 2xx for the failed batch
            assert {r.status_code for r in rs} == {503}
            assert all(r.headers["retry-after"] for r in rs)
            assert fsync.calls == calls_before + 1  # never retried
            later = assertion_body(key, subject="later")
            r = await c.post("/v1/assert", content=later, headers=signed_headers(key, later))
            assert r.status_code == 503 and r.json()["type"].endswith("journal-read-only")
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and "fsync" in ready.json()["reason"]
            listed = (await c.get("/v1/assertions")).json()["items"]
            assert len(listed) == 1  # reads still work; nothing of the failed batch shows

    asyncio.run(scenario())
    db.close()


def test_reindex_gives_the_identical_index(tmp_path: Path) -> None:
    data = tmp_path / "d"
    db = Database(_settings(data))
    app = create_app(db, close_on_shutdown=False)
    keys = [AgentKey.generate() for _ in range(3)]

    async def fill() -> list[str]:
        ids = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            for i in range(60):
                k = keys[i % 3]
                b = assertion_body(k, subject=f"sub{i % 7}", object={"n": i, "é": "e\u0301"})
                r = await c.post("/v1/assert", content=b, headers=signed_headers(k, b))
                ids.append(r.json()["id"])
            items = [
                {"body": b.decode(), "signature": keys[0].sign_b64(b)}
                for b in (assertion_body(keys[0], subject=f"batch{j}") for j in range(40))
            ]
            await c.post("/v1/assert/batch", json={"items": items})
            import orjson

            for target in ids[:6:3]:
                rb = orjson.dumps(
                    {
                        "retracts": target,
                        "reason": "test",
                        "agent_id": keys[0].agent_id,
                        "timestamp": now_rfc3339(),
                        "nonce": "retract-" + target[:12],
                    }
                )
                r = await c.post("/v1/retract", content=rb, headers=signed_headers(keys[0], rb))
                assert r.status_code == 201, r.text
        return ids

    asyncio.run(fill())
    live = db.index.digest()
    db.close()
    n, rebuilt = reindex(data, digest=True)
    assert n == 60 + 40 + 2
    assert rebuilt == live
    db2 = Database(_settings(data))  # and it opens cleanly on the rebuilt index
    assert db2.index.digest() == live
    db2.close()
    # without a digest asked for, the rebuild gives the same index and reports none
    assert reindex(data) == (n, None)
    db3 = Database(_settings(data))
    assert db3.index.digest() == live
    db3.close()
    # the command prints the digest only with --digest
    from click.testing import CliRunner

    from stemedb.cli import main

    plain = CliRunner().invoke(main, ["reindex", "--data-dir", str(data)])
    assert plain.exit_code == 0, plain.output
    assert f"reindexed {n} records" in plain.output and "digest" not in plain.output
    with_digest = CliRunner().invoke(main, ["reindex", "--data-dir", str(data), "--digest"])
    assert with_digest.exit_code == 0, with_digest.output
    assert f"index digest {live}" in with_digest.output


def test_index_catches_up_from_the_journal(tmp_path: Path) -> None:
    data = tmp_path / "d"
    key = AgentKey.generate()
    db = Database(_settings(data))
    app = create_app(db, close_on_shutdown=False)

    async def write(n: int) -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            for i in range(n):
                b = assertion_body(key, subject=f"c{i}")
                assert (
                    await c.post("/v1/assert", content=b, headers=signed_headers(key, b))
                ).status_code == 201

    asyncio.run(write(10))
    digest = db.index.digest()
    db.close()
    (data / "index.sqlite3").unlink()
    for s in ("-wal", "-shm"):
        (data / f"index.sqlite3{s}").unlink(missing_ok=True)
    db = Database(_settings(data))
    assert db.index.applied_lsn == 10 and db.index.digest() == digest
    db.close()


def test_second_process_cannot_open_the_same_data_dir(tmp_path: Path) -> None:
    from stemedb.errors import Unavailable

    db = Database(_settings(tmp_path / "d"))
    with pytest.raises(Unavailable):
        Database(_settings(tmp_path / "d"))
    db.close()


def test_a_live_write_is_parsed_hashed_and_decoded_once(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine parses the body once, hashes it once (its id), and hands its payload
    to the index as it built it: the index neither decodes nor hashes it again. A
    reindex, which has only the journal, still does both, and gets the same rows."""
    import hashlib
    import types

    from stemedb import model, records
    from stemedb.index import apply

    calls = {"parse": 0, "decode": 0, "index_sha256": 0}
    parse, decode = model.parse_write, records.decode

    def counting_parse(*a: object, **k: object) -> object:
        calls["parse"] += 1
        return parse(*a, **k)  # type: ignore[arg-type]

    def counting_decode(payload: bytes) -> dict[str, object]:
        calls["decode"] += 1
        return decode(payload)

    def counting_sha256(data: bytes) -> object:
        calls["index_sha256"] += 1
        return hashlib.sha256(data)

    db = Database(_settings(tmp_path / "d"))
    key = AgentKey.generate()
    seen: list[str] = []
    try:
        monkeypatch.setattr(model, "parse_write", counting_parse)
        monkeypatch.setattr(records, "decode", counting_decode)
        monkeypatch.setattr(apply, "hashlib", types.SimpleNamespace(sha256=counting_sha256,
                                                                blake2b=hashlib.blake2b))
        body = assertion_body(key, subject="lisbon", object="portugal")
        result = asyncio.run(db.write("assert", body, key.sign_b64(body), seen.append))
        assert result.status == 201
        assert calls == {"parse": 1, "decode": 0, "index_sha256": 0}
        assert seen == [key.agent_id]  # the claimed agent, from that one parse
        live = db.index.digest()
    finally:
        db.close()
    assert reindex(tmp_path / "d", digest=True)[1] == live
