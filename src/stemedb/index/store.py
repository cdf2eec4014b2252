"""The SQLite index: derived state, a deterministic function of the journal.

``apply`` takes journal records in LSN order and writes their rows and the applied LSN
in ONE transaction, so the index is always exactly "the journal up to applied_lsn".
One writer connection (used by the journal's commit thread and at start-up) and one
read connection per reading thread (WAL mode lets them run beside the writer).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import logging
import os
import queue
import re
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from .. import records
from ..journal import RecordReader
from .apply import (
    REBUILD_FTS,
    Entry,
    Step,
    index_search,
    insert_rows,
    plan,
    search_pending,
    write_steps,
)
from .schema import DDL, INDEX_ONLY, JOURNAL_COLUMNS, READ_VIEWS, SCHEMA_VERSION

log = logging.getLogger("stemedb.index")


class Connection(sqlite3.Connection):
    """A connection to the index. Appliers leave new assertions out of the full-text
    index; ``IndexStore.flush_search`` adds them (see there). ``fts_deferred``: a bulk
    build leaves the whole full-text index to ``finish_bulk`` (appliers must not touch
    it, nor ``flush_search``)."""

    fts_deferred = False


_SECONDARY = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+)")
# Indexes a bulk build keeps from the start: every run of records looks its nonces up.
KEPT_IN_BULK = ("assertions_nonce", "retractions_nonce")
# SQLite's own memory, bounded and filled within the first minutes of writing: the index
# file is memory-mapped (up to 2 GiB; SQLite caps it at its build's maximum), so a page
# that is only read is used where the kernel's page cache holds it, never copied. The
# writer copies the pages it changes into its cache (the B-trees' upper levels stay
# there); a reader's cache only holds pages past the mapped part. Measured on 200,000
# applied assertions with four readers: the same rate and CPU per record as 64 MiB
# caches, SQLite's memory flat at ~12 MiB instead of climbing with the index.
WRITER_CACHE_KIB = 16384
READER_CACHE_KIB = 2048
MMAP_BYTES = 2 << 30
REBUILD_SWITCH_INTERVAL = 0.0001  # seconds, while rebuild_from runs (see there)
BULK_CACHE_KIB = 262144  # while building a fresh file: the random-key indexes stay cached
BULK_BATCH = 10_000  # records per transaction while building a fresh file
CHECKPOINT_WAL_BYTES = 4 << 20  # the background checkpointer runs past this WAL size ...
CHECKPOINT_WAL_LIMIT = 256 << 20  # ... and past this one has the WAL start over, ...
CHECKPOINT_WAIT_MS = 1000  # ... waiting for the writer and readers only past twice that
CHECKPOINT_EVERY_S = 0.2  # ... looking this often (and adding new rows to search)
SEARCH_MAX_LAG = 2000  # records applied past the full-text index before a batch adds them


class Queries(Protocol):
    """What the portable named queries (``admin.py``, ``dashboard.py``) need of a store:
    the rows of one statement (``?`` parameters), read by position or column name."""

    def query(self, sql: str, params: Sequence[Any]) -> list[Any]: ...


# The base tables of the canonical dump, in order, each with the column its rows are
# sorted by (every backend dumps the same lines: ``[table, *row]``, then the FTS lines).
DUMP_TABLES = (("meta", "key"), ("lsn_time", "lsn"), ("writes", "id"), ("assertions", "id"),
               ("retractions", "id"), ("quarantine", "id"), ("allowlist", "agent_id"),
               ("state", "key"), ("audit", "lsn"), ("breakers", "agent_id"),
               ("agents", "agent_id"), ("enrollments", "agent_id"), ("tokens", "hash"))


def dump_columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The columns of an index table that the canonical dump holds, in order: all but
    the ones only the embedded index keeps (``schema.INDEX_ONLY``), then the ones read
    from the journal (``schema.JOURNAL_COLUMNS``)."""
    own = INDEX_ONLY.get(table, ())
    stored = (r[1] for r in conn.execute(f"PRAGMA main.table_info({table})") if r[1] not in own)
    return (*stored, *JOURNAL_COLUMNS.get(table, ()))


JOURNAL_DIR = "journal"  # the journal's directory, beside the index file by default


INDEX_SUFFIXES = ("", "-wal", "-shm")  # an index file, its WAL and its shared memory


