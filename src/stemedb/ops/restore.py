"""``stemedb restore`` and ``stemedb backup verify``: a backup plus archived WAL, replayed.

Restore picks a base backup (the latest one ending at or before the target, else the
earliest), downloads its files (each checked against the manifest's size and SHA-256),
then — when the target lies past the backup — continues the journal with archived
segments, starting with the full, sealed version of the backup's last segment. Every
record read is checked (checksum, chain, the link between segments, and the backup's
last hash). Records past the index snapshot's LSN are applied to it; the journal is cut
right after the target record (at the frame boundary of the next one), so the new data
directory is a valid journal plus an index for exactly that point.

Targets: ``to_lsn`` (the record with that LSN is the last kept) or ``to_time_us`` (the
last record recorded at or before that time). A target past the last restorable record
is refused with that record's LSN and time; a gap in the archive is named.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import records
from ..datadir import INDEX_FILE, JOURNAL_DIR, remove_index, segment_files
from ..errors import JournalError, MissingObject, OpsError
from ..index import Entry, IndexStore
from ..index.schema import SCHEMA_VERSION
from ..journal import Record, chain_hash, scan, segment_name
from .archive import WAL, ArchiveCheck, ArchiveState, load_state, verify_archive, wal_objects
from .backup import (
    MANIFEST,
    Manifest,
    complete_backups,
    index_schema,
    list_backups,
    load_manifest,
    record_at,
    trim_after,
    us_to_time,
)
from .files import fsync_path, remove_tree
from .progress import Meter, Progress
from .targets import ObjectInfo, Target

log = logging.getLogger("stemedb.ops")


@dataclass
class RestoreReport:
    backup_id: str
    data_dir: str
    lsn: int  # last record restored
    last_hash: str
    last_time: str | None
    records: int
    replayed: int  # records applied to the index
    index_from: int  # LSN of the index snapshot used (0: rebuilt from the journal)
    archived_segments: list[str]
    seconds: float
    digest: str | None = None
    last_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def archive_reach(state: ArchiveState, from_lsn: int) -> tuple[int, int]:
    """(LSN, recorded time) of the last record the archive holds without a gap from
    ``from_lsn`` on, as recorded in the state; (from_lsn - 1, 0) when it holds none."""
    lsn, at = from_lsn - 1, 0
    for seg in state.ordered():
        if seg.first_lsn <= lsn + 1 <= seg.last_lsn:
            lsn, at = seg.last_lsn, seg.last_at
    return lsn, at


def choose_backup(
    manifests: list[Manifest],
    to_lsn: int | None,
    to_time_us: int | None,
    state: ArchiveState | None = None,
) -> Manifest:
    """The base backup for a target.

    Latest target: the latest backup. Otherwise the latest backup ending at or before
    the target (its index snapshot is used, the least is replayed) when the archived
    WAL reaches the target from it; else the earliest backup ending after the target
    (its own journal holds the target; its index is rebuilt up to it).
    """
    latest = max(manifests, key=lambda m: (m.last_lsn, m.id))
    if to_lsn is None and to_time_us is None:
        return latest
    state = state or ArchiveState()
    if to_lsn is not None:
        before = [m for m in manifests if m.last_lsn <= to_lsn]
        after = [m for m in manifests if m.last_lsn > to_lsn]
    else:
        before = [m for m in manifests if m.last_at <= (to_time_us or 0)]
        after = [m for m in manifests if m.last_at > (to_time_us or 0)]
    base = max(before, key=lambda m: (m.last_lsn, m.id)) if before else None
    cover = min(after, key=lambda m: (m.last_lsn, m.id)) if after else None
    if base is None:
        assert cover is not None
        return cover
    reach_lsn, reach_at = archive_reach(state, base.last_lsn + 1)
    if to_lsn is not None:
        reached = base.last_lsn == to_lsn or reach_lsn >= to_lsn
    else:
        reached = reach_at > (to_time_us or 0)
    return base if reached or cover is None else cover


def fetch_backup_files(
    target: Target, m: Manifest, dest: Path, tick: Callable[[int], None] | None = None
) -> list[str]:
    """Downloads every file of backup ``m`` under ``dest``; returns a fault per file that
    is missing, of the wrong size or fails its SHA-256, naming it."""
    faults = []
    for f in m.files:
        key = m.prefix + f.path
        where = target.describe(key)
        path = dest / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            sha, size = target.download(key, path, tick)
        except MissingObject:
            faults.append(f"{where}: missing")
            continue
        if size != f.size:
            faults.append(f"{where}: {size} bytes, expected {f.size} (truncated or replaced)")
        elif sha != f.sha256:
            faults.append(f"{where}: SHA-256 mismatch (corrupt)")
    return faults


@dataclass
class _Walk:
    last: Record | None = None
    last_at: int = 0
    stop: Record | None = None
    count: int = 0
    archived: list[str] = field(default_factory=list)


class _Replay:
    """Walks the journal being assembled in ``data_dir/journal``, fetching archived
    segments as it reaches them, and feeds the records after the index's LSN to it."""

    def __init__(
        self,
        target: Target,
        m: Manifest,
        data_dir: Path,
        *,
        to_lsn: int | None,
        to_time_us: int | None,
        need_wal: bool,
        index_from: int,
        objects: dict[str, ObjectInfo],
        state: ArchiveState,
        tick: Callable[[int], None],
    ) -> None:
        self.target, self.m, self.journal_dir = target, m, data_dir / JOURNAL_DIR
        self.to_lsn, self.to_time_us, self.need_wal = to_lsn, to_time_us, need_wal
        self.index_from, self.objects, self.state, self.tick = index_from, objects, state, tick
        self.walk = _Walk()
        self.origin: dict[str, str] = {
            s["name"]: target.describe(m.prefix + "journal/" + s["name"]) for s in m.segments
        }

    def fetch(self, first: int) -> bool:
        """Downloads archived segment ``first`` into the journal (replacing a shorter
        copy); False when the archive does not hold it."""
        name = segment_name(first)
        obj = self.objects.get(name)
        if obj is None:
            return False
        key = WAL + name
        where = self.target.describe(key)
        tmp = self.journal_dir / (name + ".download")
        sha, size = self.target.download(key, tmp)
        entry = self.state.segments.get(name)
        if entry is not None:
            expected: str | None = entry.sha256
        else:  # not in the state (an interrupted archive run): the recorded digest, if any
            info = self.target.head(key)
            expected = info.sha256 if info is not None else None
        if entry is not None and size != entry.size:
            raise OpsError(f"{where}: {size} bytes, expected {entry.size} (truncated)")
        if expected is not None and sha != expected:
            raise OpsError(f"{where}: SHA-256 mismatch (corrupt)")
        os.replace(tmp, self.journal_dir / name)
        self.origin[name] = where
        self.walk.archived.append(name)
        return True

    def entries(self, walk_from: int) -> Iterator[Entry]:
        w, m = self.walk, self.m
        first, link = walk_from, None
        while True:
            try:
                for r in scan(self.journal_dir, from_lsn=first):
                    if link is not None:
                        if chain_hash(link, r.lsn, r.payload) != r.hash:
                            raise OpsError(
                                f"{self.origin.get(r.segment, r.segment)}: does not "
                                "continue the hash chain of the segment before it"
                            )
                        link = None
                    if r.lsn == m.last_lsn and r.hash.hex() != m.last_hash:
                        raise OpsError(
                            f"{self.origin.get(r.segment, r.segment)} does not continue backup "
                            f"{m.id}: its record LSN {m.last_lsn} differs (the archive holds "
                            "another history)"
                        )
                    data = None
                    if self.to_time_us is not None or r.lsn > self.index_from:
                        data = records.decode(r.payload)
                    if (self.to_lsn is not None and r.lsn > self.to_lsn) or (
                        self.to_time_us is not None
                        and data is not None
                        and int(data["at"]) > self.to_time_us
                    ):
                        w.stop = r
                        return
                    w.last, w.count = r, w.count + 1
                    w.last_at = int(data["at"]) if data is not None else 0
                    if r.lsn > self.index_from:
                        assert data is not None
                        if r.lsn % 1000 == 0:
                            self.tick(1000)
                        yield Entry(r.lsn, r.hash, data, pos=r.offset)
            except JournalError as e:
                file = getattr(e, "file", "")
                name = Path(file).name if file else ""
                raise OpsError(
                    f"{self.origin.get(name, name or 'journal')}: "
                    f"{getattr(e, 'what', e.detail)}"
                    + (f" at offset {e.offset}" if hasattr(e, "offset") else "")
                ) from None
            if w.last is None or not self.need_wal:
                return
            if self.to_lsn is not None and w.last.lsn >= self.to_lsn:
                return  # reached exactly at the end of a segment: nothing more to fetch
            nxt = w.last.lsn + 1
            if not self.fetch(nxt):
                return
            first, link = nxt, w.last.hash


