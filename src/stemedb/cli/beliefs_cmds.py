"""Belief commands: ``beliefs`` and ``disputes``, thin shells over :class:`stemedb.Client`.

Exit codes as in :mod:`stemedb.cli.output`.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .client_cmds import _client, json_option, url_option
from .output import cell, list_table, print_json, short_time, table_console

as_of_option = click.option(
    "--as-of", help="RFC 3339 time or lsn:N: answer as the database stood then."
)


def _num(value: Any) -> Text:
    return Text("" if value is None else f"{float(value):.3f}")


def _short(value: Any, width: int = 8) -> Text:
    return Text(str(value or "")[:width])


def _candidates_table(belief: dict[str, Any], title: Text) -> Table:
    table = list_table(title)
    table.add_column("object", min_width=6)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("strength", justify="right", no_wrap=True)
    table.add_column("agents", justify="right", no_wrap=True)
    table.add_column("evidence groups")
    for c in belief.get("candidates", []):
        groups = ", ".join(
            f"{g['kind']}×{g['agents']} {g['strength']:.2f}" for g in c.get("groups", [])
        )
        table.add_row(
            cell(c.get("object")),
            _num(c.get("score")),
            _num(c.get("strength")),
            Text(str(c.get("agents", ""))),
            Text(groups),
        )
    return table


def _support_table(candidate: dict[str, Any], wide: bool) -> Table:
    """The assertions behind a candidate; the group and record time only on a terminal
    of 110 columns or more, so that the evidence keeps room at 80."""
    title = Text("support for ") + cell(candidate.get("object"))
    table = list_table(title)
    columns = [("id", "left"), ("agent", "left"), ("trust", "right"), ("conf", "right"),
               ("weight", "right"), ("group", "right"), ("recorded", "left"),
               ("evidence", "left")]  # fmt: skip
    shown = [c for c in columns if wide or c[0] not in ("group", "recorded")]
    for name, justify in shown:
        table.add_column(name, justify=justify, no_wrap=name != "evidence")  # type: ignore[arg-type]
    for s in candidate.get("support", []):
        trust = f"{s.get('trust', 0):.3f}" + ("" if s.get("trusted") else " (new)")
        row = {
            "id": _short(s.get("id"), 12),
            "agent": _short(s.get("agent_id")),
            "trust": Text(trust),
            "conf": _num(s.get("confidence")),
            "weight": _num(s.get("weight")),
            "group": Text(str(s.get("group", ""))),
            "recorded": Text(short_time(s.get("recorded_at")) or ""),
            "evidence": Text(" ".join(s.get("evidence") or [])),
        }
        table.add_row(*(row[name] for name, _ in shown))
    return table


def _verdict(belief: dict[str, Any]) -> str:
    if not belief.get("candidates"):
        return "no active claims"
    if belief.get("contested"):
        return f"CONTESTED (contention {belief.get('contention', 0):.2f})"
    return "not contested"


def _print_belief(
    console: Console, subject: str, belief: dict[str, Any], as_of: Any, show_support: bool
) -> None:
    # Text, never markup: subjects and predicates are untrusted content.
    title = Text(f"{subject} · {belief.get('predicate')} — {_verdict(belief)} (as of LSN {as_of})")
    console.print(_candidates_table(belief, title))
    if show_support:
        for c in belief.get("candidates", []):
            console.print(_support_table(c, wide=console.width >= 110))


@click.command()
@click.argument("subject")
@click.argument("predicate", required=False)
@click.option("--context", help="Only claims in this context ('' = claims without one).")
@as_of_option
@click.option("--valid-at", help="RFC 3339 time: only claims that hold then in the world.")
@click.option(
    "--support",
    "show_support",
    is_flag=True,
    help="Also list the assertions behind each candidate.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Predicates per page (SUBJECT alone).")
@click.option("--cursor", help="Continue from a previous page.")
@url_option
@json_option
def beliefs(
    subject: str,
    predicate: str | None,
    context: str | None,
    as_of: str | None,
    valid_at: str | None,
    show_support: bool,
    limit: int | None,
    cursor: str | None,
    url: str,
    as_json: bool,
) -> None:
    """What is believed about SUBJECT (one PREDICATE, or every predicate): each distinct
    object with its trust-weighted score, and whether it is contested."""
    with _client(url) as client:
        answer = client.beliefs(
            subject, predicate=predicate, context=context, as_of=as_of, valid_at=valid_at,
            limit=limit, cursor=cursor,
        )
    if as_json:
        print_json(answer)
        return
    console = Console()
    lsn = answer.get("as_of_lsn")
    items = [answer] if "candidates" in answer else list(answer.get("beliefs", []))
    if not items or not any(b.get("candidates") for b in items):
        click.echo(
            f"nothing is believed about {subject!r}"
            + (f" / {predicate!r}" if predicate else "")
            + f" (as of LSN {lsn})"
        )
        return
    for b in items:
        _print_belief(console, answer.get("subject", subject), b, lsn, show_support)
    if answer.get("next_cursor"):
        click.echo(f"more predicates: --cursor {answer['next_cursor']}", err=True)


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.0f}s"


def _candidate_cell(c: dict[str, Any] | None) -> Text:
    if c is None:
        return Text("")
    return cell(c.get("object")) + Text(f"  {c.get('score', 0):.2f} ({c.get('agents')})")


@click.command()
@click.option("--limit", type=click.IntRange(1, 1000), help="Disputes per page.")
@click.option("--cursor", help="Continue from a previous page.")
@click.option("--subject", help="Only disputes about this subject.")
@click.option("--predicate", help="Only disputes on this predicate.")
@as_of_option
@url_option
@json_option
def disputes(
    limit: int | None,
    cursor: str | None,
    subject: str | None,
    predicate: str | None,
    as_of: str | None,
    url: str,
    as_json: bool,
) -> None:
    """Contested subject/predicate pairs, most contested first."""
    with _client(url) as client:
        page = client.disputes(
            limit=limit, cursor=cursor, subject=subject, predicate=predicate, as_of=as_of
        )
    if as_json:
        print_json(page)
        return
    items = list(page.get("items", []))
    title = (
        f"{len(items)} dispute{'' if len(items) == 1 else 's'}"
        f" of {page.get('total', len(items))} (as of LSN {page.get('as_of_lsn')})"
    )
    console = table_console()
    # 80 columns: what is disputed, how much and the two leading objects; wider
    # terminals add how many other objects there are and how long it has been open.
    wide = console.width >= 110
    table = list_table(title)
    for name in ("subject", "predicate", "context"):
        table.add_column(name, min_width=len(name))
    table.add_column("contention", justify="right", no_wrap=True)
    table.add_column("leading (score, agents)")
    table.add_column("runner-up (score, agents)")
    if wide:
        table.add_column("others", justify="right", no_wrap=True)
        table.add_column("open for", justify="right", no_wrap=True)
    for d in items:
        cands = list(d.get("candidates", []))
        row = [
            cell(d.get("subject")),
            cell(d.get("predicate")),
            cell(d.get("context")),
            _num(d.get("contention")),
            _candidate_cell(cands[0] if cands else None),
            _candidate_cell(cands[1] if len(cands) > 1 else None),
        ]
        if wide:
            row += [Text(str(max(0, len(cands) - 2))), Text(_duration(d.get("open_for_seconds")))]
        table.add_row(*row)
    console.print(table)
    if page.get("next_cursor"):
        click.echo(f"more results: --cursor {page['next_cursor']}", err=True)


COMMANDS: list[click.Command] = [beliefs, disputes]

__all__ = ["COMMANDS"]
