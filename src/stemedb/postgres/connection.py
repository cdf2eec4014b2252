"""Connections to PostgreSQL, and what this node knows about reaching it.

A PostgreSQL outage is not a journal failure: nothing this node acknowledged is lost
(acknowledged means committed), so there is nothing to distrust once the server answers
again. While it does not, ``Health`` says so (readiness is false, writes and reads are
refused at once with ``Unavailable``) and its watcher thread probes the server; the first
probe that gets an answer ends the outage. No restart is needed. When all is well and
nothing has talked to the database for a second, the watcher asks it (``SELECT 1``), so
readiness notices an outage on an idle node too, without ever blocking its caller.

Reads go through a ``psycopg_pool.ConnectionPool`` of autocommit connections: a one-
statement answer is its own snapshot; an answer of several statements runs in one
``REPEATABLE READ READ ONLY`` transaction (``Reader.run(..., snapshot=True)``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import IsolationLevel
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import Unavailable

log = logging.getLogger("stemedb.postgres")

Conn = psycopg.Connection[Any]
T = TypeVar("T")

# Every connection: fail a connect within seconds, notice a dead peer within ~25 s
# (keepalives), and never leave sent data unacknowledged for longer than 20 s.
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}
IDLE_PROBE_S = 1.0  # ask the database when nothing else did for this long
OUTAGE_PROBE_S = (0.1, 1.0)  # first and longest wait between probes during an outage
RETRY_AFTER_S = 2  # what a refused request is told
PROBE_CONNECT_S = 1  # a reader's own probe after a failed read gives up this fast


def connect(url: str, *, name: str, autocommit: bool = False) -> Conn:
    """A new connection to ``url`` (a ``postgresql://`` URL or a libpq DSN)."""
    return psycopg.connect(url, autocommit=autocommit, application_name=name,
                           **CONNECT_OPTIONS)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the server cannot be used, rather than that a statement failed:
    the connection broke or could not be made (no SQLSTATE), a connection exception
    (08…), insufficient resources such as too many connections (53…), or the server
    shutting down, starting up or the database gone (57P…; not 57014, a cancelled
    statement)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "53", "57P"))


