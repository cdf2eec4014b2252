"""Admin commands: ``stemedb admin quarantine | allowlist | thresholds | breaker | audit | agent``.

Each command is a thin call to the admin API (``/v1/admin``, docs/admin.md). The admin
token is ``STEMEDB_ADMIN_TOKEN`` if set, else the ``admin.token`` file the server writes
into its data directory on first start (``--data-dir``, env ``STEMEDB_DATA_DIR``,
default ``./stemedb-data``). Every command takes ``--json`` to print the server's answer.

Exit codes, as for the client commands: 0 success, 1 the server answered with an error
(its problem detail goes to stderr), 2 usage error or no admin token, 3 the server could
not be reached.
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import click
import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..auth import TOKEN_FILE
from ..client import DEFAULT_URL, ApiError, Client, ClientError, ConnectionFailed

EXIT_FAILED = 1  # the server answered with an error
EXIT_USAGE = 2  # bad arguments, or no admin token to send
EXIT_UNREACHABLE = 3
# A person is waiting: ride out short rate limits, report long outages at once.
CLI_MAX_RETRY_AFTER = 10.0
DEFAULT_DATA_DIR = "./stemedb-data"
TOKEN_ENV = "STEMEDB_ADMIN_TOKEN"
ACTOR_HEADER = "X-Admin-Actor"
THRESHOLD_KEYS = (
    "quality_threshold",
    "confidence_threshold",
    "duplicate_lookback_hours",
    "untrusted_confidence_threshold",
)
REASONS = ("Duplicate", "LowQuality", "UntrustedHighConfidence")
STATUSES = ("pending", "approved", "rejected", "all")


def make_client(url: str, token: str | None) -> Client:
    """The client every admin command uses; tests replace it to plug in a transport."""
    return Client(url, admin_token=token, max_retry_after=CLI_MAX_RETRY_AFTER)


# -- connection and errors -------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


@dataclass(frozen=True)
class Options:
    """What every admin command takes: where the server is, how to authenticate, output."""

    url: str
    data_dir: str
    actor: str | None
    as_json: bool


def resolve_token(data_dir: str) -> tuple[str, str]:
    """``(token, where it came from)``: ``STEMEDB_ADMIN_TOKEN``, else ``<data_dir>/admin.token``."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, TOKEN_ENV
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        _fail(
            f"no admin token: {TOKEN_ENV} is not set and {path} does not exist.\n"
            f"  Set {TOKEN_ENV}, or point --data-dir (env STEMEDB_DATA_DIR) at the server's "
            "data directory: the server writes admin.token there on first start.",
            EXIT_USAGE,
        )
    except PermissionError:
        _fail(
            f"cannot read {path}: permission denied. The file is mode 0600 and belongs to the "
            f"user running the server; run this command as that user or set {TOKEN_ENV}.",
            EXIT_USAGE,
        )
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"cannot read {path}: {e}", EXIT_USAGE)
    if not token:
        _fail(f"{path} is empty; set {TOKEN_ENV} or restart the server to write one", EXIT_USAGE)
    return token, str(path)


def _default_actor() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


