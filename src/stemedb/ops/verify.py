"""``stemedb verify``: every checksum, the hash chain, and every signature.

On a live data directory (the server holds the lock) it checks up to the index's
applied LSN, so a group commit being written at that moment is not mistaken for damage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .. import records, signing
from ..datadir import INDEX_FILE, JOURNAL_DIR, is_live, read_applied
from ..errors import JournalCorrupt
from ..journal import Record, scan
from ..model import write_id
from .progress import Meter, Progress


@dataclass
class VerifyReport:
    records: int = 0
    signed: int = 0
    bytes: int = 0
    last_lsn: int = 0
    live: bool = False
    faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    def to_json(self) -> str:
        return orjson.dumps({"ok": self.ok, "records": self.records, "signed": self.signed,
                             "bytes": self.bytes, "last_lsn": self.last_lsn, "live": self.live,
                             "faults": self.faults}).decode()


def check_signature(r: Record) -> tuple[bool, str | None]:
    """(is this a signed write, the fault if its signature does not hold)."""
    data = records.decode(r.payload)
    if data["t"] not in records.SIGNED_KINDS:
        return False, None
    w = records.signed_write(data)
    where = f"LSN {r.lsn}" + (f" ({r.segment} @ {r.offset})" if r.segment else "")
    try:
        agent_id = orjson.loads(w.body)["agent_id"]
        sig = signing.decode_signature(w.signature)
    except Exception:
        return True, f"{where}: signed body or signature unreadable"
    if not signing.verify(agent_id, w.body, sig):
        return True, f"{where}: signature does not verify (write {write_id(w.body)})"
    return True, None


def _check(report: VerifyReport, records: Iterable[Record],
           tick: Callable[[Record], None] | None = None) -> VerifyReport:
    """Every record's signature; the source checks checksums and chain as it reads, and
    its ``JournalCorrupt`` becomes the report's fault."""
    try:
        for r in records:
            report.records += 1
            report.last_lsn = r.lsn
            signed, fault = check_signature(r)
            if fault:
                report.faults.append(fault)
            elif signed:
                report.signed += 1
            if tick is not None:
                tick(r)
    except JournalCorrupt as e:
        report.faults.append(f"{e.detail}; {e.hint}")
    return report


def verify_database(database_url: str, progress: Progress | None = None) -> VerifyReport:
    """``verify`` of a cluster's journal in PostgreSQL: every record's chain hash is
    recomputed from its payload as it is read (a payload changed behind the database's
    back is named by its LSN), and every signature checked."""
    from ..backends import open_location

    report = VerifyReport(live=True)
    store = open_location(database_url)
    try:
        verifying = Meter(progress, "verifying journal", store.last_lsn or 1, "records")

        def tick(r: Record) -> None:
            report.bytes += len(r.payload)
            verifying.update(report.records)

        return _check(report, store.records(1, store.last_lsn), tick)
    finally:
        store.close()


def verify_data_dir(data_dir: Path, progress: Progress | None = None) -> VerifyReport:
    report = VerifyReport()
    journal_dir = Path(data_dir) / JOURNAL_DIR
    if not journal_dir.is_dir():
        report.faults.append(f"no journal directory at {journal_dir}")
        return report
    limit = None
    if is_live(Path(data_dir)):
        report.live = True
        applied = read_applied(Path(data_dir) / INDEX_FILE)
        limit = applied[0] if applied is not None else 0
    total = sum(p.stat().st_size for p in journal_dir.glob("*.wal"))
    verifying = Meter(progress, "verifying journal", total or 1)

    def advance(n: int) -> None:
        report.bytes = n
        verifying.update(n)

    return _check(report, scan(journal_dir, to_lsn=limit, progress=advance))