def describe(exc: BaseException) -> str:
    """One line on why the database could not be used."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no detail'}"


def _configure_reader(conn: Conn) -> None:
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True


@contextmanager
def snapshot(url: str, *, name: str) -> Iterator[Conn]:
    """A connection of its own inside one REPEATABLE READ read-only transaction: one
    consistent view for a long read (the journal, the dump) without holding a pooled
    connection. Raises ``Unavailable`` when the database cannot be used."""
    try:
        with connect(url, name=name, autocommit=True) as conn:
            _configure_reader(conn)
            with conn.transaction():
                yield conn
    except psycopg.OperationalError as e:
        if not is_outage(e):
            raise
        raise Unavailable(f"database unreachable: {describe(e)}",
                          retry_after=RETRY_AFTER_S) from None


class Health:
    """Whether this node can reach the database, as it last found out, and the watcher
    thread that keeps finding out."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._down: str | None = None
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._idle_probe: Callable[[], object] | None = None
        self._recovered: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self.last_ok = time.monotonic()  # of the last successful round trip

    @property
    def down(self) -> str | None:
        """Why the database is unreachable, or None."""
        return self._down

    def unavailable(self) -> Unavailable:
        return Unavailable(f"database unreachable: {self._down}", retry_after=RETRY_AFTER_S)

    def watch(self, idle_probe: Callable[[], object],
              on_recovery: Callable[[], None]) -> None:
        """Starts the watcher: ``idle_probe`` asks the database when all is well but
        quiet (and reports its own failure); ``on_recovery`` runs when an outage ends."""
        self._idle_probe = idle_probe
        self._recovered.append(on_recovery)
        self._thread = threading.Thread(target=self._watch, name="stemedb-pg-health",
                                        daemon=True)
        self._thread.start()

    def ok(self) -> None:
        self.last_ok = time.monotonic()

    def failed(self, reason: str) -> None:
        """The database did not answer: refuse work until a probe gets an answer."""
        with self._lock:
            first = self._down is None
            self._down = reason
        if first:
            log.error("database unreachable: %s; refusing work until it answers again",
                      reason, extra={"reason": reason})
        self._wake.set()

    def _watch(self) -> None:
        wait = IDLE_PROBE_S
        backoff = OUTAGE_PROBE_S[0]
        while not self._closed.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if self._closed.is_set():
                return
            if (self._down is None and self._idle_probe is not None
                    and time.monotonic() - self.last_ok >= IDLE_PROBE_S):
                with contextlib.suppress(Exception):  # the probe reports an outage itself
                    self._idle_probe()
            if self._down is None:
                wait, backoff = IDLE_PROBE_S, OUTAGE_PROBE_S[0]
            elif self._answers():
                self._recover()
                wait, backoff = IDLE_PROBE_S, OUTAGE_PROBE_S[0]
            else:
                wait, backoff = backoff, min(backoff * 2, OUTAGE_PROBE_S[1])

    def reachable(self, reason: str) -> bool:
        """After a read failed with ``reason``: whether the database still answers (a
        quick fresh connection). If not, the outage starts now and True never blocks a
        caller for longer than ``PROBE_CONNECT_S``."""
        if self._answers(connect_timeout=PROBE_CONNECT_S):
            return True
        self.failed(reason)
        return False

    def _answers(self, connect_timeout: int | None = None) -> bool:
        options = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
        try:
            with psycopg.connect(self._url, autocommit=True, application_name="stemedb-probe",
                                 **{**CONNECT_OPTIONS, **options}) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as e:
            with self._lock:
                self._down = describe(e)
            return False
        return True

    def _recover(self) -> None:
        for callback in self._recovered:
            try:
                callback()
            except Exception:  # a callback must not keep the outage going
                log.exception("database recovery callback failed")
        with self._lock:
            self._down = None
        self.ok()
        log.warning("database reachable again; accepting work")

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


class Reader:
    """The read side: a pool of autocommit, read-only connections."""

    def __init__(self, url: str, health: Health, *, max_size: int, timeout: float) -> None:
        self._health = health
        self._timeout = timeout
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            url, min_size=1, max_size=max_size, open=False, timeout=timeout,
            name="stemedb-reads", configure=_configure_reader,
            kwargs={"autocommit": True, "application_name": "stemedb-reads",
                    **CONNECT_OPTIONS})
        self.pool.open(wait=False)

    def run(self, fn: Callable[[Conn], T], *, snapshot: bool = False) -> T:
        """``fn(connection)``, in one REPEATABLE READ read-only transaction when
        ``snapshot``. A connection that broke since it was last used (the server
        restarted, an idle timeout) is replaced and the read tried once more; a second
        failure is an outage. Raises ``Unavailable`` while the database is unreachable."""
        for attempt in (1, 2):
            if self._health.down is not None:
                raise self._health.unavailable()
            try:
                with self.pool.connection() as conn:
                    if snapshot:
                        with conn.transaction():
                            result = fn(conn)
                    else:
                        result = fn(conn)
            except PoolTimeout:
                reason = f"no database connection was free within {self._timeout} s"
                self._health.reachable(reason)  # an outage is told apart from a busy pool
                raise Unavailable(reason, retry_after=RETRY_AFTER_S) from None
            except psycopg.OperationalError as e:
                if not is_outage(e):
                    raise Unavailable(f"the database could not answer: {describe(e)}",
                                      retry_after=RETRY_AFTER_S) from None
                # A pooled connection may have died while idle (the server restarted):
                # retry once if the database answers a fresh connection at once. If it
                # does not, the outage starts now: this and every later read is refused
                # at once instead of waiting for connections that cannot be made.
                if attempt == 1 and self._health.reachable(describe(e)):
                    self.pool.check()
                    continue
                self._health.failed(describe(e))
                raise self._health.unavailable() from None
            self._health.ok()
            return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.pool.close()
