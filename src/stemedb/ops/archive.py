"""``stemedb wal archive``: ships sealed journal segments to ``<target>/wal/<segment>``.

A segment is *sealed* once a later segment holds a durable record: the writer never
touches it again (before that, a crash while the next segment's header is written could
make it the active segment again). Each sealed segment is checked (every checksum, the
chain, and the link to the previously archived segment), uploaded atomically, and
verified in the target. ``wal/archive-state.json`` records what is archived — size,
SHA-256, LSN range, last chain hash, recorded-time range — and is what counts: an
object not in it (an upload cut short) is overwritten by the next run, or adopted when
its recorded digest matches. Re-running is idempotent; local segments are never deleted.

If a local segment differs from the archived one of the same name, the data directory's
history has diverged from the archive (it was restored to an earlier point): archiving
stops and says so; archive a restored directory to a new prefix.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..datadir import JOURNAL_DIR, durable_lsn, segment_files
from ..errors import JournalError, MissingObject, OpsError
from ..journal import (
    FRAME_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    chain_hash,
    decode_record,
    scan,
    segment_name,
)
from ..journal import Frame as _Frame
from .backup import now_time, record_at, us_to_time
from .files import sha256_file
from .progress import Meter, Progress
from .targets import LocalTarget, ObjectInfo, Target, open_target

log = logging.getLogger("stemedb.ops")

WAL = "wal/"
STATE_KEY = WAL + "archive-state.json"
STATE_FORMAT = 1
SAVE_EVERY_S = 30.0
STALE_UPLOAD_S = 3600.0


@dataclass
class ArchivedSegment:
    name: str
    first_lsn: int
    last_lsn: int
    size: int
    sha256: str
    last_hash: str
    first_at: int  # unix µs
    last_at: int
    archived_at: str
    source: dict[str, int] = field(default_factory=dict)  # local stat, for a quick check


@dataclass
class ArchiveState:
    segments: dict[str, ArchivedSegment] = field(default_factory=dict)
    updated_at: str = ""

    def ordered(self) -> list[ArchivedSegment]:
        return sorted(self.segments.values(), key=lambda s: s.first_lsn)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": STATE_FORMAT,
                "updated_at": self.updated_at,
                "segments": [asdict(s) for s in self.ordered()],
            },
            option=orjson.OPT_INDENT_2,
        )


def load_state(target: Target) -> ArchiveState:
    try:
        raw = target.get_bytes(STATE_KEY)
    except MissingObject:
        return ArchiveState()
    try:
        d = orjson.loads(raw)
        segs = [ArchivedSegment(**s) for s in d["segments"]]
    except (orjson.JSONDecodeError, TypeError, KeyError) as e:
        raise OpsError(
            f"{target.describe(STATE_KEY)} is unreadable ({e})",
            hint="move it aside; the next `stemedb wal archive` run rebuilds it "
            "from the local journal and the archived objects",
        ) from None
    return ArchiveState({s.name: s for s in segs}, d.get("updated_at", ""))


def save_state(target: Target, state: ArchiveState) -> None:
    state.updated_at = now_time()
    target.put_bytes(STATE_KEY, state.to_json())


def wal_objects(target: Target) -> dict[str, ObjectInfo]:
    """Archived segment objects by segment name (the state file excluded)."""
    out = {}
    for obj in target.list(WAL):
        name = obj.key[len(WAL) :]
        if "/" not in name and name.endswith(".wal") and len(name) == 24 and name[:20].isdigit():
            out[name] = obj
    return out


# -- the local journal -----------------------------------------------------------------


def sealed_segments(data_dir: Path) -> tuple[list[int], list[int], int]:
    """(all segment first LSNs, the sealed ones, the durable LSN)."""
    firsts = segment_files(Path(data_dir) / JOURNAL_DIR)
    durable = durable_lsn(Path(data_dir))
    sealed = [f for i, f in enumerate(firsts[:-1]) if firsts[i + 1] <= durable]
    return firsts, sealed, durable


def first_record_at(path: Path) -> int | None:
    """Recorded time of a segment's first record (read from its first frame), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(SEGMENT_HEADER_SIZE + FRAME_HEADER_SIZE)
            if len(head) < SEGMENT_HEADER_SIZE + FRAME_HEADER_SIZE:
                return None
            length = int.from_bytes(head[SEGMENT_HEADER_SIZE : SEGMENT_HEADER_SIZE + 4], "little")
            data = head + f.read(length)
    except FileNotFoundError:
        return None
    frame = decode_record(data, SEGMENT_HEADER_SIZE)
    if not isinstance(frame, _Frame):
        return None
    try:
        return record_at(frame.payload)
    except ValueError:
        return None


