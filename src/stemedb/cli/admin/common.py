"""What every ``stemedb admin`` command shares: its options, the admin token, the client
and how answers are shown."""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ...auth import TOKEN_FILE
from ...client import DEFAULT_URL, Admin, ApiError, Client
from ..output import (
    CLI_MAX_RETRY_AFTER,
    EXIT_USAGE,
    api_errors,
    brief_cell,
    fail,
    fields_table,
    print_json,
    short_id,
)

DEFAULT_DATA_DIR = "./stemedb-data"
TOKEN_ENV = "STEMEDB_ADMIN_TOKEN"
SCOPED_TOKEN_ENV = "STEMEDB_TOKEN"
# Where the ``admin`` group leaves the client factory for its commands (click's ctx.meta).
CLIENT_FACTORY = "stemedb.admin.make_client"
ClientFactory = Callable[[str, str | None], Client]


def make_client(url: str, token: str | None) -> Client:
    """The client every admin command uses; its token also goes with reads (a server
    whose reads need one), else ``STEMEDB_TOKEN`` does."""
    return Client(url, admin_token=token, token=token, max_retry_after=CLI_MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Options:
    """What every admin command takes: where the server is, how to authenticate, output."""

    url: str
    data_dir: str
    actor: str | None
    as_json: bool


def resolve_token(data_dir: str) -> tuple[str, str]:
    """``(token, where it came from)``: ``STEMEDB_ADMIN_TOKEN``, else
    ``<data_dir>/admin.token``, else a scoped token in ``STEMEDB_TOKEN`` (a reviewer's own,
    on a machine without the data directory: decisions are recorded under its name)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, TOKEN_ENV
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        scoped = os.environ.get(SCOPED_TOKEN_ENV, "").strip()
        if scoped:
            return scoped, SCOPED_TOKEN_ENV
        fail(
            f"no admin token: {TOKEN_ENV} is not set and {path} does not exist.\n"
            f"  Set {TOKEN_ENV} (or {SCOPED_TOKEN_ENV} to your own review or admin token), "
            "or point --data-dir (env STEMEDB_DATA_DIR) at the server's data directory: the "
            "server writes admin.token there on first start.",
            EXIT_USAGE,
        )
    except PermissionError:
        fail(
            f"cannot read {path}: permission denied. The file is mode 0600 and belongs to the "
            f"user running the server; run this command as that user or set {TOKEN_ENV}.",
            EXIT_USAGE,
        )
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read {path}: {e}", EXIT_USAGE)
    if not token:
        fail(f"{path} is empty; set {TOKEN_ENV} or restart the server to write one", EXIT_USAGE)
    return token, str(path)


def _default_actor() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _explain(e: ApiError, token_source: str | None) -> list[str]:
    """What an operator needs beyond the problem: who decided first, whose token failed."""
    lines = []
    current = e.problem.get("current")
    if isinstance(current, dict) and current.get("status"):
        who = current.get("decided_by") or "?"
        when = current.get("decided_at") or "?"
        lines.append(f"  current status: {current['status']} (by {who} at {when})")
    if e.status == 401 and token_source == SCOPED_TOKEN_ENV:
        lines.append(f"  the server refused the token from {SCOPED_TOKEN_ENV}: unknown, "
                     "expired or revoked")
    elif e.status == 401 and token_source:
        lines.append(
            f"  the server refused the admin token from {token_source}; it must match the "
            f"server's ({TOKEN_ENV} or admin.token in the server's data directory)"
        )
    return lines


@contextmanager
def connect(opts: Options, *, admin: bool = True) -> Iterator[Client]:
    """A client whose errors become a message on stderr and an exit code."""
    token: str | None
    source: str | None
    if admin:
        token, source = resolve_token(opts.data_dir)
    else:  # a read: the admin token if it is at hand, else STEMEDB_TOKEN (by the client)
        token, source = os.environ.get(TOKEN_ENV, "").strip() or None, None
    ctx = click.get_current_context(silent=True)
    factory: ClientFactory = ctx.meta.get(CLIENT_FACTORY, make_client) if ctx else make_client
    with api_errors(lambda e: _explain(e, source)), factory(opts.url, token) as client:
        yield client


@contextmanager
def admin_api(opts: Options) -> Iterator[Admin]:
    """``client.admin`` acting as ``--actor``, errors handled as in :func:`connect`."""
    with connect(opts) as client:
        yield client.admin.acting_as(opts.actor)


def admin_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--url --data-dir --actor --json`` and pass them as one :class:`Options`."""

    @functools.wraps(func)
    def wrapper(*args: Any, url: str, data_dir: str, actor: str | None, as_json: bool,
                **kwargs: Any) -> Any:  # fmt: skip
        opts = Options(url, data_dir, actor or _default_actor(), as_json)
        return func(opts, *args, **kwargs)

    options = [
        click.option(
            "--url", envvar="STEMEDB_URL", default=DEFAULT_URL, show_default=True,
            help="Server URL (env STEMEDB_URL).",
        ),
        click.option(
            "--data-dir", envvar="STEMEDB_DATA_DIR", default=DEFAULT_DATA_DIR,
            show_default=True, type=click.Path(file_okay=False),
            help=f"Server data directory holding {TOKEN_FILE} (env STEMEDB_DATA_DIR); "
            f"not read when {TOKEN_ENV} is set.",
        ),
        click.option(
            "--actor", envvar="STEMEDB_ADMIN_ACTOR",
            help="Who acts, recorded in the audit log (env STEMEDB_ADMIN_ACTOR; "
            "default: your user name).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
    ]  # fmt: skip
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


# -- output ----------------------------------------------------------------------------------


def answer(opts: Options, data: Any, line: str) -> None:
    """The server's answer with --json, else one line saying what was done."""
    if opts.as_json:
        print_json(data)
    else:
        click.echo(line)


def stdout_console() -> Console:
    return Console(soft_wrap=False)


def agent_cell(value: Any, console: Console) -> Text:
    """A full agent id on a wide terminal, else its first 16 characters (commands take
    any unique prefix of at least 8)."""
    return short_id(value, console, length=16)


def fields(pairs: Iterable[tuple[str, Any]]) -> Table:
    """The fields that have a value, for a person."""
    table = fields_table()
    for name, value in pairs:
        if value is not None and value != [] and value != {}:
            table.add_row(name, brief_cell(value))
    return table
