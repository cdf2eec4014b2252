"""Metrics for node_exporter's textfile collector, written atomically (tmp + rename).

Each job writes one file (``stemedb_backup.prom``, ``stemedb_wal_archive.prom``,
``stemedb_dr_drill.prom``) from its own CollectorRegistry with prometheus_client's
``write_to_textfile``. A failed run keeps the previous ``*_last_success_*`` values (read
back from the file) and sets ``*_last_run_success`` to 0, so an alert on the age of the
last success keeps firing until a run succeeds.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

BACKUP_FILE = "stemedb_backup.prom"
ARCHIVE_FILE = "stemedb_wal_archive.prom"
DRILL_FILE = "stemedb_dr_drill.prom"

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


def _previous(path: Path) -> dict[str, float]:
    try:
        text = path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
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
    directory.mkdir(parents=True, exist_ok=True)
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
    write_to_textfile(str(path), registry)
    return path


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