def describe_segment(
    journal_dir: Path, first: int, last: int, prev_hash: bytes | None
) -> dict[str, Any]:
    """Checks a sealed segment (header, every checksum and chain link, that it ends on
    its last frame, and its link to ``prev_hash`` when known); returns its LSN range,
    last hash and recorded-time range."""
    name = segment_name(first)
    path = journal_dir / name
    size = path.stat().st_size
    count = 0
    first_at = last_at = 0
    end = SEGMENT_HEADER_SIZE
    last_hash = b""
    try:
        for r in scan(journal_dir, from_lsn=first, to_lsn=last):
            if count == 0:
                first_at = record_at(r.payload)
                if prev_hash is not None and chain_hash(prev_hash, r.lsn, r.payload) != r.hash:
                    raise OpsError(
                        f"{path}: its first record does not link to the last "
                        "archived record (broken hash chain)"
                    )
            count += 1
            last_at, last_hash = record_at(r.payload), r.hash
            end = r.offset + FRAME_HEADER_SIZE + len(r.payload)
    except JournalError as e:
        raise OpsError(
            f"not archiving {name}: {e.detail}",
            hint="run `stemedb verify`; see docs/runbooks/server-wont-start.md",
        ) from None
    if count != last - first + 1 or end != size:
        raise OpsError(
            f"not archiving {name}: it should hold LSN {first}..{last} and end "
            f"there, but holds {count} records ending at byte {end} of {size}"
        )
    return {
        "first_lsn": first,
        "last_lsn": last,
        "size": size,
        "last_hash": last_hash.hex(),
        "first_at": first_at,
        "last_at": last_at,
    }


def _stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "dev": st.st_dev}


# -- archiving -------------------------------------------------------------------------


@dataclass
class ArchiveReport:
    target: str
    archived: list[str] = field(default_factory=list)  # uploaded this run
    adopted: list[str] = field(default_factory=list)  # already in the target, now recorded
    skipped: int = 0  # already archived
    bytes: int = 0
    seconds: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "archived": self.archived,
            "adopted": self.adopted,
            "skipped": self.skipped,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "status": self.status,
        }


