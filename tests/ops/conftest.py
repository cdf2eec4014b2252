"""Fixtures for the ops tests: a real S3-compatible server (moto's standalone server on
loopback, over HTTP) and journals built fast, straight through the Journal API."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import orjson
import pytest

from stemedb import records
from stemedb.datadir import INDEX_FILE, JOURNAL_DIR
from stemedb.index import IndexStore, entries_from
from stemedb.journal import Journal, Record
from stemedb.model import write_id
from stemedb.signing import AgentKey
from tests.helpers import ROOT, free_port, now_rfc3339

SEGMENT_BYTES = 65536
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    url: str
    proc: subprocess.Popen[bytes]
    _buckets: int = 0

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.url, **_creds())

    def new_bucket(self) -> str:
        self._buckets += 1
        name = f"stemedb-test-{os.getpid()}-{self._buckets}"
        self.client().create_bucket(Bucket=name)
        return name

    @property
    def env(self) -> dict[str, str]:
        """What a child process needs to reach the server (boto3 honours the endpoint)."""
        return {**AWS_ENV, "AWS_ENDPOINT_URL_S3": self.url}


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


def _moto_command(port: int) -> list[str]:
    exe = Path(sys.executable).with_name("moto_server")
    if exe.exists():
        return [str(exe), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server in a child process on a loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(_moto_command(port), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/moto-api/", timeout=1.0)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start:\n" + log.read_text()) from None
            time.sleep(0.1)
    mp = pytest.MonkeyPatch()
    for k, v in AWS_ENV.items():
        mp.setenv(k, v)
    try:
        yield S3Server(url, proc)
    finally:
        mp.undo()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def s3_target(s3_server: S3Server) -> str:
    return f"s3://{s3_server.new_bucket()}/prod/stemedb"


# -- journals --------------------------------------------------------------------------


@dataclass
class Source:
    """A data directory built record by record, and what went into it."""

    data_dir: Path
    records: list[Record] = field(default_factory=list)
    ats: list[int] = field(default_factory=list)  # recorded time of each record (µs)

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / JOURNAL_DIR

    def last_lsn(self) -> int:
        return self.records[-1].lsn if self.records else 0


class JournalBuilder:
    """Appends valid signed assertions (some superseding, some retracted) with chosen
    recorded times, then builds the index as the server would."""

    def __init__(
        self,
        data_dir: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        seed: int = 7,
        start_us: int | None = None,
    ) -> None:
        self.source = Source(data_dir)
        self.rng = random.Random(seed)
        self.keys = [AgentKey.generate() for _ in range(4)]
        self.active: list[tuple[int, str]] = []  # (key index, assertion id)
        self.now_us = start_us if start_us is not None else (time.time_ns() // 1000 - 3_600_000_000)
        self.segment_bytes = segment_bytes
        self._n = 0

    def _payload(self) -> bytes:
        self._n += 1
        n = self._n
        a = self.rng.randrange(len(self.keys))
        key = self.keys[a]
        mine = [x for x in self.active if x[0] == a]
        roll = self.rng.random()
        if mine and roll < 0.08:
            target = self.rng.choice(mine)
            self.active.remove(target)
            body = orjson.dumps(
                {
                    "retracts": target[1],
                    "reason": "test",
                    "agent_id": key.agent_id,
                    "timestamp": now_rfc3339(),
                    "nonce": f"nonce-{n:08d}",
                }
            )
            kind = records.RETRACT
        else:
            fields = {
                "subject": f"station {n}",
                "predicate": "located_in",
                "object": f"region {n % 17}",
                "confidence": 0.8,
                "evidence": [f"https://example.org/{n}"],
                "agent_id": key.agent_id,
                "timestamp": now_rfc3339(),
                "nonce": f"nonce-{n:08d}",
                "context": "ops-test",
            }
            if mine and roll < 0.16:
                target = self.rng.choice(mine)
                self.active.remove(target)
                fields["supersedes"] = target[1]
            body = orjson.dumps(fields)
            self.active.append((a, write_id(body)))
            kind = records.ASSERT
        self.now_us += self.rng.randrange(1, 2_000_000)
        return records.SignedWrite(kind, body, key.sign_b64(body), self.now_us).encode()

    def add(self, n: int, batch: int = 50) -> Source:
        with Journal(self.source.journal_dir, segment_bytes=self.segment_bytes) as j:
            left = n
            while left > 0:
                k = min(batch, left)
                payloads = [self._payload() for _ in range(k)]
                for r in j.append(payloads):
                    self.source.records.append(r)
                    self.source.ats.append(records.decode(r.payload)["at"])
                left -= k
        self.build_index()
        return self.source

    def build_index(self) -> None:
        store = IndexStore(self.source.data_dir / INDEX_FILE)
        try:
            applied = store.applied()[0]
            with Journal(self.source.journal_dir, segment_bytes=self.segment_bytes) as j:
                store.rebuild_from(entries_from(j.read(applied + 1)))
        finally:
            store.close()


def reference_digest(src: Source, lsn: int, scratch: Path) -> str:
    """The digest of an index built from the source's records 1..lsn."""
    path = scratch / f"ref-{lsn}.sqlite3"
    store = IndexStore(path, journal_dir=src.journal_dir)
    try:
        store.rebuild_from(entries_from(src.records[:lsn]))
        return store.digest()
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def index_digest(data_dir: Path) -> str:
    store = IndexStore(data_dir / INDEX_FILE)
    try:
        return store.digest()
    finally:
        store.close()


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
