"""``PostgresStore``: the journal and the derived state in one PostgreSQL database.

Any number of nodes may open the same database: each has its own committer (group
commit, one transaction per batch, serialized across nodes by the ``tip`` row) and its
own pool of readers; the database is the only shared state. See ``committer.py`` for what
acknowledged means here and ``connection.py`` for outages.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import psycopg

from ..errors import JournalCorrupt, Unavailable
from ..journal import Record, chain_hash
from ..journal.record import ZERO_HASH
from ..settings import JournalSettings
from .committer import SEGMENT, Committer, OnCommit
from .connection import Conn, Health, Reader, connect, describe, snapshot
from .reads import PostgresReads
from .schema import COLUMNS, DUMP_TABLES, migrate

log = logging.getLogger("stemedb.postgres")

READ_POOL_SIZE = 16
READ_TIMEOUT_S = 10.0
_FETCH = 2000  # rows per round trip when streaming the journal or the dump


class PostgresStore:
    """``store.Store`` over a PostgreSQL database (``url``: ``postgresql://…`` or a libpq
    DSN). Creates or upgrades the schema when it opens; raises ``Unavailable`` when the
    database cannot be reached then."""

    def __init__(self, url: str, config: JournalSettings | None = None, *,
                 on_commit: OnCommit | None = None, read_pool_size: int = READ_POOL_SIZE,
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        self.url = url
        config = config if config is not None else JournalSettings()
        try:
            with connect(url, name="stemedb-migrate") as conn:
                self.schema_version = migrate(conn)
                self._check_durability(conn)
        except psycopg.OperationalError as e:
            raise Unavailable(f"database unreachable: {describe(e)}") from None
        self.health = Health(url)
        self._reader = Reader(url, self.health, max_size=read_pool_size, timeout=read_timeout)
        self.reads = PostgresReads(self._reader)
        self.health.watch(idle_probe=lambda: self._reader.run(_ping),
                          on_recovery=self._reader.pool.check)
        self._committer = Committer(functools.partial(connect, url, name="stemedb-commit"),
                                    self.health, max_batch=config.group_commit_max_batch,
                                    max_wait_us=config.group_commit_max_wait_us,
                                    on_commit=on_commit)
        self._closed = False
        self._last_lsn = self.reads.applied_lsn

    @staticmethod
    def _check_durability(conn: Conn) -> None:
        row = conn.execute("SHOW fsync").fetchone()
        if row and row[0] != "on":
            log.warning("PostgreSQL runs with fsync=%s: a committed write may be lost if "
                        "the database server crashes", row[0])

    # -- store.Store ------------------------------------------------------------------------

    def submit(self, payloads: Sequence[bytes], contexts: Sequence[Any] | None = None
               ) -> concurrent.futures.Future[list[Record]]:
        return self._committer.submit(payloads, contexts)

    @property
    def last_lsn(self) -> int:
        """The tip, as the database has it (any node's commits); the last one known while
        the database is unreachable."""
        try:
            self._last_lsn = self.reads.applied_lsn
        except Unavailable:
            self._last_lsn = max(self._last_lsn, self._committer.last_lsn)
        return self._last_lsn

    @property
    def read_only_reason(self) -> str | None:
        """Always None: an outage ends by itself when the database answers again, and a
        write the database refused fails alone; neither calls for a restart."""
        return None

    def readiness(self) -> tuple[bool, str]:
        """What this node last found (the health watcher keeps finding out): never
        blocks on the database."""
        if self._closed:
            return False, "the store is closed"
        if self.health.down is not None:
            return False, f"database unreachable: {self.health.down}"
        return True, "ready"

    def records(self, from_lsn: int = 1, to_lsn: int | None = None) -> Iterator[Record]:
        """The journal from ``from_lsn`` to ``to_lsn``, read in one snapshot, each row's
        LSN and chain hash checked against the one before."""
        start = max(1, from_lsn)
        with snapshot(self.url, name="stemedb-records") as conn:
            prev = ZERO_HASH
            if start > 1:
                row = conn.execute("SELECT hash FROM journal WHERE lsn = %s",
                                   (start - 1,)).fetchone()
                if row is None:
                    return
                prev = bytes(row[0])
            expected = start
            with conn.cursor(name="stemedb_journal") as cur:
                cur.itersize = _FETCH
                cur.execute("SELECT lsn, hash, payload FROM journal WHERE lsn >= %s"
                            " AND lsn <= %s ORDER BY lsn",
                            (start, to_lsn if to_lsn is not None else 2**63 - 1))
                for lsn, stored, payload in cur:
                    payload = bytes(payload)
                    if lsn != expected:
                        raise JournalCorrupt("the journal table", expected,
                                             f"LSN {expected} is missing")
                    h = chain_hash(prev, lsn, payload)
                    if h != bytes(stored):
                        raise JournalCorrupt("the journal table", lsn,
                                             f"LSN {lsn} does not match its chain hash")
                    yield Record(lsn, payload, h, SEGMENT, lsn)
                    prev, expected = h, lsn + 1

    def digest(self) -> str:
        """SHA-256 of the canonical dump, read in one snapshot."""
        h = hashlib.sha256()
        with snapshot(self.url, name="stemedb-digest") as conn:
            for line in canonical_dump(conn):
                h.update(line)
        return h.hexdigest()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._committer.close()
        self.health.close()
        self._reader.close()


def _ping(conn: Conn) -> object:
    return conn.execute("SELECT 1").fetchone()


_line = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


def canonical_dump(conn: Conn) -> Iterator[bytes]:
    """The embedded index's canonical dump (``IndexStore.canonical_dump``), line for line:
    every base table's rows in a fixed order, then the full-text rows. ``meta`` holds the
    applied LSN and its hash there; here they are the tip."""
    row = conn.execute("SELECT lsn, hash FROM tip").fetchone()
    if row is not None and row[0] > 0:  # sorted by key, as ORDER BY key gives
        yield _line(("meta", "applied_hash", bytes(row[1]).hex()))
        yield _line(("meta", "applied_lsn", str(row[0])))
    for table, order in DUMP_TABLES:
        if table != "meta":
            yield from _rows(conn, table, f"SELECT {', '.join(COLUMNS[table])} FROM {table}"
                                          f" ORDER BY {order}")
    yield from _rows(conn, "fts", "SELECT rowid, subject, predicate, object_text"
                                  " FROM assertions ORDER BY rowid")


def _rows(conn: Conn, name: str, sql: str) -> Iterator[bytes]:
    with conn.cursor(name=f"stemedb_dump_{name}") as cur:
        cur.itersize = _FETCH
        cur.execute(sql)
        for r in cur:
            yield _line((name, *r))
