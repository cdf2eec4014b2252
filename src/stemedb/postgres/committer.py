"""Group commit on PostgreSQL: one committer thread per node, one transaction per batch.

Callers ``submit`` records and get futures. The committer takes the first waiting
request, then every other one already queued (up to ``max_batch`` records), and writes
the whole batch in ONE transaction on its own connection:

1. ``SELECT lsn, hash FROM tip FOR UPDATE``: the serialization point. Every node's batch
   locks this row first, so batches commit one after another, and the LSNs and chain
   hashes assigned below continue exactly where the last committed batch ended.
2. the records get LSNs ``tip + 1 …`` and chain hashes ``sha256(prev || lsn || payload)``,
   and go into ``journal``;
3. their derived rows are written (``apply.py``), in the same transaction;
4. the tip moves to the last record;
5. ``COMMIT``, with ``synchronous_commit = on``: it returns only once the commit record
   is flushed to the server's WAL (and to a synchronous standby, if one is configured).

Only after COMMIT returns are the futures resolved: that is what acknowledged means here.
If anything fails before, the transaction is rolled back (or dies with the connection)
and no future of the batch is resolved with success. A COMMIT whose answer is lost with
the connection may have committed: its callers were not acknowledged, and their retries
are answered from the stored write (an identical body is idempotent).

A connection error is an outage (``Health``): the batch fails with ``Unavailable``, new
submissions are refused at once, and the committer reconnects when the server answers
again. (A connection that died while idle, found dead by a batch before its COMMIT, is
replaced and the batch tried once more: nothing of it was committed.) Any other error
is the batch's own (a value PostgreSQL cannot store, a bug): the batch is retried one
request at a time, so one bad request fails alone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import psycopg
from psycopg import IsolationLevel

from .. import records
from ..errors import JournalError, StemeError
from ..index.apply import Entry
from ..journal import Record, chain_hash
from ..journal.batching import BatchQueue, BatchThread, Request
from .apply import Taken, apply
from .connection import Conn, Health, describe, is_outage

log = logging.getLogger("stemedb.postgres")

OnCommit = Callable[[int, float, int], None]  # records, COMMIT seconds, payload bytes
SEGMENT = "postgresql"  # what a Record names as its place (``offset`` is its LSN)


class Committer(BatchThread):
    """Owns the committer thread and its connection."""

    def __init__(self, connect: Callable[[], Conn], health: Health, *, max_batch: int,
                 max_wait_us: int, on_commit: OnCommit | None) -> None:
        self._connect = connect
        self._health = health
        self._on_commit = on_commit
        self._conn: Conn | None = None
        self._commit_sent = False  # whether the current batch's COMMIT was sent
        self._lock = threading.Lock()  # orders submit() against close()
        self.last_lsn = 0  # the tip as of this node's last commit
        self._start_batches(BatchQueue(max_batch, max_wait_us), "stemedb-pg-commit")

    # -- callers' side ---------------------------------------------------------------------

    def submit(self, payloads: Sequence[bytes], contexts: Sequence[Any] | None
               ) -> Future[list[Record]]:
        """Queues one request; raises ``Unavailable`` at once while the database is known
        to be unreachable, ``JournalError`` once closed."""
        future: Future[list[Record]] = Future()
        ctx = list(contexts) if contexts is not None else [None] * len(payloads)
        if len(ctx) != len(payloads):
            raise ValueError("one context per payload")
        with self._lock:
            if self._closed:
                raise JournalError("the store is closed")
            if self._health.down is not None:
                raise self._health.unavailable()
            if not payloads:
                future.set_result([])
            else:
                self._queue.put(Request(list(payloads), ctx, future))
        return future

    # -- the committer thread --------------------------------------------------------------

    def _finish(self) -> None:
        self._disconnect()

    def _process(self, requests: list[Request]) -> None:
        """Commits one batch and settles its futures. Requires: futures are running."""
        if self._health.down is not None:
            _fail(requests, self._health.unavailable())
            return
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                grouped, taken, seconds = self._commit(requests)
                break
            except Exception as e:
                if is_outage(e):
                    self._disconnect()
                    if attempt == 1 and reused and not self._commit_sent:
                        # The connection died while idle (a server restart, an idle
                        # timeout): nothing of this batch reached COMMIT, so nothing of it
                        # is committed. Once more, on a new connection.
                        continue
                    self._health.failed(describe(e))
                    _fail(requests, self._health.unavailable())
                    return
                if len(requests) > 1:  # the request that cannot be stored fails alone
                    for request in requests:
                        self._process([request])
                    return
                log.exception("the database refused a write")
                _fail(requests, e if isinstance(e, StemeError) else
                      JournalError(f"the database refused the write: {describe(e)}"))
                return
        self._health.ok()
        self._last_submitters = len(requests)
        _mark_taken(requests, grouped, taken)
        if self._on_commit is not None:
            try:
                self._on_commit(sum(len(g) for g in grouped), seconds,
                                sum(len(r.payload) for g in grouped for r in g))
            except Exception:
                log.exception("on_commit failed")
        for request, recs in zip(requests, grouped, strict=True):
            request.future.set_result(recs)

    def _commit(self, requests: list[Request]) -> tuple[list[list[Record]], Taken, float]:
        """Writes the batch in one transaction and commits it (see the module docstring).
        Returns its records per request, the taken records and the COMMIT's duration.
        Raises whatever the database raised; then nothing of the batch is committed,
        except when the connection broke during COMMIT itself (outcome unknown)."""
        self._commit_sent = False
        conn = self._connection()
        try:
            # Pipeline mode: statements whose answers are not needed are only queued, so
            # the batch costs a few round trips (BEGIN and the tip; the journal, its
            # derived rows' first statements; the rest and COMMIT), whatever its size.
            with conn.pipeline():
                row = conn.execute("SELECT lsn, hash FROM tip FOR UPDATE").fetchone()
                assert row is not None, "the tip row is missing"
                grouped = _chain(requests, int(row[0]), bytes(row[1]))
                flat = [r for g in grouped for r in g]
                conn.execute("INSERT INTO journal (lsn, hash, payload) SELECT * FROM"
                             " unnest(%b::bigint[], %b::bytea[], %b::bytea[])",
                             ([r.lsn for r in flat], [r.hash for r in flat],
                              [r.payload for r in flat]))
                contexts = [c for request in requests for c in request.contexts]
                taken = apply(conn, [_entry(r, c) for r, c in zip(flat, contexts, strict=True)])
                conn.execute("UPDATE tip SET lsn = %s, hash = %s", (flat[-1].lsn, flat[-1].hash))
                self._commit_sent = True  # from here on, the outcome may be unknown
                start = time.perf_counter()
                conn.commit()  # durable: synchronous_commit = on (see _connection)
                seconds = time.perf_counter() - start
        except BaseException:
            _rollback(conn)
            raise
        self.last_lsn = flat[-1].lsn
        return grouped, taken, seconds

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            conn = self._connect()
            # Whatever the server's defaults: COMMIT returns only once the commit is
            # flushed (and replicated to a synchronous standby, if any); and READ
            # COMMITTED, so that a batch that waited for the tip row sees the rows of the
            # batch that held it (under REPEATABLE READ it would fail to serialize).
            conn.isolation_level = IsolationLevel.READ_COMMITTED
            conn.execute("SET synchronous_commit = on")
            conn.commit()
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _chain(requests: list[Request], lsn: int, prev: bytes) -> list[list[Record]]:
    """Consecutive LSNs after the tip, each record's hash chained to the one before."""
    grouped: list[list[Record]] = []
    for request in requests:
        recs = []
        for payload in request.payloads:
            lsn += 1
            prev = chain_hash(prev, lsn, payload)
            recs.append(Record(lsn, payload, prev, SEGMENT, lsn))
        grouped.append(recs)
    return grouped


