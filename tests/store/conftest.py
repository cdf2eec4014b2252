"""The backends the shared store suite runs against.

Each backend is a ``Backend``: ``open()`` opens (or reopens) the same store, ``open(
fail_durability=True)`` opens it so that making records durable fails (the embedded store:
every fsync raises EIO; PostgreSQL: the database stops accepting connections and the
committer's connection is cut), ``fresh()`` is the same kind of backend on new, empty
storage. A backend whose durability failures are transient outages (PostgreSQL) has
``heal``: it ends the failure, and the store must then recover by itself, without a
restart. A new backend adds itself to ``BACKENDS``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stemedb.embedded import EmbeddedStore
from stemedb.settings import JournalSettings
from stemedb.store import Store
from tests.services import PostgresServer


@dataclass
class Backend:
    name: str
    open: Callable[..., Store]
    fresh: Callable[[], Backend]
    heal: Callable[[], None] | None = None


def _embedded(request: pytest.FixtureRequest, path: Path) -> Backend:
    def open_store(fail_durability: bool = False) -> Store:
        armed = False

        def fsync(fd: int) -> None:
            if armed:
                raise OSError(errno.EIO, "injected")
            os.fsync(fd)

        store = EmbeddedStore(path, JournalSettings(min_free_bytes=0), fsync=fsync)
        armed = fail_durability  # opening syncs too: fail only what comes after
        return store

    def fresh() -> Backend:
        return _embedded(request, path.parent / f"{path.name}-fresh")

    return Backend("embedded", open_store, fresh)


def _postgres(request: pytest.FixtureRequest, path: Path) -> Backend:
    from stemedb.postgres import PostgresStore

    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.start()
    url = server.create_database()
    name = url.rsplit("/", 1)[1]
    request.addfinalizer(lambda: _drop(server, name))

    def open_store(fail_durability: bool = False) -> Store:
        store = PostgresStore(url, JournalSettings())
        if fail_durability:
            store.reads.applied_lsn  # noqa: B018 - the readers hold a live connection
            server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                           database="postgres")
            server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           f" WHERE datname = '{name}' AND application_name = 'stemedb-commit'",
                           database="postgres")
        return store

    def heal() -> None:
        server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true', database="postgres")

    def fresh() -> Backend:
        return _postgres(request, path)

    return Backend("postgres", open_store, fresh, heal)


def _drop(server: PostgresServer, name: str) -> None:
    server.start()  # a test may leave it stopped
    server.drop_database(name)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "embedded": _embedded, "postgres": _postgres}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield BACKENDS[request.param](request, tmp_path / "store")