def remove_index_files(path: Path) -> None:
    """Deletes the index file at ``path`` with its WAL and shared-memory files."""
    for suffix in INDEX_SUFFIXES:
        Path(str(path) + suffix).unlink(missing_ok=True)


def _rollback(c: sqlite3.Connection) -> None:
    """Ends a failed transaction. SQLite may have rolled back by itself (e.g. "database
    or disk is full" at COMMIT): a ROLLBACK then fails, and must not hide the real error."""
    if c.in_transaction:
        try:
            c.execute("ROLLBACK")
        except sqlite3.Error as e:
            log.warning("index rollback failed after an error: %s", e)


def build_index(entries: Iterable[Entry], target: Path, *, digest: bool = False
                ) -> tuple[int, str | None]:
    """A fresh index at ``target`` (anything there is replaced) from ``entries``, built
    in bulk (``IndexStore(bulk=True)``: the secondary and full-text indexes once at the
    end): (records applied, the new index's digest when asked for, else None)."""
    remove_index_files(target)
    store = IndexStore(target, bulk=True)
    try:
        n = store.rebuild_from(entries, batch=BULK_BATCH)
        return n, store.finish_bulk(digest=digest)
    finally:
        store.close()


def read_applied(path: Path) -> tuple[int, bytes] | None:
    """(applied LSN, its chain hash) of an index file, read-only, without opening it as
    a store (a server may be writing it); None if unreadable."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('applied_lsn', 'applied_hash')"
            ).fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    lsn = int(rows.get("applied_lsn") or 0)
    return lsn, bytes.fromhex(rows.get("applied_hash") or "")


def snapshot_index(index_path: Path, dest: Path) -> tuple[int, bytes]:
    """Copies the index with SQLite's online backup API from a read-only connection, in
    one step (one read transaction: a consistent snapshot while the server writes).
    Returns the snapshot's (applied LSN, hash); (0, b"") when there is no usable index."""
    if not index_path.exists():
        return 0, b""
    try:
        src = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        log.warning(
            "cannot snapshot the index %s (%s); rebuilding it from the journal", index_path, e
        )
        remove_index_files(dest)
        return 0, b""
    return read_applied(dest) or (0, b"")


