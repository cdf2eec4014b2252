"""``stemedb serve | verify | reindex``: commands that own a data directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..errors import StemeError
from ..settings import load_settings

err = Console(stderr=True, soft_wrap=True)


def _fail(e: StemeError) -> None:
    err.print(f"[bold red]error:[/] {e.detail}")
    if e.hint:
        err.print(f"[yellow]hint:[/] {e.hint}")
    sys.exit(1)


def _settings(config: str | None, **overrides: Any) -> Any:
    try:
        return load_settings(config, overrides={k: v for k, v in overrides.items() if v is not None})
    except StemeError as e:
        _fail(e)


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
        _fail(e)


@click.command()
@data_dir_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Re-check every journal checksum, the hash chain and every signature."""
    from ..ops.verify import verify_data_dir

    settings = _settings(config, **{"server.data_dir": data_dir})
    report = verify_data_dir(settings.data_dir, progress=not as_json)
    if as_json:
        click.echo(report.to_json())
    else:
        report.print(Console(soft_wrap=True))
    sys.exit(0 if report.ok else 1)


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
        n, found = do_reindex(Path(settings.data_dir), progress=True, digest=digest)
    except StemeError as e:
        _fail(e)
    secs = time.perf_counter() - started
    rate = n / secs if secs > 0 else float(n)
    line = f"reindexed {n} records in {secs:.2f} s ({rate:,.0f} records/s)"
    Console(soft_wrap=True).print(line if found is None else f"{line}; index digest {found}",
                                  highlight=False)


COMMANDS = [serve, verify, reindex]
