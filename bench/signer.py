"""Signed assertion bodies for the benchmarks, signed on both cores.

Every body is unique: a per-run tag and a running index go into the subject and the
nonce, so no two bodies collide on (agent, nonce) or on (agent, subject, predicate,
object, context) - the content-defense duplicate key. Texts are plain words and the
confidence stays below the evidence threshold, so nothing is quarantined for quality.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.pool
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from stemedb.signing import AgentKey

AGENTS = 64  # bodies are spread over this many agents (per-agent limits stay far away)
CHUNK = 2000  # bodies per signing task


@dataclass(frozen=True, slots=True)
class Signed:
    body: bytes
    signature: str  # standard base64 of the 64-byte Ed25519 signature


def rfc3339(ts: float | None = None) -> str:
    t = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_body(key: AgentKey, agent_id: str, tag: str, i: int, timestamp: str) -> bytes:
    return orjson.dumps({
        "subject": f"weather station {tag} {i}",
        "predicate": "located_in",
        "object": f"region {i % 509}",
        "confidence": 0.8,
        "evidence": [f"https://example.org/stations/{i}"],
        "context": "bench",
        "agent_id": agent_id,
        "timestamp": timestamp,
        "nonce": f"bench-{tag}-{i:010d}",
    })


def _sign_range(args: tuple[list[bytes], str, int, int, str | None]) -> list[tuple[bytes, str]]:
    seeds, tag, start, count, timestamp = args
    keys = [AgentKey(s) for s in seeds]
    ids = [k.agent_id for k in keys]
    out = []
    for i in range(start, start + count):
        a = i % len(keys)
        body = make_body(keys[a], ids[a], tag, i, timestamp or rfc3339())
        out.append((body, keys[a].sign_b64(body)))
    return out


class Signer:
    """Makes unique signed bodies with a pool of worker processes (one per core)."""

    def __init__(self, agents: int = AGENTS, workers: int | None = None) -> None:
        self.keys = [AgentKey.generate() for _ in range(agents)]
        self.seeds = [k.seed for k in self.keys]
        self.tag = secrets.token_hex(4)
        self._next = 0
        self._workers = workers or os.cpu_count() or 2
        self._pool: multiprocessing.pool.Pool | None = None

    def _get_pool(self) -> multiprocessing.pool.Pool:
        if self._pool is None:
            self._pool = multiprocessing.get_context("fork").Pool(self._workers)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def take(self, n: int) -> int:
        """Reserves n body indices; returns the first."""
        first = self._next
        self._next += n
        return first

    def sign(self, n: int, timestamp: str | None = None) -> list[Signed]:
        """n fresh bodies stamped now (or with ``timestamp``), each signed by its agent."""
        return [Signed(b, s) for b, s in self.iter_signed(n, timestamp)]

    def iter_signed(self, n: int, timestamp: str | None = None) -> Iterator[tuple[bytes, str]]:
        """n signed (body, signature) pairs in order, produced chunk by chunk."""
        start = self.take(n)
        pool = self._get_pool()
        pending: collections.deque[multiprocessing.pool.AsyncResult[list[tuple[bytes, str]]]]
        pending = collections.deque()
        for s in range(start, start + n, CHUNK):
            task = (self.seeds, self.tag, s, min(CHUNK, start + n - s), timestamp)
            pending.append(pool.apply_async(_sign_range, (task,)))
            if len(pending) >= 4 * self._workers:  # bounded read-ahead: memory stays flat
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()
