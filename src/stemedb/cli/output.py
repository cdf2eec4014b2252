"""How every ``stemedb`` command answers: errors and exit codes, ``--json``, tables and
progress bars.

One exit-code table for every command::

    0  success (a quarantined write is a success too)
    1  the operation failed: the server answered with an error, a local step failed
       (writing a key, starting the server, a backup, archive or restore), or a check
       found damage (verify, backup verify, a failed DR drill)
    2  usage or configuration error: bad or missing options, an unreadable key, an
       invalid config file or environment value, no admin token, an id prefix that
       matches several ids
    3  the server could not be reached, after retries

An error is ``error: …`` on stderr, with a ``hint: …`` line when there is one; a
configuration error is one line, ``error: <key> from <source>: <rule>`` (the setting,
the config file, environment variable or flag its value came from, and the rule it
breaks). With ``--json`` the data-directory and ops commands print ``{"ok": false,
"error", "hint"}`` on stdout instead, so that a script reads one stream. A problem that
does not decide the outcome (metrics for node_exporter that could not be written) is
``warning: …`` on stderr, whatever the output format.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
import orjson
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars
from rich.table import Table
from rich.text import Text

from ..client import ApiError, Client, ClientError, ConnectionFailed
from ..errors import ConfigError, StemeError
from ..ops.progress import Progress, Unit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
# A person is waiting: ride out short rate limits, report long outages at once.
CLI_MAX_RETRY_AFTER = 10.0

F = TypeVar("F", bound=Callable[..., Any])


# -- errors and exit codes ---------------------------------------------------------------------


def fail(message: str, code: int = EXIT_FAILED, *, hint: str = "", as_json: bool = False
         ) -> NoReturn:  # fmt: skip
    """Report an error and end the command with ``code``."""
    if as_json:
        print_json({"ok": False, "error": message, "hint": hint or None})
    else:
        click.echo(f"{click.style('error:', fg='red', bold=True)} {message}", err=True)
        if hint:
            click.echo(f"{click.style('hint:', fg='yellow')} {hint}", err=True)
    raise click.exceptions.Exit(code)


def fail_on(e: StemeError, *, as_json: bool = False) -> NoReturn:
    """A library error: a configuration one is the caller's to fix (2), any other failed (1)."""
    code = EXIT_USAGE if isinstance(e, ConfigError) else EXIT_FAILED
    fail(e.detail, code, hint=e.hint, as_json=as_json)


def warn(e: StemeError) -> None:
    """Report a problem that does not change the command's outcome (stderr, never stdout,
    so that ``--json`` output stays one document)."""
    click.echo(f"{click.style('warning:', fg='yellow', bold=True)} {e.detail}", err=True)
    if e.hint:
        click.echo(f"{click.style('hint:', fg='yellow')} {e.hint}", err=True)


def exit_with(ok: bool) -> NoReturn:
    """End a check: 0 when it found nothing wrong, else 1 (the report says what)."""
    raise click.exceptions.Exit(EXIT_OK if ok else EXIT_FAILED)


def ambiguous(prefix: str, matches: list[Any], more: bool = False) -> NoReturn:
    """An id prefix that names several things: a usage error (exit 2) listing them."""
    count = f"more than {len(matches)}" if more else str(len(matches))
    fail(f"{prefix} is ambiguous, {count} matches: {', '.join(str(m) for m in matches)}",
         EXIT_USAGE, hint="give more characters of the id")


@contextmanager
def api_errors(explain: Callable[[ApiError], list[str]] | None = None) -> Iterator[None]:
    """Client errors as a message on stderr and an exit code; ``explain`` adds lines.
    An ambiguous id prefix (409 ``ambiguous-id``) is a usage error, as in :func:`ambiguous`."""
    try:
        yield
    except ApiError as e:
        matches = e.problem.get("matches")
        if e.type.endswith("/ambiguous-id") and isinstance(matches, list):
            prefix = str(e.problem.get("prefix") or "the id")
            ambiguous(prefix, matches, bool(e.problem.get("more")))
        lines = [str(e)]
        lines += [f"  {err.get('field', '?')}: {err.get('message', '')}"
                  for err in e.errors if isinstance(err, dict)]  # fmt: skip
        fail("\n".join(lines + (explain(e) if explain else [])))
    except ConnectionFailed as e:
        fail(f"cannot reach the server: {e}", EXIT_UNREACHABLE)
    except ClientError as e:
        fail(str(e))


# -- --json ------------------------------------------------------------------------------------


def json_flag(help: str = "Print JSON instead of a table.") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


# -- tables ------------------------------------------------------------------------------------


def cell(value: Any) -> Text:
    """A value as it is: text as text, anything else as its JSON."""
    # Text, never markup: assertion content is untrusted and may contain "[...]".
    if value is None:
        return Text("")
    if isinstance(value, str):
        return Text(value)
    return Text(orjson.dumps(value).decode())


