"""``stemedb serve | verify | reindex``: commands that own a data directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from ..errors import StemeError
from ..settings import load_settings
from .output import exit_with, fail_on, json_flag, progress_bars, show_progress

if TYPE_CHECKING:
    from ..ops.verify import VerifyReport


def _settings(config: str | None, **overrides: Any) -> Any:
    try:
        return load_settings(config, overrides={k: v for k, v in overrides.items() if v is not None})
    except StemeError as e:
        fail_on(e)


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False),
                               help="Data directory [env STEMEDB_DATA_DIR; default ./stemedb-data].")
config_option = click.option("--config", type=click.Path(dir_okay=False),
                             help="TOML config file [env STEMEDB_CONFIG].")


@click.command()
@click.option("--host", help="Bind address [env STEMEDB_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="API port [env STEMEDB_PORT; default 18180].")
@click.option("--dashboard-port", type=int,
              help="Dashboard port [env STEMEDB_DASHBOARD_PORT; default 18188].")
@data_dir_option
@config_option
@click.option("--redis-url", help="Redis shared by all nodes for rate limits and breakers "
              "[env STEMEDB_REDIS_URL; default: none, in-process guards].")
def serve(host: str | None, port: int | None, dashboard_port: int | None,
          data_dir: str | None, config: str | None, redis_url: str | None) -> None:
    """Run the API server."""
    from ..server import run

    settings = _settings(config, **{"server.host": host, "server.port": port,
                                    "server.dashboard_port": dashboard_port,
                                    "server.data_dir": data_dir,
                                    "guards.redis_url": redis_url})
    try:
        run(settings)
    except StemeError as e:
        fail_on(e)


@click.command()
@data_dir_option
@config_option
@json_flag("Print the report as JSON.")
def verify(data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Re-check every journal checksum, the hash chain and every signature."""
    from ..ops.verify import verify_data_dir

    settings = _settings(config, **{"server.data_dir": data_dir})
    with progress_bars(show_progress(as_json)) as progress:
        report = verify_data_dir(settings.data_dir, progress=progress)
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

    settings = _settings(config, **{"server.data_dir": data_dir})
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
