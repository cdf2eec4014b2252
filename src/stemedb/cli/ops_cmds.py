"""``stemedb backup | wal | restore | dr-drill``: backups, WAL archival, PITR, DR drills.

Targets are a directory or ``s3://bucket/prefix``: ``--to``/``--from``, else ``[backup]
target`` from the settings (config file or ``STEMEDB_BACKUP_TARGET``). S3 credentials
come from the usual AWS configuration, the endpoint from ``--s3-endpoint-url`` or
``[backup] s3_endpoint_url`` (``STEMEDB_S3_ENDPOINT_URL``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.table import Table

from ..errors import StemeError
from ..settings import Settings
from .config import config_option, load, require
from .output import (
    exit_with,
    fail_on,
    json_flag,
    print_json,
    progress_bars,
    report_console,
    show_progress,
    warn,
)

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, soft_wrap=True)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _settings(config: str | None, as_json: bool, *, target: tuple[str, str | None],
              endpoint: str | None, data_dir: str | None = None,
              database_url: str | None = None) -> Settings:
    """The command's settings: ``target`` is the flag giving ``[backup] target`` and its
    value; the other flags override their settings when given."""
    return load(config, {"backup.target": target,
                         "backup.s3_endpoint_url": ("--s3-endpoint-url", endpoint),
                         "server.data_dir": ("--data-dir", data_dir),
                         "storage.database_url": ("--database-url", database_url)},
                as_json=as_json)


def _data_dir(settings: Settings, as_json: bool) -> Path:
    """The data directory to work on. In cluster mode (``--database-url``, or
    ``[storage] database_url``) it is the local mirror of the database's journal, brought
    up to date first (``ops/mirror.py``)."""
    url = settings.storage.database_url
    if url:
        from ..ops.mirror import mirror_journal

        try:
            with progress_bars(show_progress(as_json)) as progress:
                mirror_journal(url, settings.data_dir, progress)
        except StemeError as e:
            fail_on(e, as_json=as_json)
    return Path(settings.data_dir)


def _target(settings: Settings, flag: str, as_json: bool) -> Any:
    """The target named by the flag, else by ``[backup] target``; opened."""
    from ..ops.targets import open_target

    url = require(settings, "backup.target", flag, as_json=as_json)
    try:
        return open_target(url, settings.backup.s3_endpoint_url or None)
    except StemeError as e:
        fail_on(e, as_json=as_json)


def _metrics(write: Callable[..., Any], directory: str | None, **values: Any) -> None:
    """Metrics for node_exporter, when asked for; failing to write them only warns: the
    job's own result decides its exit code."""
    if not directory:
        return
    try:
        write(Path(directory), **values)
    except StemeError as e:
        warn(e)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _parse_time(value: str) -> int:
    """An RFC 3339 time to unix microseconds, exactly."""
    from ..model import parse_time

    try:
        dt = parse_time(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return (dt - _EPOCH) // timedelta(microseconds=1)


def endpoint_option(f: F) -> F:
    return click.option(
        "--s3-endpoint-url",
        "endpoint",
        metavar="URL",
        help="S3-compatible endpoint [env STEMEDB_S3_ENDPOINT_URL, [backup] s3_endpoint_url; "
        "else AWS_ENDPOINT_URL_S3 or the AWS config].",
    )(f)


json_option = json_flag("Print the result as JSON.")


def source_options(f: F) -> F:
    f = click.option(
        "--database-url",
        metavar="URL",
        help="A cluster's PostgreSQL [env STEMEDB_DATABASE_URL]: its journal is mirrored "
        "into --data-dir first.",
    )(f)
    f = config_option(f)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        help="The server's data directory, or the journal's local mirror in cluster mode "
        "[env STEMEDB_DATA_DIR].",
    )(f)


def textfile_option(f: F) -> F:
    return click.option(
        "--textfile-dir",
        type=click.Path(file_okay=False),
        metavar="DIR",
        help="Write metrics for node_exporter's textfile collector here.",
    )(f)