def brief_cell(value: Any) -> Text:
    """A value for a person scanning a list: yes/no, three significant digits."""
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:.3g}")
    return cell(value)


def short_time(value: Any) -> str | None:
    """Second precision is enough to scan a list; --json shows the full value."""
    return str(value)[:19].replace("T", " ") if value else None


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


class ListTable(Table):
    """A table for a person scanning a list, at any terminal width: a cell wraps between
    words, and a word too long for its column is cut short with "…" (the whole value is
    in ``--json``), never broken across lines. Every column gets this, whatever the
    command asks, so that a table stays readable at 80 columns."""

    def add_column(self, header: Any = "", *args: Any, **kwargs: Any) -> None:
        kwargs["overflow"] = "ellipsis"
        # A minimum width the terminal cannot give makes rich crop the cell's lines
        # (no "…"); the table shares the width out, and commands drop columns instead.
        kwargs.pop("min_width", None)
        super().add_column(header, *args, **kwargs)


def list_table(title: str | Text) -> Table:
    """Columns two spaces apart, no outer margin: room for the values at 80 columns. The
    title wraps like a cell (it may hold a subject, which is untrusted text)."""
    heading = title.copy() if isinstance(title, Text) else Text(title)
    heading.overflow = "ellipsis"
    return ListTable(title=heading, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                     show_edge=False, collapse_padding=True)


def table_console() -> Console:
    """Standard output for tables: as wide as the terminal (or ``COLUMNS``; 80 when
    neither says)."""
    return Console(soft_wrap=False)


def short_id(value: Any, console: Console, *, wide_at: int = 160, length: int = 12) -> Text:
    """An id for a list: whole on a wide terminal, else its first ``length`` characters
    (every command that takes an id takes any unique prefix of at least 8)."""
    text = str(value or "")
    return Text(text if console.width >= wide_at else text[:length])


def fields_table() -> Table:
    """A two-column ``field value`` table without a header."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    return table


def report_console() -> Console:
    """Standard output; wide when it is not a terminal, so tables are never cut."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


# -- ids ---------------------------------------------------------------------------------------

HEX = frozenset("0123456789abcdef")
ID_MIN_PREFIX = 8
ASSERTION_ID_LENGTH = 64
_MAX_MATCHES = 10


def resolve_assertion_id(client: Client, value: str) -> str:
    """The full assertion id for ``value``: a full id as it is, a prefix of at least 8
    hex characters through the SDK's ``query(id_prefix=…)`` (unique: that id; none: not
    found, exit 1; several: :func:`ambiguous`, exit 2). Anything else goes to the server
    as it is (and is not found there)."""
    v = value.strip().lower()
    if not ID_MIN_PREFIX <= len(v) < ASSERTION_ID_LENGTH or not set(v) <= HEX:
        return value.strip()
    with api_errors():
        page = client.query(id_prefix=v, include_inactive=True, limit=_MAX_MATCHES + 1)
    ids = [str(item.get("id")) for item in page.get("items", [])]
    if not ids:
        fail(f"no assertion id starts with {v}")
    if len(ids) > 1:
        ambiguous(v, ids[:_MAX_MATCHES], len(ids) > _MAX_MATCHES)
    return ids[0]


def resolve_agent_id(client: Client, value: str) -> str:
    """The full agent id for ``value``: a full id as it is, a prefix of at least 8 hex
    characters through the SDK's ``agent(prefix)``, which resolves it (none: not found,
    exit 1; several: :func:`ambiguous`, exit 2)."""
    v = value.strip().lower()
    if not ID_MIN_PREFIX <= len(v) < ASSERTION_ID_LENGTH or not set(v) <= HEX:
        return value.strip()
    with api_errors():
        return str(client.agent(v)["agent_id"])


# -- progress ----------------------------------------------------------------------------------


def show_progress(as_json: bool) -> bool:
    """Bars only for a person at a terminal, never into a script's output."""
    return not as_json and sys.stderr.isatty()


class _Amount(ProgressColumn):
    """Bytes as sizes, records as a share of the total."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes, self.shares = DownloadColumn(), TaskProgressColumn()

    def render(self, task: Task) -> Any:
        return (self.sizes if task.fields.get("unit") == "bytes" else self.shares).render(task)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Progress | None]:
    """A :class:`~stemedb.ops.progress.Progress` that draws a bar per phase on stderr,
    gone when the block ends; None when not ``enabled``."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), _Amount(),
               TimeRemainingColumn())  # fmt: skip
    with Bars(*columns, transient=True, console=Console(stderr=True)) as bars:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int | None, unit: Unit) -> None:
            task = tasks.get(phase)
            if task is None:
                task = tasks[phase] = bars.add_task(phase, total=total, unit=unit)
            bars.update(task, completed=done, total=total)

        yield report
