"""Client commands: ``keygen``, ``assert``, ``get``, ``query``, ``search``.

Each command is a thin shell over :class:`stemedb.Client`; exit codes as in
:mod:`stemedb.cli.output`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from ..client import DEFAULT_URL, Client, build_assertion, format_timestamp, new_nonce
from ..signing import AgentKey
from .output import (
    CLI_MAX_RETRY_AFTER,
    api_errors,
    cell,
    fail,
    fields_table,
    json_flag,
    list_table,
    print_json,
    resolve_agent_id,
    resolve_assertion_id,
    short_time,
)


def make_client(url: str, key: AgentKey | None = None, token: str | None = None) -> Client:
    """The client every command uses; tests replace it to plug in a transport. Without
    ``token`` the client takes ``STEMEDB_TOKEN`` from the environment."""
    return Client(url, key, token=token, max_retry_after=CLI_MAX_RETRY_AFTER)


TOKEN_META = "stemedb.token"  # where --token leaves its value (click's ctx.meta)


def _keep_token(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[TOKEN_META] = value


_url = click.option(
    "--url",
    envvar="STEMEDB_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Server URL (env STEMEDB_URL).",
)
_token = click.option(
    "--token",
    envvar="STEMEDB_TOKEN",
    expose_value=False,
    callback=_keep_token,
    help="API token for reads (env STEMEDB_TOKEN); needed when the server's reads need "
    "one ([auth] read = token).",
)


def url_option(func: Any) -> Any:
    """``--url`` and ``--token`` (the token reaches the client through the context)."""
    return _url(_token(func))


plain_url_option = _url  # for a command whose --token means something else (mcp)
json_option = json_flag()


# -- helpers -------------------------------------------------------------------------------


@contextmanager
def _client(url: str, key: AgentKey | None = None) -> Iterator[Client]:
    """A client whose errors become a message on stderr and an exit code, with the
    command's ``--token`` if it got one."""
    ctx = click.get_current_context(silent=True)
    token = ctx.meta.get(TOKEN_META) if ctx is not None else None
    with api_errors(), (make_client(url, key, token) if token else make_client(url, key)
                        ) as client:
        yield client


