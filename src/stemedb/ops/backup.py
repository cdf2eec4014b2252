"""``stemedb backup create | list``: a consistent cut of a data directory, while it serves.

A backup is the journal from LSN 1 up to a cut LSN plus an index snapshot caught up to
exactly that LSN, and a manifest written last (a backup without ``manifest.json`` is
incomplete by definition and is never restored from)::

    backups/<id>/journal/<segment>.wal   sealed segments whole; the last one cut after
                                         the frame of the cut LSN
    backups/<id>/index.sqlite3           SQLite snapshot, applied LSN == cut
    backups/<id>/manifest.json           LSN and time range, last hash, index digest,
                                         size and SHA-256 of every file

Why this is consistent while the server appends: the server only appends; sealed
segments never change; every record up to the index's applied LSN is durable (the index
applies a batch only after its fsync). So the cut is the applied LSN read from the index
(read-only), and the bytes of the journal up to the end of that record's frame are
final. The index snapshot is taken first with SQLite's online backup API from a
read-only connection (consistent at its own applied LSN S <= cut), then caught up from
the copied journal to the cut; its digest goes into the manifest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .. import records
from ..datadir import INDEX_FILE, JOURNAL_DIR, is_live, read_applied, segment_files
from ..errors import JournalCorrupt, MissingObject, OpsError
from ..index import Entry, IndexStore
from ..index.schema import SCHEMA_VERSION
from ..index.store import remove_index_files, self_contained, snapshot_index
from ..journal import FRAME_HEADER_SIZE, Record, scan, segment_name
from ..version import __version__
from .files import fsync_path, remove_tree, sha256_file
from .progress import Meter, Progress
from .targets import LocalTarget, Target

log = logging.getLogger("stemedb.ops")

BACKUPS = "backups/"
MANIFEST = "manifest.json"
FORMAT = 1
def record_at(payload: bytes) -> int:
    """Recorded time (unix µs) of a journal payload."""
    return int(records.decode(payload)["at"])


def us_to_time(us: int | None) -> str | None:
    if us is None:
        return None
    return (
        datetime.fromtimestamp(us / 1e6, UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def now_time() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- the manifest ----------------------------------------------------------------------


@dataclass
class FileEntry:
    path: str  # relative to the backup's directory
    size: int
    sha256: str


@dataclass
class Manifest:
    id: str
    created_at: str
    completed_at: str
    first_lsn: int
    last_lsn: int
    last_hash: str
    records: int
    first_at: int  # unix µs, recorded time of first_lsn
    last_at: int  # unix µs, recorded time of last_lsn
    index_lsn: int
    index_digest: str
    snapshot_lsn: int  # the index snapshot's own applied LSN before catching up
    segments: list[dict[str, Any]]  # {"name", "first_lsn", "last_lsn"}, ascending
    files: list[FileEntry]
    size: int
    duration_seconds: float
    source: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT
    kind: str = "stemedb-backup"

    @property
    def prefix(self) -> str:
        return f"{BACKUPS}{self.id}/"

    @property
    def first_time(self) -> str | None:
        return us_to_time(self.first_at)

    @property
    def last_time(self) -> str | None:
        return us_to_time(self.last_at)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_time"], d["last_time"] = self.first_time, self.last_time
        return d

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        d = orjson.loads(data)
        if d.get("kind") != "stemedb-backup" or d.get("format") != FORMAT:
            raise OpsError("not a StemeDB backup manifest (or an unknown format)")
        d.pop("first_time", None)
        d.pop("last_time", None)
        d["files"] = [FileEntry(**f) for f in d["files"]]
        return cls(**d)


def index_schema(m: Manifest) -> int:
    """The index schema the backup's snapshot and digest were made with (1 for backups
    from before manifests recorded it)."""
    return int(m.source.get("index_schema", 1))


@dataclass
class BackupInfo:
    """One backup in a target listing; ``manifest`` is None for an incomplete one."""

    id: str
    manifest: Manifest | None
    size: int
    objects: int

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        out: dict[str, Any] = {
            "id": self.id,
            "complete": self.complete,
            "size": self.size,
            "objects": self.objects,
        }
        if m is not None:
            out.update(
                created_at=m.created_at,
                first_lsn=m.first_lsn,
                last_lsn=m.last_lsn,
                records=m.records,
                first_time=m.first_time,
                last_time=m.last_time,
                size=m.size,
                index_digest=m.index_digest,
            )
        return out


def list_backups(target: Target) -> list[BackupInfo]:
    """Every backup under ``backups/``, oldest first (ids sort by creation time)."""
    groups: dict[str, list[Any]] = {}
    for obj in target.list(BACKUPS):
        parts = obj.key[len(BACKUPS) :].split("/", 1)
        if len(parts) == 2:
            groups.setdefault(parts[0], []).append(obj)
    out = []
    for bid in sorted(groups):
        objs = groups[bid]
        manifest = None
        if any(o.key == f"{BACKUPS}{bid}/{MANIFEST}" for o in objs):
            try:
                manifest = load_manifest(target, bid)
            except OpsError as e:
                log.warning("backup %s: unreadable manifest: %s", bid, e.detail)
        out.append(BackupInfo(bid, manifest, sum(o.size for o in objs), len(objs)))
    return out


def load_manifest(target: Target, backup_id: str) -> Manifest:
    try:
        raw = target.get_bytes(f"{BACKUPS}{backup_id}/{MANIFEST}")
    except MissingObject:
        raise OpsError(
            f"backup {backup_id} at {target.url} has no {MANIFEST}: it does not "
            "exist or is incomplete",
            hint="`stemedb backup list --from TARGET` shows the backups",
        ) from None
    try:
        return Manifest.from_json(raw)
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as e:
        raise OpsError(
            f"{target.describe(f'{BACKUPS}{backup_id}/{MANIFEST}')}: unreadable manifest ({e})"
        ) from None


def complete_backups(target: Target) -> list[Manifest]:
    return [b.manifest for b in list_backups(target) if b.manifest is not None]


# -- create ----------------------------------------------------------------------------


def new_backup_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


@dataclass
class _Seen:
    """What the check of the copied journal saw."""

    count: int = 0
    first_lsn: int = 0
    first_at: int = 0
    last: Record | None = None


def create_backup(
    data_dir: Path,
    target: Target,
    *,
    progress: Progress | None = None,
    scratch_dir: Path | None = None,
) -> Manifest:
    """Backs up ``data_dir`` (live or stopped) to ``target``; returns the manifest."""
    started = time.perf_counter()
    created = datetime.now(UTC)
    data_dir = Path(data_dir)
    journal_dir = data_dir / JOURNAL_DIR
    if not journal_dir.is_dir():
        raise OpsError(
            f"no journal at {journal_dir}",
            hint="pass the server's data directory with --data-dir or --config",
        )
    bid = new_backup_id(created)
    while target.head(f"{BACKUPS}{bid}/{MANIFEST}") is not None:
        created = datetime.now(UTC)
        bid = new_backup_id(created)
    prefix = f"{BACKUPS}{bid}/"
    in_place = isinstance(target, LocalTarget)
    if isinstance(target, LocalTarget):
        stage = target.path(prefix.rstrip("/"))
        stage.mkdir(parents=True, exist_ok=False)
    else:
        stage = Path(tempfile.mkdtemp(prefix="stemedb-backup-", dir=scratch_dir))
    uploaded: list[str] = []
    try:
        manifest = _build(data_dir, stage, bid, created, progress)
        uploading = Meter(None if in_place else progress, "uploading backup", manifest.size or 1)
        for f in manifest.files:
            path = stage / f.path
            if in_place:
                fsync_path(path)
            else:
                target.put_file(prefix + f.path, path, f.sha256, uploading.advance)
                uploaded.append(prefix + f.path)
        if in_place:
            fsync_path(stage / JOURNAL_DIR)
            fsync_path(stage)
        manifest.completed_at = now_time()
        manifest.duration_seconds = round(time.perf_counter() - started, 3)
        target.put_bytes(prefix + MANIFEST, manifest.to_json())  # last: the backup exists
    except BaseException:
        if in_place:
            remove_tree(stage)
        else:
            for key in uploaded:
                with contextlib.suppress(Exception):  # without a manifest they are ignored
                    target.delete(key)
        raise
    finally:
        if not in_place:
            remove_tree(stage)
    log.info(
        "backup %s: LSN %d..%d, %d bytes, %.2f s",
        bid,
        manifest.first_lsn,
        manifest.last_lsn,
        manifest.size,
        manifest.duration_seconds,
    )
    return manifest


def _build(
    data_dir: Path, stage: Path, bid: str, created: datetime, progress: Progress | None
) -> Manifest:
    """Snapshot, cut, copy, check, catch up: fills ``stage``; returns the manifest
    (without completed_at)."""
    journal_dir = data_dir / JOURNAL_DIR
    index_path = data_dir / INDEX_FILE
    live = is_live(data_dir)
    stage_journal = stage / JOURNAL_DIR
    stage_journal.mkdir(parents=True, exist_ok=True)
    snap = stage / INDEX_FILE
    snap_lsn, snap_hash = snapshot_index(index_path, snap)
    cut: int | None = None
    if live:
        applied = read_applied(index_path)
        if applied is None or applied[0] == 0:
            raise OpsError(
                f"the server owning {data_dir} has no readable index yet",
                hint="wait until /readyz answers 200, then retry",
            )
        cut = applied[0]
        if cut < snap_lsn:
            raise OpsError("the index went backwards during the backup; retry")
    firsts = [f for f in segment_files(journal_dir) if cut is None or f <= cut]
    if not firsts:
        raise OpsError(f"nothing to back up: the journal in {journal_dir} holds no records")
    total = sum((journal_dir / segment_name(f)).stat().st_size for f in firsts)
    seen = _Seen()
    copying = Meter(progress, "copying journal", total or 1)
    for first in firsts:
        name = segment_name(first)
        _copy(journal_dir / name, stage_journal / name, copying.advance)
    checking = Meter(progress, "checking journal + catching up index", total or 1)
    store = IndexStore(snap)
    try:
        snap_lsn, snap_hash = store.applied()
        try:
            store.rebuild_from(
                _entries(stage_journal, cut, live, snap_lsn, snap_hash, seen, checking.update)
            )
        except _SnapshotMismatch:
            log.warning("the index snapshot does not match the journal; rebuilding it")
            store.close()
            remove_index_files(snap)
            store = IndexStore(snap)
            seen = _Seen()
            store.rebuild_from(_entries(stage_journal, cut, live, 0, b"", seen, checking.update))
        last = seen.last
        if last is None:
            raise OpsError(f"nothing to back up: the journal in {journal_dir} holds no records")
        if store.applied() != (last.lsn, last.hash):
            raise OpsError("the index snapshot did not catch up to the cut; retry")
        Meter(progress, "index digest", None)
        digest = store.digest()
    finally:
        store.close()
    self_contained(snap)
    trim_after(stage_journal, last)
    segments = _segments(stage_journal, last.lsn)
    files = []
    for path in [*(stage_journal / s["name"] for s in segments), snap]:
        sha, size = sha256_file(path)
        files.append(FileEntry(path.relative_to(stage).as_posix(), size, sha))
    return Manifest(
        id=bid,
        created_at=created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        completed_at="",
        first_lsn=seen.first_lsn,
        last_lsn=last.lsn,
        last_hash=last.hash.hex(),
        records=seen.count,
        first_at=seen.first_at,
        last_at=record_at(last.payload),
        index_lsn=last.lsn,
        index_digest=digest,
        snapshot_lsn=snap_lsn,
        segments=segments,
        files=files,
        size=sum(f.size for f in files),
        duration_seconds=0.0,
        source={
            "data_dir": str(data_dir.absolute()),
            "host": socket.gethostname(),
            "live": live,
            "stemedb_version": __version__,
            "index_schema": SCHEMA_VERSION,
        },
    )


class _SnapshotMismatch(Exception):
    pass


def _entries(
    journal_dir: Path,
    cut: int | None,
    live: bool,
    snap_lsn: int,
    snap_hash: bytes,
    seen: _Seen,
    tick: Callable[[int], None],
) -> Iterator[Entry]:
    """Checks the copied journal (every checksum and chain link) up to the cut, noting
    what it sees; yields the records after the snapshot's LSN for the index."""
    try:
        for r in scan(journal_dir, to_lsn=cut, progress=tick):
            if seen.count == 0:
                seen.first_lsn, seen.first_at = r.lsn, record_at(r.payload)
            seen.count += 1
            seen.last = r
            if r.lsn == snap_lsn and r.hash != snap_hash:
                raise _SnapshotMismatch
            if r.lsn > snap_lsn:
                yield Entry(r.lsn, r.hash, records.decode(r.payload), pos=r.offset)
    except JournalCorrupt as e:
        last_name = segment_name(segment_files(journal_dir)[-1])
        if live or Path(e.file).name != last_name:
            raise OpsError(
                f"the journal is damaged: {e.detail}",
                hint="run `stemedb verify`; see docs/runbooks/server-wont-start.md",
            ) from None
        # A stopped server's last segment may end in a torn tail (cut at its next start).
        log.warning(
            "backing up a stopped server's journal up to its last valid record: %s", e.detail
        )
    if seen.last is not None and seen.last.lsn < snap_lsn:
        raise _SnapshotMismatch


def _copy(src: Path, dest: Path, tick: Callable[[int], None]) -> None:
    with open(src, "rb") as f, open(dest, "wb") as out:
        while chunk := f.read(1 << 20):
            out.write(chunk)
            tick(len(chunk))


def trim_after(journal_dir: Path, last: Record) -> None:
    """Cuts the segment holding ``last`` right after its frame; removes later ones."""
    end = last.offset + FRAME_HEADER_SIZE + len(last.payload)
    os.truncate(journal_dir / last.segment, end)
    last_first = int(last.segment[:20])
    for first in segment_files(journal_dir):
        if first > last_first:
            (journal_dir / segment_name(first)).unlink()


def _segments(journal_dir: Path, last_lsn: int) -> list[dict[str, Any]]:
    firsts = segment_files(journal_dir)
    out = []
    for i, first in enumerate(firsts):
        last = firsts[i + 1] - 1 if i + 1 < len(firsts) else last_lsn
        out.append({"name": segment_name(first), "first_lsn": first, "last_lsn": last})
    return out
