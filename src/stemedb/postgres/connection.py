"""Connections to PostgreSQL, and what this node knows about reaching it.

A PostgreSQL outage is not a journal failure: nothing this node acknowledged is lost
(acknowledged means committed), so there is nothing to distrust once the server answers
again. While it does not, ``Health`` says so (readiness is false, writes and reads are
refused at once with ``Unavailable``) and probes the server in the background; the first
probe that gets an answer ends the outage. No restart is needed.

Reads go through a ``psycopg_pool.ConnectionPool`` of autocommit connections: a one-
statement answer is its own snapshot; an answer of several statements runs in one
``REPEATABLE READ READ ONLY`` transaction (``Reader.run(..., snapshot=True)``).
"""

from __future__ import annotations

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
PROBE_EVERY_S = (0.1, 1.0)  # first and longest wait between probes during an outage
RETRY_AFTER_S = 2  # what a refused request is told


def connect(url: str, *, name: str, autocommit: bool = False) -> Conn:
    """A new connection to ``url`` (a ``postgresql://`` URL or a libpq DSN)."""
    return psycopg.connect(url, autocommit=autocommit, application_name=name,
                           **CONNECT_OPTIONS)


@contextmanager
def snapshot(url: str, *, name: str) -> Iterator[Conn]:
    """A connection of its own inside one REPEATABLE READ read-only transaction: one
    consistent view for a long read (the journal, the dump) without holding a pooled
    connection."""
    with connect(url, name=name, autocommit=True) as conn:
        _configure_reader(conn)
        with conn.transaction():
            yield conn


def describe(exc: BaseException) -> str:
    """One line on why the database could not be used."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no detail'}"


class Health:
    """Whether this node can reach the database, as it last found out."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._down: str | None = None
        self._closed = threading.Event()
        self._prober: threading.Thread | None = None
        self._recovered: list[Callable[[], None]] = []
        self.last_ok = 0.0  # time.monotonic() of the last successful round trip

    @property
    def down(self) -> str | None:
        """Why the database is unreachable, or None."""
        return self._down

    def unavailable(self) -> Unavailable:
        return Unavailable(f"database unreachable: {self._down}", retry_after=RETRY_AFTER_S)

    def on_recovery(self, callback: Callable[[], None]) -> None:
        self._recovered.append(callback)

    def ok(self) -> None:
        self.last_ok = time.monotonic()

    def failed(self, reason: str) -> None:
        """The database did not answer: refuse work until a probe gets an answer."""
        with self._lock:
            if self._closed.is_set():
                return
            first = self._down is None
            self._down = reason
            if first:
                log.error("database unreachable: %s; refusing work until it answers again",
                          reason, extra={"reason": reason})
            if self._prober is None:
                self._prober = threading.Thread(target=self._probe, name="stemedb-pg-probe",
                                                daemon=True)
                self._prober.start()

    def _probe(self) -> None:
        """Runs while the outage lasts. It ends itself under the lock, in the same step
        that clears the outage, so a failure reported after that starts a new prober."""
        wait = PROBE_EVERY_S[0]
        while not self._closed.wait(wait):
            try:
                with connect(self._url, name="stemedb-probe", autocommit=True) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as e:
                with self._lock:
                    self._down = describe(e)
                wait = min(wait * 2, PROBE_EVERY_S[1])
                continue
            for callback in self._recovered:
                try:
                    callback()
                except Exception:  # a callback must not keep the outage going
                    log.exception("database recovery callback failed")
            with self._lock:
                self._down = None
                self._prober = None
                self.ok()
            log.warning("database reachable again; accepting work")
            return

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            prober = self._prober
        if prober is not None and prober is not threading.current_thread():
            prober.join()


def _configure_reader(conn: Conn) -> None:
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True


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
        health.on_recovery(self.pool.check)

    def run(self, fn: Callable[[Conn], T], *, snapshot: bool = False) -> T:
        """``fn(connection)``, in one REPEATABLE READ read-only transaction when
        ``snapshot``. A connection that broke since it was last used (the server
        restarted) is replaced and the read tried once more; a second failure is an
        outage."""
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
                raise Unavailable(f"no database connection was free within {self._timeout} s",
                                  retry_after=RETRY_AFTER_S) from None
            except psycopg.OperationalError as e:
                if attempt == 1:
                    self.pool.check()
                    continue
                self._health.failed(describe(e))
                raise self._health.unavailable() from None
            self._health.ok()
            return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.pool.close()