def _load_key(path: str) -> AgentKey:
    try:
        return AgentKey.load(path)
    except (OSError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--key") from None


def _json_value(text: str) -> Any:
    """A JSON value if ``text`` parses as one, else the text itself."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _field(item: dict[str, Any], name: str) -> Any:
    """A field of a read answer, whether flat, nested under ``assertion`` or in ``body``."""
    if name in item:
        return item[name]
    nested = item.get("assertion")
    if isinstance(nested, dict) and name in nested:
        return nested[name]
    body = item.get("body")
    if isinstance(body, str):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if isinstance(parsed, dict):
            return parsed.get(name)
    return None


_RECORD_ORDER = (
    "id",
    "status",
    "subject",
    "predicate",
    "object",
    "confidence",
    "evidence",
    "context",
    "valid_from",
    "valid_until",
    "supersedes",
    "agent_id",
    "timestamp",
    "nonce",
    "lsn",
    "recorded_at",
)


def _record_table(item: dict[str, Any]) -> Table:
    table = fields_table()
    shown = set()
    for name in _RECORD_ORDER:
        value = _field(item, name)
        if value is not None:
            table.add_row(name, cell(value))
            shown.add(name)
    for name, value in item.items():
        if name not in shown and name != "assertion":
            table.add_row(name, cell(value))
    return table


def _items_table(items: Iterable[dict[str, Any]], title: str, wide: bool) -> Table:
    table = list_table(title)
    table.add_column("id", no_wrap=True)
    for name in ("subject", "predicate", "object"):
        table.add_column(name, min_width=len(name))
    table.add_column("conf", justify="right", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("recorded", no_wrap=True)
    for item in items:
        recorded = _field(item, "recorded_at") or _field(item, "timestamp")
        row = [
            cell(str(_field(item, "id") or "")[:12]),
            cell(_field(item, "subject")),
            cell(_field(item, "predicate")),
            cell(_field(item, "object")),
            cell(_field(item, "confidence")),
            cell(str(_field(item, "agent_id") or "")[:8]),
            cell(_field(item, "status")),
            # Second precision is enough to scan a list; `get` shows the full value.
            cell(short_time(recorded)),
        ]
        table.add_row(*(row if wide else row[:-1]))
    return table


def _print_page(page: dict[str, Any], as_json: bool, noun: tuple[str, str]) -> None:
    if as_json:
        print_json(page)
        return
    items = list(page.get("items", []))
    console = Console()
    title = f"{len(items)} {noun[0] if len(items) == 1 else noun[1]}"
    console.print(_items_table(items, title, wide=console.width >= 110))
    if page.get("next_cursor"):
        click.echo(f"more results: --cursor {page['next_cursor']}", err=True)


# -- commands ------------------------------------------------------------------------------


@click.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Key file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pem", "hex"]),
    default="pem",
    show_default=True,
    help="PKCS#8 PEM (openssl-compatible) or the 32-byte seed as hex.",
)
def keygen(out: str, fmt: str) -> None:
    """Create a new agent key (mode 0600) and print its agent id."""
    key = AgentKey.generate()
    try:
        key.save(out, fmt=fmt)
    except FileExistsError:
        fail(f"{out} already exists; refusing to overwrite a key")
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror or e}")
    click.echo(key.agent_id)


def _body_from_file(stream: IO[bytes], key: AgentKey) -> bytes:
    """The file's JSON object with agent_id, timestamp and nonce filled in if absent.

    A complete file is sent byte for byte, so its id is the SHA-256 of the file.
    """
    raw = stream.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise click.BadParameter(f"not valid JSON: {e}", param_hint="--file") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must hold a JSON object", param_hint="--file")
    if data.get("agent_id", key.agent_id) != key.agent_id:
        raise click.BadParameter(
            f"agent_id {data['agent_id']!r} in the file is not the key's ({key.agent_id})",
            param_hint="--file",
        )
    if all(f in data for f in ("agent_id", "timestamp", "nonce")):
        return raw
    data.setdefault("agent_id", key.agent_id)
    data.setdefault("timestamp", format_timestamp())
    data.setdefault("nonce", new_nonce())
    return orjson.dumps(data)


@click.command("assert")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Agent key file (PEM or hex).",
)
@url_option
@click.option("--subject")
@click.option("--predicate")
@click.option("--object", "object_", help="Parsed as JSON if it parses, else a string.")
@click.option("--confidence", type=click.FloatRange(0.0, 1.0))
@click.option("--evidence", multiple=True, help="Repeat for several.")
@click.option("--context")
@click.option("--valid-from", help="RFC 3339 time the claim starts to hold.")
@click.option("--valid-until", help="RFC 3339 time the claim stops holding.")
@click.option("--supersedes",
              help="Id (or a unique prefix of 8+ hex) of an earlier assertion of yours this "
              "one replaces.")
@click.option(
    "--file",
    "file",
    type=click.File("rb"),
    help="JSON body ('-' for stdin); agent_id, timestamp and nonce are filled in if absent.",
)
def assert_cmd(
    key_path: str,
    url: str,
    subject: str | None,
    predicate: str | None,
    object_: str | None,
    confidence: float | None,
    evidence: tuple[str, ...],
    context: str | None,
    valid_from: str | None,
    valid_until: str | None,
    supersedes: str | None,
    file: IO[bytes] | None,
) -> None:
    """Sign an assertion and send it; prints the server's answer as JSON."""
    key = _load_key(key_path)
    fields = {"subject": subject, "predicate": predicate, "object": object_}
    optional = (evidence, context, valid_from, valid_until, supersedes)
    if file is not None:
        if any(v is not None for v in (*fields.values(), confidence)) or any(optional):
            raise click.UsageError("--file cannot be combined with the field options")
        body = _body_from_file(file, key)
    elif subject is None or predicate is None or object_ is None or confidence is None:
        missing = [f"--{n}" for n, v in (*fields.items(), ("confidence", confidence)) if v is None]
        raise click.UsageError(f"missing {', '.join(missing)} (or use --file)")
    else:
        if supersedes is not None:
            with _client(url) as client:
                supersedes = resolve_assertion_id(client, supersedes)
        body = build_assertion(
            key,
            subject,
            predicate,
            _json_value(object_),
            confidence,
            evidence=list(evidence) if evidence else None,
            context=context,
            valid_from=valid_from,
            valid_until=valid_until,
            supersedes=supersedes,
        )
    with _client(url, key) as client:
        print_json(client.post_signed(body))


@click.command()
@click.argument("assertion_id")
@url_option
@json_option
def get(assertion_id: str, url: str, as_json: bool) -> None:
    """Show one assertion with its status, provenance and signature (ASSERTION_ID: the
    id, or a unique prefix of at least 8 hex characters)."""
    with _client(url) as client:
        item = client.get(resolve_assertion_id(client, assertion_id))
    if as_json:
        print_json(item)
    else:
        Console().print(_record_table(item))


@click.command()
@click.option("--subject")
@click.option("--predicate")
@click.option("--object", "object_", help="Parsed as JSON if it parses, else a string.")
@click.option("--agent-id")
@click.option("--context")
@click.option("--since", help="RFC 3339 time.")
@click.option("--until", help="RFC 3339 time.")
@click.option("--as-of", help="RFC 3339 time or lsn:N: answer as the database stood then.")
@click.option("--valid-at", help="RFC 3339 time: only claims that hold then in the world.")
@click.option("--include-inactive", is_flag=True, help="Also retracted and superseded ones.")
@click.option("--limit", type=click.IntRange(min=1), help="Page size.")
@click.option("--cursor", help="Continue from a previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Follow cursors to fetch every page.")
@url_option
@json_option
def query(
    subject: str | None,
    predicate: str | None,
    object_: str | None,
    agent_id: str | None,
    context: str | None,
    since: str | None,
    until: str | None,
    as_of: str | None,
    valid_at: str | None,
    include_inactive: bool,
    limit: int | None,
    cursor: str | None,
    all_pages: bool,
    url: str,
    as_json: bool,
) -> None:
    """List assertions matching the filters, newest first (--agent-id: an agent id or a
    unique prefix of at least 8 hex characters)."""
    with _client(url) as client:
        if agent_id is not None:
            agent_id = resolve_agent_id(client, agent_id)
        kw: dict[str, Any] = {
            "subject": subject,
            "predicate": predicate,
            "object": _json_value(object_) if object_ is not None else None,
            "agent_id": agent_id,
            "context": context,
            "since": since,
            "until": until,
            "as_of": as_of,
            "valid_at": valid_at,
            "include_inactive": include_inactive or None,
            "limit": limit,
            "cursor": cursor,
        }
        if all_pages:
            page = {"items": list(client.iter_query(**kw)), "next_cursor": None}
        else:
            page = client.query(**kw)
    _print_page(page, as_json, ("assertion", "assertions"))


@click.command()
@click.argument("text")
@click.option("--limit", type=click.IntRange(min=1))
@click.option("--cursor", help="Continue from a previous page.")
@url_option
@json_option
def search(text: str, limit: int | None, cursor: str | None, url: str, as_json: bool) -> None:
    """Full-text search over subject, predicate and object (plain words)."""
    with _client(url) as client:
        page = client.search(text, limit=limit, cursor=cursor)
    _print_page(page, as_json, ("match", "matches"))


COMMANDS: list[click.Command] = [keygen, assert_cmd, get, query, search]

__all__ = ["COMMANDS", "make_client"]
