"""The backends the shared store suite runs against.

Each backend is a ``Backend``: ``open()`` opens (or reopens) the same store, ``open(
fail_durability=True)`` opens it so that making records durable fails (the embedded store:
every fsync raises EIO). A new backend adds itself to ``BACKENDS``.
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


@dataclass
class Backend:
    name: str
    open: Callable[..., Store]


def _embedded(path: Path) -> Backend:
    def open_store(fail_durability: bool = False) -> Store:
        armed = False

        def fsync(fd: int) -> None:
            if armed:
                raise OSError(errno.EIO, "injected")
            os.fsync(fd)

        store = EmbeddedStore(path, JournalSettings(min_free_bytes=0), fsync=fsync)
        armed = fail_durability  # opening syncs too: fail only what comes after
        return store

    return Backend("embedded", open_store)


BACKENDS: dict[str, Callable[[Path], Backend]] = {"embedded": _embedded}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield BACKENDS[request.param](tmp_path / "store")
