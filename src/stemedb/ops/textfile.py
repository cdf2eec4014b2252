"""Metrics for node_exporter's textfile collector, written atomically (tmp + rename).

Each job writes one file (``stemedb_backup.prom``, ``stemedb_wal_archive.prom``,
``stemedb_dr_drill.prom``, ``stemedb_verify.prom``) from its own CollectorRegistry with
prometheus_client's ``write_to_textfile``. A failed run keeps the previous
``*_last_success_*`` values (read back from the file) and sets ``*_last_run_success`` to
0, so an alert on the age of the last success keeps firing until a run succeeds.

A file that cannot be written (on a stock Debian host the collector's directory belongs
to root) raises :class:`~stemedb.errors.OpsError` with a hint, never a bare ``OSError``:
the job's own work is done by then, and the caller decides that it only warns.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from ..errors import OpsError

BACKUP_FILE = "stemedb_backup.prom"
ARCHIVE_FILE = "stemedb_wal_archive.prom"
DRILL_FILE = "stemedb_dr_drill.prom"
VERIFY_FILE = "stemedb_verify.prom"

_BACKUP = {
    "stemedb_backup_last_success_timestamp_seconds": "Unix time the last successful backup "
    "finished.",
    "stemedb_backup_last_duration_seconds": "Duration of the last successful backup.",
    "stemedb_backup_last_size_bytes": "Size of the last successful backup.",
    "stemedb_backup_last_lsn": "Last LSN in the last successful backup.",
    "stemedb_backup_last_run_timestamp_seconds": "Unix time the last backup run ended.",
    "stemedb_backup_last_run_success": "1 if the last backup run succeeded, else 0.",
}
_ARCHIVE = {
    "stemedb_wal_archive_last_success_timestamp_seconds": "Unix time of the last successful "
    "WAL archive run.",
    "stemedb_wal_archive_lag_seconds": "How long the oldest sealed, unarchived segment has "
    "been waiting (0 when none).",
    "stemedb_wal_archive_lag_segments": "Sealed journal segments not yet archived.",
    "stemedb_wal_archive_last_archived_lsn": "Last LSN held by the WAL archive.",
    "stemedb_wal_archive_last_run_timestamp_seconds": "Unix time the last archive run ended.",
    "stemedb_wal_archive_last_run_success": "1 if the last archive run succeeded, else 0.",
}
_DRILL = {
    "stemedb_dr_drill_last_success_timestamp_seconds": "Unix time of the last passing DR drill.",
    "stemedb_dr_drill_rto_seconds": "Restore time objective measured by the last drill.",
    "stemedb_dr_drill_rpo_seconds": "Recovery point objective measured by the last drill.",
    "stemedb_dr_drill_last_run_timestamp_seconds": "Unix time the last drill ended.",
    "stemedb_dr_drill_last_run_success": "1 if the last drill passed, else 0.",
}
_VERIFY = {
    "stemedb_verify_last_success_timestamp_seconds": "Unix time of the last verify run that "
    "found no fault.",
    "stemedb_verify_last_duration_seconds": "Duration of the last clean verify run.",
    "stemedb_verify_last_lsn": "Last LSN checked by the last clean verify run.",
    "stemedb_verify_last_run_timestamp_seconds": "Unix time the last verify run ended.",
    "stemedb_verify_last_run_success": "1 if the last verify run found no fault, else 0.",
}


def _previous(path: Path) -> dict[str, float]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return {}  # unreadable: the write below says why, if it fails too
    out = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[sample.name] = float(sample.value)
    except ValueError:
        return {}
    return out


def _write(
    directory: Path,
    filename: str,
    docs: dict[str, str],
    values: dict[str, float | None],
    success: bool,
    prefix: str,
) -> Path:
    """Writes every metric of ``docs``: the given values, else the previous file's."""
    path = directory / filename
    previous = _previous(path)
    now = time.time()
    values = {
        **values,
        f"{prefix}_last_run_timestamp_seconds": now,
        f"{prefix}_last_run_success": 1.0 if success else 0.0,
    }
    if success:
        values[f"{prefix}_last_success_timestamp_seconds"] = now
    registry = CollectorRegistry()
    for name, doc in docs.items():
        value = values.get(name)
        if value is None:
            value = previous.get(name)
        if value is None:
            continue
        Gauge(name, doc, registry=registry).set(value)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)
    except OSError as e:
        raise unwritable(directory, path, e) from None
    return path


def unwritable(directory: Path, path: Path, e: OSError) -> OpsError:
    """Why ``path`` could not be written, and what the operator does about it."""
    reason = e.strerror or str(e)
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = (f"the job's result is not affected; let the job's user write {directory}, "
                f"e.g. `install -d -o stemedb -g stemedb {directory}` and point "
                "node_exporter's --collector.textfile.directory at it "
                "(docs/operations/backup-dr.md#metrics)")
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = (f"the job's result is not affected; {directory} or one of its parents is "
                "not a directory: give --textfile-dir the collector's directory")
    else:
        hint = "the job's result is not affected; see docs/operations/backup-dr.md#metrics"
    return OpsError(f"cannot write textfile metrics {path}: {reason}", hint=hint)


def write_backup_metrics(
    directory: Path,
    *,
    success: bool,
    duration_s: float | None = None,
    size_bytes: int | None = None,
    lsn: int | None = None,
) -> Path:
    values: dict[str, float | None] = {}
    if success:
        values = {
            "stemedb_backup_last_duration_seconds": duration_s,
            "stemedb_backup_last_size_bytes": size_bytes,
            "stemedb_backup_last_lsn": lsn,
        }
    return _write(directory, BACKUP_FILE, _BACKUP, values, success, "stemedb_backup")


def write_archive_metrics(
    directory: Path,
    *,
    success: bool,
    lag_seconds: float | None = None,
    lag_segments: int | None = None,
    last_archived_lsn: int | None = None,
) -> Path:
    values: dict[str, float | None] = {
        "stemedb_wal_archive_lag_seconds": lag_seconds,
        "stemedb_wal_archive_lag_segments": lag_segments,
        "stemedb_wal_archive_last_archived_lsn": last_archived_lsn,
    }
    return _write(directory, ARCHIVE_FILE, _ARCHIVE, values, success, "stemedb_wal_archive")


def write_drill_metrics(
    directory: Path, *, success: bool, rto_s: float | None = None, rpo_s: float | None = None
) -> Path:
    values: dict[str, float | None] = {
        "stemedb_dr_drill_rto_seconds": rto_s,
        "stemedb_dr_drill_rpo_seconds": rpo_s,
    }
    return _write(directory, DRILL_FILE, _DRILL, values, success, "stemedb_dr_drill")


def write_verify_metrics(
    directory: Path,
    *,
    success: bool,
    duration_s: float | None = None,
    lsn: int | None = None,
) -> Path:
    values: dict[str, float | None] = {}
    if success:
        values = {
            "stemedb_verify_last_duration_seconds": duration_s,
            "stemedb_verify_last_lsn": lsn,
        }
    return _write(directory, VERIFY_FILE, _VERIFY, values, success, "stemedb_verify")
