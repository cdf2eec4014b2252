"""Which storage backend a deployment uses, opened from its settings or a location.

``[storage] database_url`` unset: the embedded store in ``[server] data_dir`` (the
default). A ``postgresql://`` URL: the PostgreSQL backend, shared by every node that
names the same database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .embedded import EmbeddedStore, OnCommit
from .settings import JournalSettings, Settings
from .store import Store

DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: str) -> bool:
    return location.startswith(DATABASE_SCHEMES)


def open_store(settings: Settings, *, on_commit: OnCommit | None = None,
               fsync: Callable[[int], None] = os.fsync) -> Store:
    """The store a server runs on, from its settings."""
    url = settings.storage.database_url
    if url:
        return _postgres(url, settings.journal, on_commit)
    return EmbeddedStore(settings.data_dir, settings.journal, fsync=fsync, on_commit=on_commit)


def open_location(location: str, config: JournalSettings | None = None) -> Store:
    """The store at a data directory or a ``postgresql://`` URL (ops commands)."""
    if is_database_url(location):
        return _postgres(location, config or JournalSettings(), None)
    return EmbeddedStore(Path(location), config or JournalSettings(min_free_bytes=0))


def database_status(url: str) -> dict[str, int]:
    """A PostgreSQL database's schema version (0: none yet), the version this StemeDB
    writes, and the journal's tip LSN (``stemedb db status``)."""
    from .postgres import database_status as status

    return status(url)


def _postgres(url: str, config: JournalSettings, on_commit: OnCommit | None) -> Store:
    from .postgres import PostgresStore  # psycopg is only needed in cluster mode

    return PostgresStore(url, config, on_commit=on_commit)