class Api:
    """Calls with the actor header; paths are built from escaped segments only."""

    def __init__(self, client: Client, actor: str | None) -> None:
        self.client = client
        self.headers = {ACTOR_HEADER: actor} if actor else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.request("GET", path, params=params, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.request("POST", path, json=body, headers=self.headers)

    def put(self, path: str, body: Any) -> Any:
        return self.client.request("PUT", path, json=body, headers=self.headers)

    def delete(self, path: str) -> Any:
        return self.client.request("DELETE", path, headers=self.headers)

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a cursor-paged list."""
        while True:
            page = self.get(path, **params)
            yield page
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]


def _seg(value: str) -> str:
    """One URL path segment, so an id can never walk to another route."""
    return quote(value.strip(), safe="")


def _api_message(e: ApiError, token_source: str | None) -> str:
    lines = [str(e)]
    for err in e.errors:
        if isinstance(err, dict):
            lines.append(f"  {err.get('field', '?')}: {err.get('message', '')}")
    current = e.problem.get("current")
    if isinstance(current, dict) and current.get("status"):
        who = current.get("decided_by") or "?"
        when = current.get("decided_at") or "?"
        lines.append(f"  current status: {current['status']} (by {who} at {when})")
    if e.status == 401 and token_source:
        lines.append(
            f"  the server refused the admin token from {token_source}; it must match the "
            f"server's ({TOKEN_ENV} or admin.token in the server's data directory)"
        )
    return "\n".join(lines)


@contextmanager
def connect(opts: Options, *, admin: bool = True) -> Iterator[Api]:
    """An :class:`Api` whose errors become a message on stderr and an exit code."""
    token, source = resolve_token(opts.data_dir) if admin else (None, None)
    try:
        with make_client(opts.url, token) as client:
            yield Api(client, opts.actor)
    except ApiError as e:
        _fail(_api_message(e, source), EXIT_FAILED)
    except ConnectionFailed as e:
        _fail(f"cannot reach the server: {e}", EXIT_UNREACHABLE)
    except ClientError as e:
        _fail(str(e), EXIT_FAILED)


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


def _print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _console() -> Console:
    return Console(soft_wrap=False)


def _cell(value: Any) -> Text:
    # Text, never markup: assertion content and reasons are untrusted and may hold "[...]".
    if value is None:
        return Text("")
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:.3g}")
    return Text(orjson.dumps(value).decode())


def _time(value: Any) -> Text:
    """Second precision is enough to scan a list; --json shows the full value."""
    return _cell(str(value)[:19].replace("T", " ") if value else None)


def _fields_table(pairs: Iterable[tuple[str, Any]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in pairs:
        if value is not None and value != [] and value != {}:
            table.add_row(name, _cell(value))
    return table


def _list_table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _agent(value: Any, console: Console) -> Text:
    """A full agent id on a wide terminal, else its first 16 characters (commands take
    any unique prefix of at least 8)."""
    text = str(value or "")
    return Text(text if console.width >= 160 else text[:16])


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _claim(assertion: Any) -> Text:
    if not isinstance(assertion, dict):
        return Text("")
    obj = assertion.get("object")
    obj_text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    text = f"{assertion.get('subject', '')} {assertion.get('predicate', '')} {obj_text}"
    return Text(text if len(text) <= 120 else text[:119] + "…")


# -- quarantine ------------------------------------------------------------------------------


@click.group()
def admin() -> None:
    """Review quarantine, manage the allowlist, thresholds and circuit breakers.

    The admin token is read from STEMEDB_ADMIN_TOKEN, else from admin.token in the
    server's data directory (--data-dir, env STEMEDB_DATA_DIR, default ./stemedb-data).
    """


@admin.group()
def quarantine() -> None:
    """Quarantined writes waiting for review: list, show, approve, reject, note, batch."""


def _group_counts(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for item in items:
        value = str(item.get(key) or "")
        counts[value] += 1
        reasons.setdefault(value, Counter())[str(item.get("reason") or "")] += 1
    rows = []
    for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        row: dict[str, Any] = {key: value, "count": n}
        if key != "reason":
            row["reasons"] = dict(reasons[value].most_common())
        rows.append(row)
    return rows


@quarantine.command("list")
@click.option("--agent", "agent_id", help="Agent id or a prefix of at least 8 hex characters.")
@click.option("--reason", help=f"Only this reason: {', '.join(REASONS)}.")
@click.option(
    "--status", type=click.Choice(STATUSES), default="pending", show_default=True,
    help="Decision status.",
)  # fmt: skip
@click.option("--limit", type=click.IntRange(1, 10_000), help="Page size (server default 1000).")
@click.option("--cursor", help="Continue from a previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Follow cursors to fetch every page.")
@click.option(
    "--by-agent", is_flag=True,
    help="Count items per agent, busiest first (fetches every page).",
)  # fmt: skip
@click.option("--by-reason", is_flag=True, help="Count items per reason (fetches every page).")
@admin_options
def quarantine_list(
    opts: Options,
    agent_id: str | None,
    reason: str | None,
    status: str,
    limit: int | None,
    cursor: str | None,
    all_pages: bool,
    by_agent: bool,
    by_reason: bool,
) -> None:
    """List quarantine items, newest first (pending ones unless --status)."""
    if by_agent and by_reason:
        raise click.UsageError("give --by-agent or --by-reason, not both")
    params = {"agent_id": agent_id, "reason": reason, "status": status, "limit": limit,
              "cursor": cursor}  # fmt: skip
    with connect(opts) as api:
        if all_pages or by_agent or by_reason:
            pages = list(api.pages("/v1/admin/quarantine", **params))
            items = [item for page in pages for item in page.get("items", [])]
            page = {"items": items, "total": pages[0].get("total", len(items)),
                    "next_cursor": None}  # fmt: skip
        else:
            page = api.get("/v1/admin/quarantine", **params)
            items = list(page.get("items", []))
    if by_agent or by_reason:
        key = "agent_id" if by_agent else "reason"
        rows = _group_counts(items, key)
        if opts.as_json:
            _print_json(rows)
            return
        console = _console()
        noun = "agent" if by_agent else "reason"
        table = _list_table(f"{_plural(len(items), 'item')} ({status}) by {noun}")
        table.add_column(noun, no_wrap=True)
        table.add_column("count", justify="right", no_wrap=True)
        if by_agent:
            table.add_column("reasons", overflow="fold")
        for group in rows:
            first = _agent(group[key], console) if by_agent else _cell(group[key])
            cells = [first, _cell(group["count"])]
            if by_agent:
                cells.append(_cell(", ".join(f"{r} {n}" for r, n in group["reasons"].items())))
            table.add_row(*cells)
        console.print(table)
        return
    if opts.as_json:
        _print_json(page)
        return
    console = _console()
    total = page.get("total", len(items))
    title = f"{_plural(len(items), 'item')} of {total} ({status})"
    # 80 columns keep the full item id (needed to act on it) and room for the claim;
    # wider terminals add the score, the decision status and the creation time.
    wide, medium = console.width >= 140, console.width >= 110
    table = _list_table(title)
    table.add_column("id", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    table.add_column("reason", overflow="fold", max_width=None if medium else 12)
    if medium:
        table.add_column("score", justify="right", no_wrap=True)
    if status != "pending":
        table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("created", no_wrap=True)
    table.add_column("claim", overflow="fold", min_width=16)
    for item in items:
        agent_id = str(item.get("agent_id") or "")
        row: list[Text] = [_cell(item.get("id")), _cell(agent_id[: 12 if medium else 8]),
                           _cell(item.get("reason"))]  # fmt: skip
        if medium:
            row.append(_cell(item.get("score")))
        if status != "pending":
            row.append(_cell(item.get("status")))
        if wide:
            row.append(_time(item.get("created_at")))
        row.append(_claim(item.get("assertion")))
        table.add_row(*row)
    console.print(table)
    if page.get("next_cursor"):
        click.echo(f"more results: --cursor {page['next_cursor']} (or --all)", err=True)


_ITEM_ORDER = ("id", "status", "reason", "score", "agent_id", "assertion_id", "created_at",
               "decided_at", "decided_by", "decision_reason")  # fmt: skip
_ASSERTION_ORDER = ("subject", "predicate", "object", "confidence", "evidence", "context",
                    "valid_from", "valid_until", "supersedes", "timestamp", "nonce")  # fmt: skip


def _signals_table(signals: list[Any]) -> Table:
    """Signals are ``{"name", "amount", "detail"}`` (plain names are shown as they are)."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for sig in signals:
        if isinstance(sig, dict):
            table.add_row(
                _cell(sig.get("name")), _cell(sig.get("amount")), _cell(sig.get("detail"))
            )
        else:
            table.add_row(_cell(sig), Text(""), Text(""))
    return table


def _print_item(item: dict[str, Any]) -> None:
    console = _console()
    console.print(_fields_table((k, item.get(k)) for k in _ITEM_ORDER))
    signals = item.get("signals")
    if isinstance(signals, list) and signals:
        console.print(Text("\nsignals", style="bold underline"))
        console.print(_signals_table(signals))
    breakdown = item.get("breakdown")
    if isinstance(breakdown, dict):
        rest = {k: v for k, v in breakdown.items() if k not in ("signals", "reason", "score")}
        if rest:
            console.print(Text("\nscore breakdown", style="bold underline"))
            console.print(_fields_table(sorted(rest.items())))
    assertion = item.get("assertion")
    if isinstance(assertion, dict):
        console.print(Text("\nassertion", style="bold underline"))
        console.print(_fields_table((k, assertion.get(k)) for k in _ASSERTION_ORDER))
    notes = item.get("notes") or []
    if notes:
        console.print(Text("\nnotes", style="bold underline"))
        for note in notes:
            if isinstance(note, dict):
                line = Text(f"{str(note.get('at', ''))[:19].replace('T', ' ')}  ")
                line.append(str(note.get("by", "")), style="bold")
                line.append(f"  {note.get('note', '')}")
                console.print(line)


@quarantine.command("show")
@click.argument("item_id")
@admin_options
def quarantine_show(opts: Options, item_id: str) -> None:
    """One item with its full assertion, score breakdown and notes."""
    with connect(opts) as api:
        item = api.get(f"/v1/admin/quarantine/{_seg(item_id)}")
    if opts.as_json:
        _print_json(item)
    else:
        _print_item(item)


def _decided(opts: Options, item: dict[str, Any], verb: str) -> None:
    if opts.as_json:
        _print_json(item)
        return
    aid = item.get("assertion_id")
    after = {"approved": "is now active", "rejected": "is kept for audit only"}
    line = f"{verb} {item.get('id')}"
    if verb in after and aid:
        line += f" (assertion {aid} {after[verb]})"
    click.echo(line)


@quarantine.command("approve")
@click.argument("item_id")
@click.option("--note", help="Why; kept with the item and in the audit log.")
@admin_options
def quarantine_approve(opts: Options, item_id: str, note: str | None) -> None:
    """Promote an item: its assertion enters the store with its original id and signature."""
    with connect(opts) as api:
        body = {"note": note} if note else None
        item = api.post(f"/v1/admin/quarantine/{_seg(item_id)}/approve", body)
    _decided(opts, item, "approved")


@quarantine.command("reject")
@click.argument("item_id")
@click.option("--reason", help="Why; kept with the item and in the audit log.")
@admin_options
def quarantine_reject(opts: Options, item_id: str, reason: str | None) -> None:
    """Reject an item: kept for audit, never served as knowledge."""
    with connect(opts) as api:
        body = {"reason": reason} if reason else None
        item = api.post(f"/v1/admin/quarantine/{_seg(item_id)}/reject", body)
    _decided(opts, item, "rejected")


@quarantine.command("note")
@click.argument("item_id")
@click.argument("text")
@admin_options
def quarantine_note(opts: Options, item_id: str, text: str) -> None:
    """Add a note to an item (any status)."""
    if not text.strip():
        raise click.BadParameter("must not be empty", param_hint="TEXT")
    with connect(opts) as api:
        item = api.post(f"/v1/admin/quarantine/{_seg(item_id)}/notes", {"note": text})
    _decided(opts, item, "noted")


def _read_ids(values: tuple[str, ...]) -> list[str]:
    """Ids from repeated --ids options, each comma or space separated; ``-`` reads stdin."""
    out: list[str] = []
    for value in values:
        text = sys.stdin.read() if value == "-" else value
        out.extend(part.strip().strip('"') for part in re.split(r"[\s,]+", text))
    return [i for i in out if i]


@quarantine.command("batch")
@click.argument("action", type=click.Choice(["approve", "reject"]))
@click.option(
    "--ids", "ids", multiple=True,
    help="Item ids, comma or space separated; repeatable; '-' reads them from stdin.",
)  # fmt: skip
@click.option("--agent", "agent_id", help="Every pending item of this agent (id or ≥ 8 hex).")
@click.option("--reason", help="Why (reject).")
@click.option("--note", help="Why (approve).")
@admin_options
def quarantine_batch(
    opts: Options,
    action: str,
    ids: tuple[str, ...],
    agent_id: str | None,
    reason: str | None,
    note: str | None,
) -> None:
    """Approve or reject many items in one call: --ids ID... or --agent ID.

    Items no longer pending and unknown ids are skipped and listed; the others are
    decided in one journal commit.
    """
    if bool(ids) == bool(agent_id):
        raise click.UsageError("give either --ids or --agent")
    if action == "approve" and reason:
        raise click.UsageError("--reason goes with reject; use --note with approve")
    if action == "reject" and note:
        raise click.UsageError("--note goes with approve; use --reason with reject")
    body: dict[str, Any] = {"action": action}
    if ids:
        id_list = _read_ids(ids)
        if not id_list:
            raise click.UsageError("--ids gave no ids")
        body["ids"] = id_list
    else:
        body["agent_id"] = agent_id
    if reason:
        body["reason"] = reason
    if note:
        body["note"] = note
    with connect(opts) as api:
        result = api.post("/v1/admin/quarantine/batch", body)
    if opts.as_json:
        _print_json(result)
        return
    status = result.get("status", action)
    target = f" of agent {agent_id}" if agent_id else ""
    click.echo(f"{status} {_plural(int(result.get('processed', 0)), 'item')}{target}")
    skipped = result.get("skipped") or []
    if skipped:
        kinds = Counter(str(s.get("status")) for s in skipped if isinstance(s, dict))
        summary = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        click.echo(f"skipped {len(skipped)} ({summary}):", err=True)
        for s in skipped:
            if isinstance(s, dict):
                click.echo(f"  {s.get('id')}  {s.get('status')}", err=True)


# -- allowlist -------------------------------------------------------------------------------


@admin.group()
def allowlist() -> None:
    """Agents whose writes skip content defense until an expiry (signatures still checked)."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _expiry_from_duration(text: str) -> str:
    m = _DURATION.match(text)
    if not m:
        raise click.BadParameter("use a number and a unit: 90m, 12h, 2d, 1w", param_hint="--for")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@allowlist.command("list")
@admin_options
def allowlist_list(opts: Options) -> None:
    """Every allowlist entry with its expiry."""
    with connect(opts) as api:
        data = api.get("/v1/admin/content_defense/allowlist")
    if opts.as_json:
        _print_json(data)
        return
    entries = list(data.get("allowlist", []))
    console = _console()
    table = _list_table(_plural(len(entries), "allowlisted agent"))
    for name in ("agent", "expires", "active", "reason", "added by"):
        table.add_column(name, no_wrap=name != "reason", overflow="fold")
    for e in entries:
        table.add_row(_agent(e.get("agent_id"), console), _time(e.get("expires_at")),
                      _cell(e.get("active")), _cell(e.get("reason")),
                      _cell(e.get("added_by")))  # fmt: skip
    console.print(table)


@allowlist.command("add")
@click.argument("agent_id")
@click.option("--expires-at", help="RFC 3339 time the entry ends, e.g. 2026-02-12T00:00:00Z.")
@click.option("--for", "duration", help="Or a duration from now: 90m, 12h, 2d, 1w.")
@click.option("--reason", required=True, help="Why, e.g. backfill_operation.")
@admin_options
def allowlist_add(
    opts: Options, agent_id: str, expires_at: str | None, duration: str | None, reason: str
) -> None:
    """Let AGENT_ID's writes skip content defense until --expires-at (or for --for)."""
    if (expires_at is None) == (duration is None):
        raise click.UsageError("give either --expires-at or --for")
    expires = expires_at if expires_at is not None else _expiry_from_duration(str(duration))
    with connect(opts) as api:
        entry = api.post(
            "/v1/admin/content_defense/allowlist",
            {"agent_id": agent_id, "expires_at": expires, "reason": reason},
        )
    if opts.as_json:
        _print_json(entry)
    else:
        click.echo(
            f"allowlisted {entry.get('agent_id', agent_id)} until {entry.get('expires_at', expires)}"
        )


@allowlist.command("remove")
@click.argument("agent_id")
@admin_options
def allowlist_remove(opts: Options, agent_id: str) -> None:
    """Remove AGENT_ID from the allowlist: its writes are checked again at once."""
    with connect(opts) as api:
        result = api.delete(f"/v1/admin/content_defense/allowlist/{_seg(agent_id)}")
    if opts.as_json:
        _print_json(result)
    else:
        click.echo(f"removed {result.get('agent_id', agent_id)} from the allowlist")


# -- thresholds ------------------------------------------------------------------------------


def _parse_assignment(text: str) -> tuple[str, float | int]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: use key=value", param_hint="--set")
    if key not in THRESHOLD_KEYS:
        raise click.BadParameter(
            f"unknown threshold {key!r}; one of {', '.join(THRESHOLD_KEYS)}", param_hint="--set"
        )
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: {value!r} is not a number", param_hint="--set"
        ) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise click.BadParameter(f"{text!r}: must be finite", param_hint="--set")
    return key, int(number) if number.is_integer() and "." not in value else number