def scratch_option(f: F) -> F:
    return click.option(
        "--scratch-dir",
        type=click.Path(file_okay=False),
        metavar="DIR",
        help="Where temporary files go [default: $TMPDIR].",
    )(f)


_TARGET_HELP = ("A directory or s3://bucket/prefix [env STEMEDB_BACKUP_TARGET; default "
                "[backup] target of the config file].")


# -- backup ----------------------------------------------------------------------------


@click.group()
def backup() -> None:
    """Create, list and verify backups."""


@backup.command("create")
@click.option("--to", "to", metavar="TARGET", help=_TARGET_HELP)
@source_options
@textfile_option
@scratch_option
@endpoint_option
@json_option
def backup_create(
    to: str | None,
    data_dir: str | None,
    config: str | None,
    database_url: str | None,
    textfile_dir: str | None,
    scratch_dir: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Back up a data directory (live or stopped) to TARGET."""
    from ..ops.backup import create_backup
    from ..ops.textfile import write_backup_metrics

    settings = _settings(config, as_json, target=("--to", to), endpoint=endpoint,
                         data_dir=data_dir, database_url=database_url)
    target = _target(settings, "--to TARGET", as_json)
    directory = _data_dir(settings, as_json)
    try:
        with progress_bars(show_progress(as_json)) as progress:
            m = create_backup(
                directory,
                target,
                progress=progress,
                scratch_dir=Path(scratch_dir) if scratch_dir else None,
            )
    except StemeError as e:
        _metrics(write_backup_metrics, textfile_dir, success=False)
        fail_on(e, as_json=as_json)
    _metrics(write_backup_metrics, textfile_dir, success=True, duration_s=m.duration_seconds,
             size_bytes=m.size, lsn=m.last_lsn)
    if as_json:
        print_json(m.to_dict())
        return
    report_console().print(
        f"[green]backup {m.id}[/]: LSN {m.first_lsn}..{m.last_lsn} ({m.records:,} "
        f"records, {m.first_time} .. {m.last_time}), {_size(m.size)} in "
        f"{m.duration_seconds:.2f} s",
        highlight=False,
    )
    report_console().print(
        f"  target {target.describe(m.prefix)}; index digest {m.index_digest}", highlight=False
    )


@backup.command("list")
@click.option("--from", "--to", "from_", metavar="TARGET",
              help=_TARGET_HELP + " --to is the same, as in backup create.")
@config_option
@endpoint_option
@json_option
def backup_list(from_: str | None, config: str | None, endpoint: str | None,
                as_json: bool) -> None:
    """List the backups in TARGET, oldest first."""
    from ..ops.backup import list_backups

    settings = _settings(config, as_json, target=("--from", from_), endpoint=endpoint)
    target = _target(settings, "--from TARGET", as_json)
    try:
        infos = list_backups(target)
    except StemeError as e:
        fail_on(e, as_json=as_json)
    if as_json:
        print_json([b.to_dict() for b in infos])
        return
    table = Table(title=f"backups in {target.url}")
    for col in ("id", "status", "LSN range", "records", "first recorded", "last recorded", "size"):
        table.add_column(
            col, justify="right" if col in ("records", "size") else "left", no_wrap=True
        )
    for b in infos:
        m = b.manifest
        if m is None:
            table.add_row(b.id, "[red]incomplete[/]", "", "", "", "", _size(b.size))
        else:
            table.add_row(
                b.id,
                "[green]complete[/]",
                f"{m.first_lsn}..{m.last_lsn}",
                f"{m.records:,}",
                m.first_time,
                m.last_time,
                _size(m.size),
            )
    report_console().print(table)
    if not infos:
        report_console().print("no backups yet")


@backup.command("verify")
@click.option("--from", "--to", "from_", metavar="TARGET",
              help=_TARGET_HELP + " --to is the same, as in backup create.")
@click.option("--backup", "backup_id", metavar="ID", help="Backup id [default: the latest].")
@click.option(
    "--wal/--no-wal", default=True, show_default=True, help="Also check every archived WAL segment."
)
@scratch_option
@config_option
@endpoint_option
@json_option
def backup_verify(
    from_: str | None,
    backup_id: str | None,
    wal: bool,
    scratch_dir: str | None,
    config: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Check a backup end to end: file checksums, every record, a replay into a fresh
    index compared by digest with the manifest; and the archived WAL."""
    from ..ops.restore import verify_backup

    settings = _settings(config, as_json, target=("--from", from_), endpoint=endpoint)
    target = _target(settings, "--from TARGET", as_json)
    try:
        with progress_bars(show_progress(as_json)) as progress:
            report = verify_backup(
                target,
                backup_id,
                wal=wal,
                progress=progress,
                scratch_dir=Path(scratch_dir) if scratch_dir else None,
            )
    except StemeError as e:
        fail_on(e, as_json=as_json)
    if as_json:
        print_json(report.to_dict())
    else:
        if report.ok:
            wal_part = ""
            if report.wal is not None:
                wal_part = (
                    f"; WAL archive: {report.wal.segments} segments, LSN "
                    f"{report.wal.first_lsn}..{report.wal.last_lsn}"
                )
            report_console().print(
                f"[green]OK[/]: backup {report.backup_id}: {report.files} files, "
                f"{report.records:,} records to LSN {report.last_lsn}, replayed index "
                f"digest matches the manifest{wal_part}",
                highlight=False,
            )
        else:
            report_console().print(f"[bold red]FAULTS[/] in {report.target}:", highlight=False)
            for f in report.faults:
                report_console().print(f"  - {f}", highlight=False, markup=False)
        for n in report.notes:
            report_console().print(f"  note: {n}", highlight=False, markup=False)
    exit_with(report.ok)


# -- wal -------------------------------------------------------------------------------


@click.group()
def wal() -> None:
    """Archive sealed journal segments (WAL) to a directory or S3."""


@wal.command("archive")
@click.option("--to", "to", metavar="TARGET", help=_TARGET_HELP)
@source_options
@click.option("--watch", is_flag=True, help="Keep running, archiving every --interval.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between rounds with --watch.",
)
@textfile_option
@endpoint_option
@json_option
def wal_archive(
    to: str | None,
    data_dir: str | None,
    config: str | None,
    database_url: str | None,
    watch: bool,
    interval: float,
    textfile_dir: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Ship sealed journal segments to TARGET/wal/ (idempotent; never deletes)."""
    from ..ops.archive import ArchiveReport, archive_once, archive_watch
    from ..ops.textfile import write_archive_metrics

    settings = _settings(config, as_json, target=("--to", to), endpoint=endpoint,
                         data_dir=data_dir, database_url=database_url)
    target = _target(settings, "--to TARGET", as_json)
    directory = _data_dir(settings, as_json)

    def metrics(report: ArchiveReport | None) -> None:
        if report is None:
            _metrics(write_archive_metrics, textfile_dir, success=False)
        else:
            s = report.status
            _metrics(write_archive_metrics, textfile_dir, success=True,
                     lag_seconds=s["lag_seconds"], lag_segments=s["lag_segments"],
                     last_archived_lsn=s["last_archived_lsn"])

    def show(report: ArchiveReport) -> None:
        if as_json:
            click.echo(orjson.dumps(report.to_dict()).decode())
            return
        s = report.status
        report_console().print(
            f"archived {len(report.archived) + len(report.adopted)} segment(s) "
            f"({_size(report.bytes)}) to {target.describe('wal/')} in "
            f"{report.seconds:.2f} s; {report.skipped} already there; lag "
            f"{s['lag_segments']} segments / {s['lag_seconds']:.0f} s; archive ends at LSN "
            f"{s['last_archived_lsn']} ({s['last_archived_time']})",
            highlight=False,
        )

    if not watch:
        try:
            with progress_bars(show_progress(as_json)) as progress:
                report = archive_once(directory, target, progress=progress)
        except StemeError as e:
            metrics(None)
            fail_on(e, as_json=as_json)
        metrics(report)
        show(report)
        return

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def on_round(report: ArchiveReport | None, error: Exception | None) -> None:
        metrics(report)
        if report is not None:
            if report.archived or report.adopted or as_json:
                show(report)
        elif as_json:
            click.echo(
                orjson.dumps({"ok": False, "error": getattr(error, "detail", str(error))}).decode()
            )
        else:
            err.print(
                f"[red]archive round failed:[/] {getattr(error, 'detail', error)}", highlight=False
            )

    url = settings.storage.database_url
    refresh = None
    if url:
        from ..ops.mirror import mirror_journal

        def refresh() -> int:
            return mirror_journal(url, directory)

    archive_watch(directory, target, interval, on_round, stop, before_round=refresh)


@wal.command("status")
@click.option("--to", "--from", "to", metavar="TARGET", help=_TARGET_HELP)
@source_options
@endpoint_option
@json_option
def wal_status(
    to: str | None,
    data_dir: str | None,
    config: str | None,
    database_url: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """How far the WAL archive in TARGET is behind the journal."""
    from ..ops.archive import archive_status

    settings = _settings(config, as_json, target=("--to", to), endpoint=endpoint,
                         data_dir=data_dir, database_url=database_url)
    target = _target(settings, "--to TARGET", as_json)
    directory = _data_dir(settings, as_json)
    try:
        status = archive_status(directory, target)
    except StemeError as e:
        fail_on(e, as_json=as_json)
    if as_json:
        print_json(status)
        return
    table = Table(title="WAL archive", show_header=False)
    for k, v in status.items():
        table.add_row(k, str(v))
    report_console().print(table)


# -- restore ---------------------------------------------------------------------------


@click.command()
@click.option("--from", "from_", metavar="TARGET", help=_TARGET_HELP)
@click.option(
    "--backup",
    "backup_id",
    metavar="ID",
    help="Base backup [default: the latest one ending at or before the target].",
)
@click.option(
    "--to-time", metavar="RFC3339", help="Keep the records recorded at or before this time."
)
@click.option(
    "--to-lsn",
    type=click.IntRange(min=1),
    metavar="N",
    help="Keep the records up to and including LSN N.",
)
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="The NEW data directory (must not exist or be empty).",
)
@click.option("--digest", is_flag=True, help="Also print the restored index's digest.")
@config_option
@endpoint_option
@json_option
def restore(
    from_: str | None,
    backup_id: str | None,
    to_time: str | None,
    to_lsn: int | None,
    data_dir: str,
    digest: bool,
    config: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Restore a backup plus archived WAL into a new data directory, up to the latest
    record, --to-lsn N or --to-time T."""
    from ..ops.restore import restore as do_restore

    if to_time is not None and to_lsn is not None:
        raise click.UsageError("give --to-time or --to-lsn, not both")
    to_time_us = _parse_time(to_time) if to_time is not None else None
    # --data-dir here is the new directory, not the server's: not a setting.
    settings = _settings(config, as_json, target=("--from", from_), endpoint=endpoint)
    target = _target(settings, "--from TARGET", as_json)
    try:
        with progress_bars(show_progress(as_json)) as progress:
            report = do_restore(
                target,
                Path(data_dir),
                backup_id=backup_id,
                to_lsn=to_lsn,
                to_time_us=to_time_us,
                progress=progress,
                digest=digest,
            )
    except StemeError as e:
        fail_on(e, as_json=as_json)
    if as_json:
        print_json(report.to_dict())
        return
    rate = report.replayed / report.seconds if report.seconds else 0.0
    report_console().print(
        f"[green]restored[/] into {report.data_dir}: LSN {report.lsn} "
        f"({report.last_time}) from backup {report.backup_id} + "
        f"{len(report.archived_segments)} archived segments; {report.replayed:,} records "
        f"replayed in {report.seconds:.2f} s ({rate:,.0f} records/s)",
        highlight=False,
    )
    if report.digest:
        report_console().print(f"  index digest {report.digest}", highlight=False)
    report_console().print(
        f"  start it: stemedb serve --data-dir {report.data_dir}", highlight=False, markup=False
    )


# -- dr-drill --------------------------------------------------------------------------


@click.command("dr-drill")
@click.option("--from", "from_", metavar="TARGET", help=_TARGET_HELP)
@click.option(
    "--max-rto",
    type=click.FloatRange(min=0),
    metavar="S",
    help="Fail when restore-to-ready takes longer than S seconds.",
)
@click.option(
    "--max-rpo",
    type=click.FloatRange(min=0),
    metavar="S",
    help="Fail when the last restorable record is older than S seconds.",
)
@click.option("--source-url", metavar="URL", help="Also compare the sample with this live server.")
@click.option(
    "--database-url",
    metavar="URL",
    help="Also check the restored journal is a prefix of this cluster's database "
    "[env STEMEDB_DATABASE_URL, [storage] database_url].",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Assertions read back and re-verified.",
)
@click.option("--keep", is_flag=True, help="Keep the scratch data directory.")
@scratch_option
@textfile_option
@config_option
@endpoint_option
@json_option
def dr_drill(
    from_: str | None,
    max_rto: float | None,
    max_rpo: float | None,
    source_url: str | None,
    database_url: str | None,
    sample: int,
    keep: bool,
    scratch_dir: str | None,
    textfile_dir: str | None,
    config: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Restore the latest backup plus archived WAL into scratch space, serve it, check it,
    and report RPO and RTO."""
    from ..ops.drill import run_drill
    from ..ops.textfile import write_drill_metrics

    settings = _settings(config, as_json, target=("--from", from_), endpoint=endpoint,
                         database_url=database_url)
    target = _target(settings, "--from TARGET", as_json)
    started = time.monotonic()
    try:
        with progress_bars(show_progress(as_json)) as progress:
            report = run_drill(
                target,
                max_rto=max_rto,
                max_rpo=max_rpo,
                source_url=source_url,
                database_url=settings.storage.database_url or None,
                sample=sample,
                keep=keep,
                progress=progress,
                scratch_dir=Path(scratch_dir) if scratch_dir else None,
            )
    except StemeError as e:
        _metrics(write_drill_metrics, textfile_dir, success=False)
        fail_on(e, as_json=as_json)
    _metrics(write_drill_metrics, textfile_dir, success=report.ok, rto_s=report.rto_seconds,
             rpo_s=report.rpo_seconds)
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table(title=f"DR drill from {report.target} ({time.monotonic() - started:.1f} s)")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail")
        for c in report.checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAIL[/]", c.detail)
        report_console().print(table)
        rto = "-" if report.rto_seconds is None else f"{report.rto_seconds:.1f} s"
        rpo = "-" if report.rpo_seconds is None else f"{report.rpo_seconds:.1f} s"
        report_console().print(
            f"RTO {rto} (restore {report.restore_seconds} s + start "
            f"{report.startup_seconds} s), RPO {rpo}; backup {report.backup_id}, LSN "
            f"{report.lsn} ({report.last_time})",
            highlight=False,
        )
        if report.scratch:
            report_console().print(f"scratch kept: {report.scratch}", highlight=False, markup=False)
        report_console().print("[green]PASS[/]" if report.ok else "[bold red]FAIL[/]")
    exit_with(report.ok)


COMMANDS = [backup, wal, restore, dr_drill]
