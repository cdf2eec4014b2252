"""``stemedb db status`` and ``stemedb storage copy``: commands about where a deployment's
data lives (a data directory, or a PostgreSQL database shared by several nodes)."""

from __future__ import annotations

import click

from ..errors import StemeError
from .output import fail_on, json_flag, print_json, progress_bars, show_progress


@click.group()
def db() -> None:
    """The PostgreSQL database of a cluster."""


@db.command("status")
@click.option("--database-url", required=True, envvar="STEMEDB_DATABASE_URL",
              help="postgresql://user@host:port/db [env STEMEDB_DATABASE_URL].")
@json_flag()
def db_status(database_url: str, as_json: bool) -> None:
    """Print the schema version and the journal's tip LSN."""
    from ..backends import database_status

    try:
        status = database_status(database_url)
    except StemeError as e:
        fail_on(e, as_json=as_json)
    if as_json:
        print_json(status)
    else:
        click.echo(f"schema version {status['schema_version']} "
                   f"(this StemeDB: {status['supported_version']}), "
                   f"tip LSN {status['tip_lsn']}")


@click.group()
def storage() -> None:
    """Move a deployment between a data directory and PostgreSQL."""


@storage.command("copy")
@click.option("--from", "source", required=True, metavar="SRC",
              help="A data directory or a postgresql:// URL.")
@click.option("--to", "destination", required=True, metavar="DST",
              help="A new data directory or an empty postgresql:// database.")
@json_flag("Print the report as JSON.")
def storage_copy(source: str, destination: str, as_json: bool) -> None:
    """Copy the journal from SRC into the empty DST, re-checking every checksum, the
    chain and every signature, and build DST's index. Stop the servers first."""
    from ..ops.copy import copy_store

    try:
        with progress_bars(show_progress(as_json)) as progress:
            report = copy_store(source, destination, progress)
    except StemeError as e:
        fail_on(e, as_json=as_json)
    if as_json:
        print_json({"ok": True, **report.to_dict()})
    else:
        click.echo(f"copied {report.records} records ({report.signed} signed) up to LSN "
                   f"{report.last_lsn}; index digest {report.digest}")


COMMANDS = [db, storage]
