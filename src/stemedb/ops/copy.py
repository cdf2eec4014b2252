"""``stemedb storage copy --from SRC --to DST``: move a deployment between backends.

SRC and DST are each a data directory (the embedded store) or a ``postgresql://`` URL.
The journal is copied record by record, in LSN order: every record's checksum and chain
are re-checked as it is read, every signed write's signature is verified, and the
destination, which must be empty, appends the same payloads, so it assigns the same LSNs
and chain hashes (checked for every record) and builds its index as it goes. The copy
is the one-command upgrade path from embedded to cluster, and back.

Stop the servers on both sides first: a data directory is read while its lock is free,
and a copy of a journal still being written would miss its tail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..backends import is_database_url, open_location
from ..datadir import is_live, journal_dir
from ..errors import OpsError
from ..journal import Record, scan
from ..store import Store
from .progress import Meter, Progress
from .verify import check_signature

BATCH = 1000  # records per append on the destination (one durable commit each)


@dataclass
class CopyReport:
    records: int
    signed: int
    last_lsn: int
    last_hash: str
    digest: str

    def to_dict(self) -> dict[str, object]:
        return {"records": self.records, "signed": self.signed, "last_lsn": self.last_lsn,
                "last_hash": self.last_hash, "digest": self.digest}


def _source_records(location: str) -> tuple[Iterator[Record], Store | None]:
    """The records of SRC, checked as read, and the store to close afterwards (None for
    a data directory, which is scanned read-only)."""
    if is_database_url(location):
        store = open_location(location)
        return store.records(), store
    data_dir = Path(location)
    if not journal_dir(data_dir).is_dir():
        raise OpsError(f"{location} holds no journal", hint="give a data directory or a "
                       "postgresql:// URL as --from")
    if is_live(data_dir):
        raise OpsError(f"a server is running on {location}",
                       hint="stop it (systemctl stop stemedb-api) before copying its journal")
    return scan(journal_dir(data_dir)), None


def copy_store(source: str, destination: str, progress: Progress | None = None) -> CopyReport:
    """Copy SRC's journal into the empty DST (see the module docstring)."""
    if source == destination:
        raise OpsError("--from and --to are the same")
    records, src_store = _source_records(source)
    try:
        dst = open_location(destination)
        try:
            if dst.last_lsn:
                raise OpsError(f"{destination} is not empty (its journal ends at LSN "
                               f"{dst.last_lsn})",
                               hint="copy into a new data directory or an empty database")
            return _copy(records, dst, Meter(progress, "copying journal", None, "records"))
        finally:
            dst.close()
    finally:
        if src_store is not None:
            src_store.close()


def _copy(records: Iterator[Record], dst: Store, meter: Meter) -> CopyReport:
    signed = 0
    last: Record | None = None
    batch: list[Record] = []

    def flush() -> None:
        got = dst.submit([r.payload for r in batch]).result()
        for want, have in zip(batch, got, strict=True):
            if (want.lsn, want.hash) != (have.lsn, have.hash):
                raise OpsError(f"the destination gave LSN {have.lsn} another chain hash "
                               f"than the source's LSN {want.lsn}",
                               hint="copy into a new data directory or an empty database")
        meter.advance(len(batch))
        batch.clear()

    for r in records:
        is_signed, fault = check_signature(r)
        if fault:
            raise OpsError(f"the source's {fault}", hint="run stemedb verify on the source; "
                           "restore it from a backup before copying")
        signed += is_signed
        batch.append(r)
        last = r
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return CopyReport(records=meter.done, signed=signed, last_lsn=last.lsn if last else 0,
                      last_hash=last.hash.hex() if last else "", digest=dst.digest())
