"""``stemedb serve | verify | reindex``: commands that own a data directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from ..errors import StemeError
from .config import config_option, load
from .output import exit_with, fail_on, json_flag, progress_bars, show_progress, warn

if TYPE_CHECKING:
    from ..ops.verify import VerifyReport


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False),
                               help="Data directory [env STEMEDB_DATA_DIR; default ./stemedb-data].")
database_url_option = click.option(
    "--database-url", help="PostgreSQL holding the journal and index, shared by all nodes "
    "[env STEMEDB_DATABASE_URL; default: none, the embedded store in the data directory].")


@click.command()
@click.option("--host", help="Bind address [env STEMEDB_HOST; default 127.0.0.1].")
# Ports are checked by the settings, like every other value, so that a bad one is named
# with its flag in the one config-error line.
@click.option("--port", metavar="PORT", help="API port [env STEMEDB_PORT; default 18180].")
@click.option("--dashboard-port", metavar="PORT",
              help="Dashboard port, 0 disables it [env STEMEDB_DASHBOARD_PORT; default 18188].")
@data_dir_option
@config_option
@database_url_option
@click.option("--redis-url", help="Redis shared by all nodes for rate limits and breakers "
              "[env STEMEDB_REDIS_URL; default: none, in-process guards].")
def serve(host: str | None, port: str | None, dashboard_port: str | None,
          data_dir: str | None, config: str | None, database_url: str | None,
          redis_url: str | None) -> None:
    """Run the API server."""
    from ..server import run

    settings = load(config, {"server.host": ("--host", host), "server.port": ("--port", port),
                             "server.dashboard_port": ("--dashboard-port", dashboard_port),
                             "server.data_dir": ("--data-dir", data_dir),
                             "guards.redis_url": ("--redis-url", redis_url),
                             "storage.database_url": ("--database-url", database_url)})
    try:
        run(settings)
    except StemeError as e:
        fail_on(e)


@click.command()
@data_dir_option
@config_option
@database_url_option
@click.option("--textfile-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write metrics for node_exporter's textfile collector here "
              "(stemedb_verify.prom).")
@json_flag("Print the report as JSON.")
def verify(data_dir: str | None, config: str | None, database_url: str | None,
           textfile_dir: str | None, as_json: bool) -> None:
    """Re-check every journal checksum, the hash chain and every signature (of the data
    directory, or of the cluster's database with --database-url)."""
    from ..ops.textfile import write_verify_metrics
    from ..ops.verify import verify_data_dir, verify_database

    settings = load(config, {"server.data_dir": ("--data-dir", data_dir),
                             "storage.database_url": ("--database-url", database_url)},
                    as_json=as_json)
    url = settings.storage.database_url
    started = time.monotonic()

    def metrics(**values: Any) -> None:
        if textfile_dir:
            try:
                write_verify_metrics(Path(textfile_dir), **values)
            except StemeError as e:
                warn(e)

    try:
        with progress_bars(show_progress(as_json)) as progress:
            report = (verify_database(url, progress=progress) if url
                      else verify_data_dir(settings.data_dir, progress=progress))
    except StemeError as e:
        metrics(success=False)
        fail_on(e, as_json=as_json)
    metrics(success=report.ok, duration_s=time.monotonic() - started, lsn=report.last_lsn)
    if as_json:
        click.echo(report.to_json())
    else:
        _print_verify(report, Console(soft_wrap=True))
    exit_with(report.ok)


def _print_verify(report: VerifyReport, console: Console) -> None:
    scope = " (live server: checked up to its applied LSN)" if report.live else ""
    if report.ok:
        console.print(f"[green]OK[/]: {report.records} records, {report.signed} signatures, "
                      f"{report.bytes} bytes, last LSN {report.last_lsn}{scope}")
    else:
        console.print(f"[bold red]FAULTS[/] after {report.records} records{scope}:")
        for f in report.faults[:50]:
            console.print(f"  - {f}")
        if len(report.faults) > 50:
            console.print(f"  … and {len(report.faults) - 50} more")


@click.command()
@data_dir_option
@config_option
@click.option("--digest", is_flag=True,
              help="Also print the rebuilt index's digest (a SHA-256 of every row; "
                   "takes about a third longer).")
def reindex(data_dir: str | None, config: str | None, digest: bool) -> None:
    """Rebuild the SQLite index from the journal (the server must be stopped)."""
    from ..ops.reindex import reindex as do_reindex

    settings = load(config, {"server.data_dir": ("--data-dir", data_dir)})
    started = time.perf_counter()
    try:
        with progress_bars(show_progress(False)) as progress:
            n, found = do_reindex(Path(settings.data_dir), progress=progress, digest=digest)
    except StemeError as e:
        fail_on(e)
    secs = time.perf_counter() - started
    rate = n / secs if secs > 0 else float(n)
    line = f"reindexed {n} records in {secs:.2f} s ({rate:,.0f} records/s)"
    Console(soft_wrap=True).print(line if found is None else f"{line}; index digest {found}",
                                  highlight=False)


COMMANDS = [serve, verify, reindex]