def _check_empty(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise OpsError(
            f"{data_dir} is not empty: restore only into a new or empty directory",
            hint="pick a new --data-dir; never restore over a data directory",
        )


def _describe_target(to_lsn: int | None, to_time_us: int | None) -> str:
    if to_lsn is not None:
        return f"LSN {to_lsn}"
    if to_time_us is not None:
        return f"time {us_to_time(to_time_us)}"
    return "the latest record"


def _gap(objects: dict[str, ObjectInfo], after_lsn: int) -> str:
    later = sorted(int(n[:20]) for n in objects if int(n[:20]) > after_lsn + 1)
    if not later:
        return ""
    return (
        f"; the WAL archive has a gap: segment {segment_name(after_lsn + 1)} is missing "
        f"(archived segments resume at {segment_name(later[0])})"
    )


def restore(
    target: Target,
    data_dir: Path,
    *,
    backup_id: str | None = None,
    to_lsn: int | None = None,
    to_time_us: int | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
    digest: bool = False,
) -> RestoreReport:
    """Restores into the new (or empty) ``data_dir``; see the module docstring."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    if to_lsn is not None and to_time_us is not None:
        raise OpsError("give a target LSN or a target time, not both")
    if to_lsn is not None and to_lsn < 1:
        raise OpsError("the target LSN must be at least 1")
    _check_empty(data_dir)
    objects = wal_objects(target)
    state = ArchiveState()
    if objects:
        try:
            state = load_state(target)
        except OpsError as e:
            log.warning("%s; archived segments are checked by their records only", e.detail)
    if backup_id is not None:
        m = load_manifest(target, backup_id)
        manifests = [m]
    else:
        manifests = complete_backups(target)
        if not manifests:
            raise OpsError(
                f"no complete backup at {target.url}",
                hint=f"take one: stemedb backup create --to {target.url}",
            )
        m = choose_backup(manifests, to_lsn, to_time_us, state)
    earliest = min(manifests, key=lambda b: b.last_lsn)
    if to_time_us is not None and to_time_us < earliest.first_at:
        raise OpsError(
            f"no record was recorded at or before {us_to_time(to_time_us)}: the "
            f"earliest is LSN {earliest.first_lsn} at {earliest.first_time}"
        )
    need_wal = (
        (to_lsn is None and to_time_us is None)
        or (to_lsn is not None and to_lsn > m.last_lsn)
        or (to_time_us is not None and to_time_us >= m.last_at)
    )
    rebuild = (
        rebuild
        or (to_lsn is not None and to_lsn < m.last_lsn)
        or (to_time_us is not None and to_time_us < m.last_at)
    )
    if need_wal:
        _precheck(manifests, state, to_lsn, to_time_us)
    else:
        objects, state = {}, ArchiveState()
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        downloading = Meter(progress, f"downloading backup {m.id}", m.size or 1)
        faults = fetch_backup_files(target, m, data_dir, downloading.advance)
        if faults:
            raise OpsError(
                f"backup {m.id} is damaged: " + "; ".join(faults),
                hint="restore from another backup (--backup ID), and run "
                "`stemedb backup verify`",
            )
        if need_wal:
            estimate = max([m.last_lsn, *(s.last_lsn for s in state.segments.values())])
        else:
            estimate = m.last_lsn
        goal = to_lsn if to_lsn is not None else estimate
        replaying = Meter(progress, "replaying journal", None, "records")
        result = _replay(
            target,
            m,
            data_dir,
            to_lsn=to_lsn,
            to_time_us=to_time_us,
            need_wal=need_wal,
            rebuild=rebuild,
            objects=objects,
            state=state,
            tick=replaying.advance,
            on_index_from=lambda lsn: replaying.set_total(max(goal - lsn, 1)),
            digest=digest,
        )
        w = result.walk
        last = w.last
        if last is None:
            raise OpsError(f"no record at or before {_describe_target(to_lsn, to_time_us)}")
        if need_wal and last.lsn < m.last_lsn:
            raise OpsError(
                f"the archived segments from {segment_name(m.segments[-1]['first_lsn'])} on end "
                f"at LSN {last.lsn}, before backup {m.id} ends (LSN {m.last_lsn}): the archive "
                "holds another history",
                hint="restore with --backup and a target at or before the backup's last LSN",
            )
        beyond = (to_lsn is not None and last.lsn < to_lsn) or (
            to_time_us is not None and w.stop is None and to_time_us > w.last_at
        )
        if beyond:
            raise OpsError(
                f"{_describe_target(to_lsn, to_time_us)} is beyond the archive: "
                f"latest restorable LSN is {last.lsn} at time {us_to_time(w.last_at)}"
                + _gap(objects, last.lsn),
                hint="archive more WAL (stemedb wal archive), or pick an earlier target",
            )
        if to_lsn is None and to_time_us is None and need_wal:
            gap = _gap(objects, last.lsn)
            if gap:
                raise OpsError(
                    f"cannot restore the latest record: the archive ends at LSN "
                    f"{last.lsn} at time {us_to_time(w.last_at)}{gap}",
                    hint=f"restore up to the gap with --to-lsn {last.lsn}, or "
                    "find the missing segment",
                )
        _finish(data_dir)
    except BaseException:
        if created:
            remove_tree(data_dir)
        else:
            for child in data_dir.iterdir():
                if child.is_dir():
                    remove_tree(child)
                else:
                    child.unlink()
        raise
    report = RestoreReport(
        backup_id=m.id,
        data_dir=str(data_dir),
        lsn=last.lsn,
        last_hash=last.hash.hex(),
        last_time=us_to_time(w.last_at),
        last_at=w.last_at,
        records=last.lsn,
        replayed=result.replayed,
        index_from=result.index_from,
        archived_segments=w.archived,
        seconds=round(time.perf_counter() - started, 3),
        digest=result.digest,
    )
    log.info(
        "restored backup %s + %d archived segments into %s: LSN %d (%s)",
        m.id,
        len(w.archived),
        data_dir,
        last.lsn,
        report.last_time,
    )
    return report


def _precheck(
    manifests: list[Manifest], state: ArchiveState, to_lsn: int | None, to_time_us: int | None
) -> None:
    """Refuses, before downloading anything, a target past everything the target holds
    (the replay checks again, exactly)."""
    ends = [(b.last_lsn, b.last_at) for b in manifests]
    ends += [(s.last_lsn, s.last_at) for s in state.segments.values()]
    lsn, at = max(ends)
    if (to_lsn is not None and to_lsn > lsn) or (to_time_us is not None and to_time_us > at):
        raise OpsError(
            f"{_describe_target(to_lsn, to_time_us)} is beyond the archive: latest "
            f"restorable LSN is {lsn} at time {us_to_time(at)}",
            hint="archive more WAL (stemedb wal archive), or pick an earlier target",
        )


@dataclass
class _Result:
    walk: _Walk
    replayed: int
    index_from: int
    digest: str | None


def _replay(
    target: Target,
    m: Manifest,
    data_dir: Path,
    *,
    to_lsn: int | None,
    to_time_us: int | None,
    need_wal: bool,
    rebuild: bool,
    objects: dict[str, ObjectInfo],
    state: ArchiveState,
    tick: Callable[[int], None],
    on_index_from: Callable[[int], object] = lambda _: None,
    digest: bool = False,
) -> _Result:
    """Assembles and replays the journal in ``data_dir`` (the backup's files already
    there), cuts it after the target, and leaves the index at exactly that record."""
    journal_dir = data_dir / JOURNAL_DIR
    index_path = data_dir / INDEX_FILE
    last_segment = m.segments[-1]["first_lsn"]
    replay = _Replay(
        target,
        m,
        data_dir,
        to_lsn=to_lsn,
        to_time_us=to_time_us,
        need_wal=need_wal,
        index_from=0,
        objects=objects,
        state=state,
        tick=tick,
    )
    if need_wal:
        replay.fetch(last_segment)  # the sealed, longer version of the backup's last segment
    index_from = 0
    if not rebuild:
        store = IndexStore(index_path)
        try:
            if store.applied() == (m.last_lsn, bytes.fromhex(m.last_hash)):
                index_from = m.last_lsn
            else:
                log.warning(
                    "backup %s: the index snapshot is not at LSN %d; rebuilding it",
                    m.id,
                    m.last_lsn,
                )
        finally:
            store.close()
    if index_from == 0:
        remove_index(data_dir)
    replay.index_from = index_from
    on_index_from(index_from)
    store = IndexStore(index_path, bulk=index_from == 0)  # a fresh file: build it in bulk
    try:
        replayed = store.rebuild_from(replay.entries(1 if index_from == 0 else last_segment),
                                      batch=10_000)
        store.finish_bulk()
        w = replay.walk
        if w.last is not None:
            if store.applied() != (w.last.lsn, w.last.hash):
                raise OpsError("the rebuilt index does not end at the restored record")
            trim_after(journal_dir, w.last)
            if w.last_at == 0:
                w.last_at = record_at(w.last.payload)
        dig = store.digest() if digest else None
    finally:
        store.close()
    return _Result(replay.walk, replayed, index_from, dig)


def _finish(data_dir: Path) -> None:
    """Removes download leftovers and makes every file and directory entry durable."""
    journal_dir = data_dir / JOURNAL_DIR
    for p in journal_dir.glob("*.download"):
        p.unlink()
    for p in [*journal_dir.iterdir(), *data_dir.glob(INDEX_FILE + "*")]:
        if p.is_file():
            fsync_path(p)
    fsync_path(journal_dir)
    fsync_path(data_dir)
    if data_dir.parent.exists():
        fsync_path(data_dir.parent)


# -- backup verify ---------------------------------------------------------------------


@dataclass
class BackupVerifyReport:
    target: str
    backup_id: str | None = None
    files: int = 0
    bytes: int = 0
    records: int = 0
    last_lsn: int = 0
    digest: str | None = None
    manifest_digest: str | None = None
    faults: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wal: ArchiveCheck | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.faults

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "wal"}
        d["ok"] = self.ok
        if self.wal is not None:
            d["wal"] = {
                "segments": self.wal.segments,
                "bytes": self.wal.bytes,
                "first_lsn": self.wal.first_lsn,
                "last_lsn": self.wal.last_lsn,
            }
        return d


def verify_backup(
    target: Target,
    backup_id: str | None = None,
    *,
    wal: bool = True,
    progress: Progress | None = None,
    scratch_dir: Path | None = None,
) -> BackupVerifyReport:
    """Checks a backup (default: the latest complete one) end to end: every file against
    the manifest, every record's checksum and chain, then a replay of the whole journal
    into a fresh index whose digest must equal the manifest's; and, with ``wal``, every
    archived segment. Every fault names the object."""
    started = time.perf_counter()
    report = BackupVerifyReport(target.url)
    scratch = Path(tempfile.mkdtemp(prefix="stemedb-verify-", dir=scratch_dir))
    try:
        _verify_backup(target, backup_id, report, progress, scratch)
        if wal:
            report.wal = verify_archive(target, scratch, progress=progress)
            report.faults += report.wal.faults
            report.notes += report.wal.notes
    finally:
        remove_tree(scratch)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _verify_backup(
    target: Target,
    backup_id: str | None,
    report: BackupVerifyReport,
    progress: Progress | None,
    scratch: Path,
) -> None:
    infos = list_backups(target)
    if backup_id is None:
        complete = [b for b in infos if b.complete]
        if not complete:
            report.faults.append(f"no complete backup at {target.url}")
            return
        backup_id = complete[-1].id
    report.backup_id = backup_id
    try:
        m = load_manifest(target, backup_id)
    except OpsError as e:
        report.faults.append(e.detail)
        return
    report.manifest_digest = m.index_digest
    listed = {o.key for o in target.list(m.prefix)}
    for key in sorted(listed - {m.prefix + f.path for f in m.files} - {m.prefix + MANIFEST}):
        report.notes.append(f"{target.describe(key)} is not in the manifest (ignored)")
    data = scratch / "data"
    checking = Meter(progress, f"checking backup {m.id}", m.size or 1)
    faults = fetch_backup_files(target, m, data, checking.advance)
    report.files = len(m.files) - len(faults)
    report.bytes = m.size
    report.faults += faults
    if faults:
        return
    # An index of another schema version (a backup from before an upgrade) has another
    # digest for the same records: the journal is still checked record by record, and a
    # restore rebuilds the index from it.
    same_schema = index_schema(m) == SCHEMA_VERSION
    if not same_schema:
        report.notes.append(
            f"backup {m.id}: its index is of schema {index_schema(m)}, this StemeDB's is "
            f"{SCHEMA_VERSION}; the index is not compared (a restore rebuilds it)")
    store = IndexStore(data / INDEX_FILE)
    try:
        if same_schema and store.applied() != (m.last_lsn, bytes.fromhex(m.last_hash)):
            report.faults.append(
                f"{target.describe(m.prefix + INDEX_FILE)}: the index "
                f"snapshot is not at LSN {m.last_lsn}"
            )
        elif same_schema and store.digest() != m.index_digest:
            report.faults.append(
                f"{target.describe(m.prefix + INDEX_FILE)}: the index "
                "snapshot's digest differs from the manifest's"
            )
    finally:
        store.close()
    firsts = segment_files(data / JOURNAL_DIR)
    expected = [s["first_lsn"] for s in m.segments]
    if firsts != expected:
        report.faults.append(f"backup {m.id}: segments {firsts} differ from the manifest's")
        return
    replaying = Meter(progress, "replaying journal", m.records or 1, "records")
    try:
        result = _replay(
            target,
            m,
            data,
            to_lsn=m.last_lsn,
            to_time_us=None,
            need_wal=False,
            rebuild=True,
            objects={},
            state=ArchiveState(),
            tick=replaying.advance,
            digest=True,
        )
    except OpsError as e:
        report.faults.append(e.detail)
        return
    w = result.walk
    report.records = w.count
    report.last_lsn = w.last.lsn if w.last else 0
    report.digest = result.digest
    if w.last is None or w.last.lsn != m.last_lsn or w.last.hash.hex() != m.last_hash:
        report.faults.append(
            f"backup {m.id}: the journal ends at LSN {report.last_lsn}, the "
            f"manifest says {m.last_lsn} (hash {m.last_hash[:16]}…)"
        )
    if w.count != m.records:
        report.faults.append(f"backup {m.id}: {w.count} records, the manifest says {m.records}")
    if same_schema and result.digest != m.index_digest:
        report.faults.append(
            f"backup {m.id}: the index replayed from its journal has digest "
            f"{result.digest}, the manifest says {m.index_digest}"
        )