def _entry(r: Record, context: Any) -> Entry:
    """What to apply for a record: a write from the live path hands over what it already
    has (its payload as a dict, its parsed body and id); anything else is decoded."""
    data = getattr(context, "record", None)
    if data is None:
        return Entry(r.lsn, r.hash, records.decode(r.payload))
    return Entry(r.lsn, r.hash, data, context.parsed, context.id)


def _mark_taken(requests: list[Request], grouped: list[list[Record]], taken: Taken) -> None:
    """Tells the caller which of its records found their write id or nonce taken (by a
    record committed before, possibly on another node): ``context.taken = (owner's write
    id, its original outcome JSON)``."""
    if not taken:
        return
    for request, recs in zip(requests, grouped, strict=True):
        for r, context in zip(recs, request.contexts, strict=True):
            owner = taken.get(r.lsn)
            if owner is not None and context is not None:
                try:
                    context.taken = owner
                except AttributeError:  # a context that cannot carry it (slots)
                    log.warning("LSN %d: its nonce was taken, and its context cannot say so",
                                r.lsn)


def _rollback(conn: Conn) -> None:
    with contextlib.suppress(psycopg.Error):  # the connection is gone: so is the transaction
        conn.rollback()


def _fail(requests: list[Request], error: BaseException) -> None:
    for request in requests:
        request.future.set_exception(error)