def self_contained(index_path: Path) -> None:
    """Folds the index's write-ahead log into the file (journal_mode=DELETE), so the
    one file is the whole index; the server turns WAL mode back on when it opens it."""
    conn = sqlite3.connect(index_path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def entries_from(journal_records: Iterable[Any]) -> Iterator[Entry]:
    """Journal records (``journal.Record``) as entries to apply."""
    for r in journal_records:
        yield Entry(r.lsn, r.hash, records.decode(r.payload), pos=r.offset)


class IndexStore:
    """``bulk=True`` is for building a fresh index file that is swapped in only when
    complete (reindex, restore): no rollback journal, no syncs, and the secondary indexes
    and the full-text index built once at ``finish_bulk()`` instead of row by row."""

    def __init__(self, path: str | Path, *, bulk: bool = False,
                 journal_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.bulk = bulk
        # Where rows' signed bodies are read from (``schema.READ_VIEWS``).
        self.journal = RecordReader(self.path.parent / JOURNAL_DIR if journal_dir is None
                                    else journal_dir)
        self._local = threading.local()
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._readers_lock = threading.Lock()
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._write = self._connect()
        if self._stale_schema():
            self._write.close()
            remove_index_files(self.path)
            self._write = self._connect()
        self._write.fts_deferred = bulk
        self._unsearched = 0  # records applied since the full-text index was brought up
        self._write_lock = threading.Lock()
        self._migrate()
        self._assertion_columns = ", ".join(dump_columns(self._write, "assertions"))
        if bulk:
            self._write.execute("PRAGMA journal_mode=OFF")
            self._write.execute("PRAGMA synchronous=OFF")
            self._write.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            self._write.execute("PRAGMA temp_store=MEMORY")
            for name in _SECONDARY.findall(DDL):
                if name not in KEPT_IN_BULK:
                    self._write.execute(f"DROP INDEX IF EXISTS {name}")

    def finish_bulk(self, *, digest: bool = False) -> str | None:
        """Build the secondary indexes and the full-text index and return to the normal,
        crash-safe mode; with ``digest``, also return ``digest()``.

        The indexes are built before the switch to WAL mode: built in WAL mode, every
        index page would be written twice (into the WAL, then by the checkpoint into the
        database file). Bulk mode never syncs, so the file is fsynced here, before anyone
        renames it into place."""
        if not self.bulk:
            return self.digest() if digest else None
        c = self._write
        self._build_indexes()
        with self._write_lock:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            c.execute("PRAGMA temp_store=DEFAULT")
            c.execute("PRAGMA synchronous=NORMAL")
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.bulk = False
        return self.digest() if digest else None

    def _build_indexes(self) -> None:
        with self._write_lock:
            self._write.executescript("BEGIN;" + DDL + REBUILD_FTS + ";COMMIT;")
            self._write.fts_deferred = False

    # -- connections ----------------------------------------------------------------

    def _connect(self, cache_kib: int = WRITER_CACHE_KIB) -> Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               cached_statements=256, factory=Connection)
        conn.execute("PRAGMA journal_mode=WAL")
        # The index is derived: the journal is durable, the applied LSN is in the same
        # transaction as its rows, so losing the last index transactions on power loss
        # only means catching up again from the journal at start-up.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA cache_size=-{cache_kib}")
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        conn.row_factory = sqlite3.Row
        return conn

    @property
    def reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(READER_CACHE_KIB)
            self._read_views(conn)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._close_orphans()
                self._readers.append((threading.current_thread(), conn))
        return conn

    def _read_views(self, conn: sqlite3.Connection) -> None:
        """Gives a read connection the views that show each row's signed body and
        signature, read from the journal record the row points at (``schema.READ_VIEWS``).
        A row's two columns come from one read: the last record read is kept."""
        last: list[Any] = [0, None]  # LSN, payload as a dict

        def signed(lsn: int, pos: int) -> dict[str, Any]:
            if last[0] != lsn:
                try:
                    last[1] = records.decode(self.journal.payload(lsn, pos))
                except Exception:
                    log.exception("cannot read the signed body of record %s from the journal", lsn)
                    raise
                last[0] = lsn
            data: dict[str, Any] = last[1]
            return data

        conn.create_function("journal_body", 2, lambda lsn, pos: signed(lsn, pos)["body"],
                             deterministic=True)
        conn.create_function("journal_signature", 2, lambda lsn, pos: signed(lsn, pos)["sig"],
                             deterministic=True)
        conn.executescript(READ_VIEWS)

    def _close_orphans(self) -> None:
        """Closes the read connections of threads that have ended (``_readers_lock``
        held). Worker threads come and go (the HTTP server's pool lets an idle one end
        after a few seconds and starts new ones under load); each new one opens its own
        connection, with its own page and statement caches, and without this every
        connection ever opened would stay open for the life of the store."""
        alive = []
        for thread, conn in self._readers:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                conn.close()
        self._readers = alive

    @property
    def reader_connections(self) -> int:
        """Read connections open (one per thread that has read and is still running)."""
        with self._readers_lock:
            self._close_orphans()
            return len(self._readers)

    def _stale_schema(self) -> bool:
        """An index of another schema version is derived state in the wrong shape: it is
        deleted, so that its applied LSN reads 0 and whoever opened it rebuilds it from
        the journal (start-up, backup, restore all do)."""
        version = self._write.execute("PRAGMA user_version").fetchone()[0]
        if version in (0, SCHEMA_VERSION):
            return False
        log.warning("the index %s has schema version %d, this StemeDB uses %d; rebuilding "
                    "it from the journal", self.path, version, SCHEMA_VERSION)
        return True

    def _migrate(self) -> None:
        self._write.executescript(DDL)
        self._write.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def start_checkpointer(self) -> None:
        """Checkpoint the WAL on a thread of its own instead of inside the commit that
        crosses SQLite's 1,000-page mark: the journal's commit thread, which applies
        every batch, then never copies pages into the database file or waits for its
        fsync. A PASSIVE checkpoint neither blocks nor waits for readers or the writer.

        Under steady writes and reads a PASSIVE checkpoint may never catch up with the
        end of the WAL, and a WAL starts over from its beginning only once it is copied
        completely. So past ``CHECKPOINT_WAL_LIMIT`` the checkpointer takes a RESTART
        checkpoint (see ``checkpoint``), and the next commit writes from the beginning of
        the file again. The file keeps that size (``journal_size_limit``: a larger one is
        cut back to it when the WAL starts over) and is overwritten in place: emptying
        it each time (TRUNCATE) held the writer off about twice as long (85 vs 36 ms on
        average at 1,000 records/s), giving back and allocating its blocks each time.

        A RESTART holds off every commit while it copies and syncs, so it sets the tail
        latency of writes: at 600 writes/s a 64 MiB limit took one every 2 s, and the
        p99 of a 4-minute run was 35-51 ms; at 256 MiB (one every 7 s) it was 17-24 ms."""
        if self.bulk or self._checkpointer is not None:
            return
        with self._write_lock:
            self._write.execute("PRAGMA wal_autocheckpoint=0")
            self._write.execute(f"PRAGMA journal_size_limit={CHECKPOINT_WAL_LIMIT}")
        conn = self._connect(READER_CACHE_KIB)

        def loop() -> None:
            try:
                while not self._stop_checkpoints.wait(CHECKPOINT_EVERY_S):
                    try:
                        self.flush_search()
                    except (OSError, sqlite3.Error) as e:  # try again next round
                        log.warning("adding new assertions to the full-text index failed: %s",
                                    e)
                    try:
                        self.checkpoint(conn)
                    except (OSError, sqlite3.Error) as e:  # try again next round
                        log.warning("index checkpoint failed: %s", e)
            finally:
                conn.close()

        self._checkpointer = threading.Thread(target=loop, name="stemedb-checkpoint",
                                              daemon=True)
        self._checkpointer.start()

    def checkpoint(self, conn: sqlite3.Connection) -> str | None:
        """One round of the checkpointer on ``conn`` (a connection of its own): the
        checkpoint the WAL's size calls for, if any; returns its mode."""
        size = Path(str(self.path) + "-wal").stat().st_size
        if size > CHECKPOINT_WAL_LIMIT:
            # The PASSIVE copy first, writes going on meanwhile; the RESTART then holds
            # the commits off only to copy what came in since, and it does not wait for
            # the writer or for readers (it is taken again next round), unless the WAL
            # has grown to twice the limit.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            wait = CHECKPOINT_WAIT_MS if size > 2 * CHECKPOINT_WAL_LIMIT else 0
            conn.execute(f"PRAGMA busy_timeout={wait}")
            busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            return "RESTART" if not busy else "RESTART-busy"
        if size > CHECKPOINT_WAL_BYTES:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return "PASSIVE"
        return None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join()
            self._checkpointer = None
        with self._write_lock, self._readers_lock:
            for _, conn in self._readers:
                conn.close()
            self._readers.clear()
            self._write.close()
        self.journal.close()

    # -- meta -------------------------------------------------------------------------

    def _meta(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def applied(self) -> tuple[int, bytes]:
        """(applied LSN, chain hash of that record) as committed in the index."""
        lsn = self._meta(self._write, "applied_lsn")
        h = self._meta(self._write, "applied_hash")
        return (int(lsn) if lsn else 0, bytes.fromhex(h) if h else b"")

    @property
    def applied_lsn(self) -> int:
        lsn = self._meta(self.reader, "applied_lsn")
        return int(lsn) if lsn else 0

    # -- apply ------------------------------------------------------------------------

    def apply(self, entries: Sequence[Entry]) -> None:
        """Apply records in LSN order in one transaction, recording the applied LSN."""
        if entries:
            self._write_planned(entries, plan(entries))

    def _write_planned(self, entries: Sequence[Entry], planned: list[Step]) -> None:
        """The transaction of ``apply``: ``planned`` is ``plan(entries)``."""
        with self._write_lock:
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                insert_rows(c, "INSERT OR REPLACE INTO lsn_time (lsn, at) VALUES (?,?)",
                        [(e.lsn, int(e.data["at"])) for e in entries])
                write_steps(c, planned)
                self._unsearched += len(entries)
                if self._unsearched >= SEARCH_MAX_LAG and not c.fts_deferred:
                    index_search(c)
                    self._unsearched = 0
                last = entries[-1]
                insert_rows(c, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                            [("applied_lsn", str(last.lsn)), ("applied_hash", last.hash.hex())])
                c.execute("COMMIT")
            except BaseException:
                _rollback(c)
                raise

    # -- full-text search -------------------------------------------------------------

    def flush_search(self) -> int:
        """Adds the assertions applied since the last call to the full-text index, in
        one transaction of their own; returns how many.

        Search may trail the other reads: a batch's own transaction leaves its rows out
        of the full-text index (FTS5 writes a new segment, and later merges it, for
        every transaction that adds to it: ~70 µs per assertion at the few records a
        group commit holds under single writes), and this adds them in bulk, from the
        checkpoint thread every ``CHECKPOINT_EVERY_S``, from a batch once
        ``SEARCH_MAX_LAG`` records are waiting, and before every search (so a search
        sees every write acknowledged before it). ``search_lag_records`` is what waits."""
        if self._write.fts_deferred or search_pending(self.reader) == 0:
            return 0
        with self._write_lock:
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                n = index_search(c)
                c.execute("COMMIT")
            except BaseException:
                _rollback(c)
                raise
            self._unsearched = 0
            return n

    @property
    def search_lag_records(self) -> int:
        """Assertions readable by id and filter but not yet found by search."""
        return search_pending(self.reader)

    def rebuild_from(self, entries: Iterable[Entry], batch: int = 2000) -> int:
        """Apply a stream of entries in transactions of ``batch`` records.

        Two stages overlap on two cores: this thread reads the stream and plans each
        batch's rows (``plan``: Python), a writer thread writes the batch before it (SQLite,
        which releases the GIL while it inserts). Batches are written one at a time, in
        order, each exactly as ``apply`` writes it, so the result is the same. While it
        runs, the thread switch interval is shortened (the writer needs the GIL back
        briefly after every statement; the default 5 ms would leave it waiting) and the
        cyclic garbage collector is paused (planned rows are acyclic, and collections
        would only rescan the batches in flight).
        """
        handoff: queue.Queue[tuple[list[Entry], list[Step]] | None] = queue.Queue(maxsize=2)
        failed: list[BaseException] = []

        def write() -> None:
            try:
                while (item := handoff.get()) is not None:
                    self._write_planned(*item)
            except BaseException as e:  # reported by the reading thread
                failed.append(e)
                while handoff.get() is not None:  # never leave the reader blocked
                    pass

        writer = threading.Thread(target=write, name="stemedb-index-rebuild", daemon=True)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(REBUILD_SWITCH_INTERVAL)
        collecting = gc.isenabled()
        gc.disable()
        writer.start()
        n = 0
        try:
            chunk: list[Entry] = []
            for e in entries:
                chunk.append(e)
                if len(chunk) >= batch:
                    handoff.put((chunk, plan(chunk)))
                    n += len(chunk)
                    chunk = []
                    if failed:
                        break
            else:
                if chunk:
                    handoff.put((chunk, plan(chunk)))
                    n += len(chunk)
        finally:
            handoff.put(None)
            writer.join()
            sys.setswitchinterval(switch)
            if collecting:
                gc.enable()
        if failed:
            raise failed[0]
        return n

    # -- reads ------------------------------------------------------------------------

    def get_assertion_row(self, aid: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.reader.execute(
            f"SELECT {self._assertion_columns} FROM assertions WHERE id=?", (aid,)
        ).fetchone()
        return row

    def lsn_at(self, at_us: int) -> int:
        """Greatest LSN recorded at or before ``at_us`` (0 if none)."""
        row = self.reader.execute(
            "SELECT max(lsn) FROM lsn_time WHERE at <= ?", (at_us,)
        ).fetchone()
        return int(row[0] or 0)

    def query(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        return self.reader.execute(sql, params).fetchall()

    def count(self, table: str) -> int:
        assert table in ("assertions", "retractions", "writes")
        return int(self.reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def canonical_dump(self) -> Iterator[bytes]:
        """Every row of every base table in a fixed order, one JSON array per line
        (``[table, *row]``, newline-terminated): what ``digest`` hashes."""
        cur = self.reader.cursor()
        cur.row_factory = None  # plain tuples: ``[table, *row]`` comes from the SELECT
        line = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)
        for table, order in DUMP_TABLES:
            columns = ", ".join(dump_columns(self.reader, table))
            yield from map(line, cur.execute(
                f"SELECT '{table}', {columns} FROM {table} ORDER BY {order}"))
        # The FTS index is part of the state a reader sees.
        yield from map(line, cur.execute(
            "SELECT 'fts', rowid, subject, predicate, object_text FROM assertions_fts"
            " ORDER BY rowid"))

    def digest(self) -> str:
        """SHA-256 of ``canonical_dump``, read in one transaction (one snapshot)."""
        h = hashlib.sha256()
        conn = self.reader
        conn.execute("BEGIN")
        try:
            for line in self.canonical_dump():
                h.update(line)
        finally:
            conn.execute("COMMIT")
        return h.hexdigest()