def archive_once(
    data_dir: Path, target: Target, *, progress: Progress | None = None
) -> ArchiveReport:
    """Archives every sealed segment not yet archived; returns what it did."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    journal_dir = data_dir / JOURNAL_DIR
    if not journal_dir.is_dir():
        raise OpsError(
            f"no journal at {journal_dir}",
            hint="pass the server's data directory with --data-dir or --config",
        )
    report = ArchiveReport(target.url)
    firsts, sealed, _ = sealed_segments(data_dir)
    state = load_state(target)
    objects = wal_objects(target)
    try:
        if target.cleanup_partial(WAL, STALE_UPLOAD_S):
            log.info("removed leftovers of interrupted uploads under %s", target.describe(WAL))
    except OpsError as e:
        log.warning("could not clean up interrupted uploads: %s", e.detail)
    todo = []
    dirty = False
    for i, first in enumerate(sealed):
        name = segment_name(first)
        path = journal_dir / name
        entry = state.segments.get(name)
        obj = objects.get(name)
        if entry is not None:
            local = _stat(path)
            if entry.source == local and obj is not None and obj.size == entry.size:
                report.skipped += 1
                continue
            sha, _ = sha256_file(path)
            if sha != entry.sha256:
                raise OpsError(
                    f"local segment {name} differs from the archived one "
                    f"({target.describe(WAL + name)}): this data directory's history has "
                    "diverged from the archive (was it restored to an earlier point?)",
                    hint="archive this data directory to a new prefix and take a new backup "
                    "there; keep the old prefix for restores of the old history",
                )
            if obj is not None and obj.size == entry.size:
                entry.source = local  # same bytes (e.g. copied back): just refresh the stat
                report.skipped += 1
                dirty = True
                continue
            log.warning(
                "%s is recorded as archived but missing or of the wrong size in the "
                "target; uploading it again",
                name,
            )
        todo.append((i, first))
    total = sum((journal_dir / segment_name(f)).stat().st_size for _, f in todo)
    last_save = time.monotonic()
    archiving = Meter(progress, "archiving WAL", total or 1)
    for i, first in todo:
        name = segment_name(first)
        path = journal_dir / name
        last = firsts[firsts.index(first) + 1] - 1
        prev = state.segments.get(segment_name(sealed[i - 1])) if i > 0 else None
        meta = describe_segment(
            journal_dir, first, last, bytes.fromhex(prev.last_hash) if prev else None
        )
        local = _stat(path)
        sha, size = sha256_file(path)
        if local["size"] != size or _stat(path) != local:
            raise OpsError(f"{path} changed while being archived; is it really sealed?")
        obj = objects.get(name)
        if obj is not None and obj.size == size and _stored_sha(target, name) == sha:
            report.adopted.append(name)
            archiving.advance(size)
        else:
            target.put_file(WAL + name, path, sha, archiving.advance)
            report.archived.append(name)
            report.bytes += size
        state.segments[name] = ArchivedSegment(
            name=name, sha256=sha, archived_at=now_time(), source=local, **meta
        )
        dirty = True
        if time.monotonic() - last_save >= SAVE_EVERY_S:
            save_state(target, state)
            last_save, dirty = time.monotonic(), False
    if dirty or not state.updated_at:
        save_state(target, state)
    report.seconds = round(time.perf_counter() - started, 3)
    report.status = _status(data_dir, target, state)
    if report.archived or report.adopted:
        log.info(
            "archived %d segments (%d bytes) to %s in %.2f s",
            len(report.archived) + len(report.adopted),
            report.bytes,
            target.url,
            report.seconds,
        )
    return report


def _stored_sha(target: Target, name: str) -> str | None:
    """The digest of an archived object: its recorded one (S3 metadata), else (a
    directory) computed from its bytes."""
    if isinstance(target, LocalTarget):
        try:
            return sha256_file(target.path(WAL + name))[0]
        except FileNotFoundError:
            return None
    info = target.head(WAL + name)
    return None if info is None else info.sha256


def archive_watch(
    data_dir: Path,
    target: Target,
    interval: float,
    on_round: Callable[[ArchiveReport | None, Exception | None], None],
    stop: threading.Event,
    before_round: Callable[[], object] | None = None,
) -> None:
    """Archives every ``interval`` seconds until ``stop`` is set. A failed round is
    reported to ``on_round`` and retried at the next one. ``before_round`` runs first in
    each round (cluster mode: bring the journal's local mirror up to date)."""
    while not stop.is_set():
        try:
            if before_round is not None:
                before_round()
            on_round(archive_once(data_dir, target), None)
        except Exception as e:  # one bad round (network, target) must not end the watch
            log.error("WAL archive round failed: %s", getattr(e, "detail", e))
            on_round(None, e)
        stop.wait(interval)


# -- status ----------------------------------------------------------------------------


def archive_status(
    data_dir: str | Path, target: str | Target, endpoint_url: str | None = None
) -> dict[str, Any]:
    """How far the archive of ``target`` is behind the journal in ``data_dir``.

    ``lag_segments``: sealed segments not yet archived. ``lag_seconds``: how long the
    oldest of them has been sealed (0 when none). ``rpo_seconds``: now minus the recorded
    time of the last archived record (what a restore from the archive alone would lose
    if the data directory were gone now; the active segment is never archived).
    """
    t = open_target(target, endpoint_url) if isinstance(target, str) else target
    return _status(Path(data_dir), t, load_state(t))


async def watch_archive(data_dir: Path, target: str, endpoint_url: str | None,
                        every_seconds: float, report: Callable[[float, int], None]) -> None:
    """Check the archive lag of ``target`` every ``every_seconds`` (off the event loop)
    and ``report(lag_seconds, lag_segments)``, for as long as the server runs. An
    unreachable target is logged and tried again; it never stops the server."""
    while True:
        try:
            status = await asyncio.to_thread(archive_status, data_dir, target, endpoint_url)
            report(float(status["lag_seconds"]), int(status["lag_segments"]))
        except Exception as e:
            log.warning("archive lag check failed: %s", type(e).__name__)
        await asyncio.sleep(every_seconds)


def _status(data_dir: Path, target: Target, state: ArchiveState) -> dict[str, Any]:
    journal_dir = data_dir / JOURNAL_DIR
    firsts, sealed, durable = sealed_segments(data_dir)
    pending = [f for f in sealed if segment_name(f) not in state.segments]
    now = time.time()
    lag_seconds = 0.0
    if pending:
        nxt = firsts[firsts.index(pending[0]) + 1]
        sealed_at = first_record_at(journal_dir / segment_name(nxt))
        if sealed_at is not None:
            lag_seconds = max(0.0, now - sealed_at / 1e6)
    ordered = state.ordered()
    last = ordered[-1] if ordered else None
    return {
        "target": target.url,
        "durable_lsn": durable,
        "segments": len(firsts),
        "sealed_segments": len(sealed),
        "archived_segments": len(state.segments),
        "lag_segments": len(pending),
        "lag_seconds": round(lag_seconds, 3),
        "last_archived_segment": last.name if last else None,
        "last_archived_lsn": last.last_lsn if last else 0,
        "last_archived_time": us_to_time(last.last_at) if last else None,
        "rpo_seconds": round(max(0.0, now - last.last_at / 1e6), 3) if last else None,
        "state_updated_at": state.updated_at or None,
    }


# -- verification ----------------------------------------------------------------------


@dataclass
class ArchiveCheck:
    segments: int = 0
    bytes: int = 0
    first_lsn: int = 0
    last_lsn: int = 0
    faults: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify_archive(
    target: Target, scratch: Path, *, progress: Progress | None = None
) -> ArchiveCheck:
    """Downloads every archived segment and checks it against the state (size,
    SHA-256), its records (checksums, chain, LSN range) and its link to the segment
    before it; names every missing, damaged or out-of-place segment."""
    check = ArchiveCheck()
    state = load_state(target)
    objects = wal_objects(target)
    for name in sorted(set(objects) - set(state.segments)):
        check.notes.append(
            f"{target.describe(WAL + name)} is not recorded as archived "
            "(an interrupted run?); the next `stemedb wal archive` settles it"
        )
    ordered = state.ordered()
    if not ordered:
        return check
    check.first_lsn = ordered[0].first_lsn
    journal_dir = scratch / "wal-check"
    journal_dir.mkdir(parents=True, exist_ok=True)
    prev: ArchivedSegment | None = None
    total = sum(s.size for s in ordered)
    verifying = Meter(progress, "verifying WAL archive", total or 1)
    for seg in ordered:
        where = target.describe(WAL + seg.name)
        if prev is not None and seg.first_lsn != prev.last_lsn + 1:
            missing = segment_name(prev.last_lsn + 1)
            check.faults.append(
                f"{target.describe(WAL + missing)}: missing (gap in the "
                f"WAL archive between {prev.name} and {seg.name})"
            )
            prev = None
        obj = objects.get(seg.name)
        if obj is None:
            check.faults.append(f"{where}: missing")
            prev = None
            continue
        dest = journal_dir / seg.name
        sha, size = target.download(WAL + seg.name, dest, verifying.advance)
        try:
            if size != seg.size:
                check.faults.append(
                    f"{where}: {size} bytes, expected {seg.size} (truncated or replaced)"
                )
                prev = None
                continue
            if sha != seg.sha256:
                check.faults.append(f"{where}: SHA-256 mismatch (corrupt)")
                prev = None
                continue
            try:
                meta = describe_segment(
                    journal_dir,
                    seg.first_lsn,
                    seg.last_lsn,
                    bytes.fromhex(prev.last_hash) if prev else None,
                )
            except OpsError as e:
                check.faults.append(f"{where}: {e.detail}")
                prev = None
                continue
            if meta["last_hash"] != seg.last_hash:
                check.faults.append(f"{where}: last record hash differs from the state")
            check.segments += 1
            check.bytes += size
            check.last_lsn = seg.last_lsn
            prev = seg
        finally:
            dest.unlink(missing_ok=True)
    return check