@admin.command()
@click.option(
    "--set", "assignments", multiple=True, metavar="KEY=VALUE",
    help=f"Change a threshold at runtime (repeatable): {', '.join(THRESHOLD_KEYS)}.",
)  # fmt: skip
@admin_options
def thresholds(opts: Options, assignments: tuple[str, ...]) -> None:
    """Show the content-defense thresholds, or change them at once (no restart) with --set."""
    values = dict(_parse_assignment(a) for a in assignments)
    with connect(opts) as api:
        path = "/v1/admin/content_defense/thresholds"
        data = api.put(path, values) if values else api.get(path)
    if opts.as_json:
        _print_json(data)
        return
    table = _list_table("content-defense thresholds" + (" (changed)" if values else ""))
    table.add_column("threshold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for key, value in data.items():
        mark = Text(" *" if key in values else "")
        table.add_row(_cell(key), Text.assemble(_cell(value), mark))
    _console().print(table)


# -- circuit breakers ------------------------------------------------------------------------


@admin.group()
def breaker() -> None:
    """Per-agent circuit breakers: list, show, open (ban an agent), reset (unban)."""


_BREAKER_FIELDS = ("agent_id", "state", "failure_rate", "requests", "reason", "opened_at", "until")


@breaker.command("list")
@click.option("--state", type=click.Choice(["OPEN", "HALF_OPEN", "CLOSED"], case_sensitive=False),
              help="Only breakers in this state.")  # fmt: skip
@admin_options
def breaker_list(opts: Options, state: str | None) -> None:
    """Every agent with a breaker state, OPEN ones first."""
    with connect(opts) as api:
        data = api.get("/v1/admin/circuit_breakers")
    items = list(data.get("circuit_breakers", []))
    if state:
        items = [b for b in items if str(b.get("state", "")).upper() == state.upper()]
        data = {**data, "circuit_breakers": items}
    if opts.as_json:
        _print_json(data)
        return
    console = _console()
    wide = console.width >= 120
    table = _list_table(_plural(len(items), "circuit breaker"))
    table.add_column("agent", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("failures", justify="right", no_wrap=True)
    table.add_column("requests", justify="right", no_wrap=True)
    if wide:
        table.add_column("opened", no_wrap=True)
    table.add_column("until", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for b in items:
        row = [_agent(b.get("agent_id"), console), _cell(b.get("state")),
               _cell(b.get("failure_rate")), _cell(b.get("requests"))]  # fmt: skip
        if wide:
            row.append(_time(b.get("opened_at")))
        row += [_time(b.get("until")), _cell(b.get("reason"))]
        table.add_row(*row)
    console.print(table)


@breaker.command("show")
@click.argument("agent_id")
@admin_options
def breaker_show(opts: Options, agent_id: str) -> None:
    """One agent's breaker (id or a prefix of at least 8 hex characters)."""
    with connect(opts) as api:
        data = api.get(f"/v1/admin/circuit_breakers/{_seg(agent_id)}")
    if opts.as_json:
        _print_json(data)
    else:
        _console().print(_fields_table((k, data.get(k)) for k in _BREAKER_FIELDS))


@breaker.command("open")
@click.argument("agent_id")
@click.option("--reason", required=True, help="Why, e.g. flooding_quarantine.")
@click.option("--duration-seconds", required=True, type=click.IntRange(min=1),
              help="How long the ban lasts, e.g. 3600.")  # fmt: skip
@admin_options
def breaker_open(opts: Options, agent_id: str, reason: str, duration_seconds: int) -> None:
    """Ban an agent: its writes answer 429 until the duration passes or a reset."""
    with connect(opts) as api:
        data = api.post(
            f"/v1/admin/circuit_breakers/{_seg(agent_id)}/open",
            {"reason": reason, "duration_seconds": duration_seconds},
        )
    if opts.as_json:
        _print_json(data)
    else:
        click.echo(f"opened breaker of {data.get('agent_id', agent_id)} until {data.get('until')}")


@breaker.command("reset")
@click.argument("agent_id")
@click.option("--reason", help="Why; kept in the audit log.")
@admin_options
def breaker_reset(opts: Options, agent_id: str, reason: str | None) -> None:
    """Unban an agent: its breaker goes back to CLOSED with a clean window."""
    with connect(opts) as api:
        body = {"reason": reason} if reason else None
        data = api.post(f"/v1/admin/circuit_breakers/{_seg(agent_id)}/reset", body)
    if opts.as_json:
        _print_json(data)
    else:
        click.echo(f"reset breaker of {data.get('agent_id', agent_id)}: {data.get('state')}")


# -- assertions ------------------------------------------------------------------------------


@admin.command()
@click.argument("assertion_id")
@click.option("--reason", required=True, help="Why; kept in the audit log.")
@admin_options
def retract(opts: Options, assertion_id: str, reason: str) -> None:
    """Retract any agent's active assertion: it stays readable as retracted, leaves
    beliefs and search, and counts as its agent's retraction."""
    with connect(opts) as api:
        data = api.post(f"/v1/admin/assertions/{_seg(assertion_id)}/retract", {"reason": reason})
    if opts.as_json:
        _print_json(data)
    else:
        click.echo(f"retracted {data.get('id', assertion_id)} of agent "
                   f"{str(data.get('agent_id', ''))[:16]} at lsn {data.get('lsn')}")


# -- audit and agents ------------------------------------------------------------------------


@admin.command()
@click.option("--target", help="Only decisions about this quarantine item or agent id.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@admin_options
def audit(opts: Options, target: str | None, limit: int) -> None:
    """Admin decisions, newest first: who did what, when and why."""
    with connect(opts) as api:
        data = api.get("/v1/admin/audit", target=target, limit=limit)
    if opts.as_json:
        _print_json(data)
        return
    items = list(data.get("items", []))
    console = _console()
    wide = console.width >= 120
    table = _list_table(_plural(len(items), "decision"))
    if wide:
        table.add_column("lsn", justify="right", no_wrap=True)
    table.add_column("at", no_wrap=True)
    table.add_column("by", overflow="fold")
    table.add_column("action", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("detail", overflow="fold", min_width=16)
    for it in items:
        detail = it.get("detail")
        if isinstance(detail, dict):
            detail = {k: v for k, v in detail.items() if k not in ("id", "agent_id") and v != ""}
        at = str(it.get("at") or "")[: 19 if wide else 16].replace("T", " ")
        row = [_cell(at), _cell(it.get("by")), _cell(it.get("action")),
               _cell(str(it.get("target") or "")[: 16 if wide else 8]), _cell(detail)]  # fmt: skip
        table.add_row(*([_cell(it.get("lsn"))] if wide else []), *row)
    console.print(table)


@admin.command()
@click.argument("agent_id")
@admin_options
def agent(opts: Options, agent_id: str) -> None:
    """An agent's trust score, write counts, allowlist and breaker state."""
    with connect(opts, admin=False) as api:
        data = api.get(f"/v1/agents/{_seg(agent_id)}")
    if opts.as_json:
        _print_json(data)
        return
    pairs: list[tuple[str, Any]] = [
        (k, data.get(k)) for k in ("agent_id", "trust", "trusted", "quarantine_pending")
    ]
    counts = data.get("counts")
    if isinstance(counts, dict):
        pairs += [(f"{k}", v) for k, v in counts.items()]
    pairs += [(k, data.get(k)) for k in ("first_seen", "last_seen", "allowlisted")]
    cb = data.get("circuit_breaker")
    if isinstance(cb, dict):
        pairs.append(("breaker", cb.get("state")))
        pairs += [(f"breaker {k}", cb.get(k)) for k in ("reason", "until") if cb.get(k)]
    elif cb is not None:
        pairs.append(("breaker", cb))
    _console().print(_fields_table(pairs))


COMMANDS: list[click.Command] = [admin]

__all__ = ["COMMANDS", "make_client", "resolve_token"]
