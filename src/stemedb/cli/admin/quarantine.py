"""``stemedb admin quarantine``: list, show, approve, reject, note, batch."""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Any, Literal

import click
import orjson
from rich.table import Table
from rich.text import Text

from ...client import QuarantineFilters
from ..output import brief_cell, cell, list_table, plural, print_json, short_time
from .common import Options, admin_api, admin_options, agent_cell, answer, fields, stdout_console

REASONS = ("Duplicate", "LowQuality", "UntrustedHighConfidence")
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("pending", "approved", "rejected", "all")


def _claim(assertion: Any) -> Text:
    if not isinstance(assertion, dict):
        return Text("")
    obj = assertion.get("object")
    obj_text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    text = f"{assertion.get('subject', '')} {assertion.get('predicate', '')} {obj_text}"
    return Text(text if len(text) <= 120 else text[:119] + "…")


@click.group()
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
@click.option("--severity", type=click.Choice(SEVERITIES),
              help="Only this severity (critical: prompt injection or memory poisoning).")
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
    severity: str | None,
    limit: int | None,
    cursor: str | None,
    all_pages: bool,
    by_agent: bool,
    by_reason: bool,
) -> None:
    """List quarantine items, newest first (pending ones unless --status)."""
    if by_agent and by_reason:
        raise click.UsageError("give --by-agent or --by-reason, not both")
    filters: QuarantineFilters = {"agent_id": agent_id, "reason": reason, "status": status,
                                  "severity": severity, "limit": limit, "cursor": cursor}  # fmt: skip
    with admin_api(opts) as admin:
        if all_pages or by_agent or by_reason:
            pages = list(admin.quarantine_pages(**filters))
            items = [item for page in pages for item in page.get("items", [])]
            page = {"items": items, "total": pages[0].get("total", len(items)),
                    "next_cursor": None}  # fmt: skip
        else:
            page = admin.quarantine(**filters)
            items = list(page.get("items", []))
    if by_agent or by_reason:
        key = "agent_id" if by_agent else "reason"
        rows = _group_counts(items, key)
        if opts.as_json:
            print_json(rows)
            return
        console = stdout_console()
        noun = "agent" if by_agent else "reason"
        table = list_table(f"{plural(len(items), 'item')} ({status}) by {noun}")
        table.add_column(noun, no_wrap=True)
        table.add_column("count", justify="right", no_wrap=True)
        if by_agent:
            table.add_column("reasons")
        for group in rows:
            first = agent_cell(group[key], console) if by_agent else brief_cell(group[key])
            cells = [first, brief_cell(group["count"])]
            if by_agent:
                cells.append(brief_cell(", ".join(f"{r} {n}" for r, n in group["reasons"].items())))
            table.add_row(*cells)
        console.print(table)
        return
    if opts.as_json:
        print_json(page)
        return
    console = stdout_console()
    total = page.get("total", len(items))
    title = f"{plural(len(items), 'item')} of {total} ({status})"
    # 80 columns: the item id with its agent below it, the reason with the severity below
    # it, and the claim; wider terminals give the agent, severity, score, top signal and
    # creation time columns of their own.
    wide, medium = console.width >= 140, console.width >= 110
    table = list_table(title)
    if medium:
        for name in ("id", "agent", "severity", "reason", "score", "top signal"):
            table.add_column(name, no_wrap=True, justify="right" if name == "score" else "left")
    else:
        table.add_column("id / agent", no_wrap=True)
        table.add_column("reason / severity", no_wrap=True)
    if status != "pending" and medium:
        table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("created", no_wrap=True)
    table.add_column("claim")
    for item in items:
        agent_id = str(item.get("agent_id") or "")
        sev = _severity_cell(item.get("severity"))
        if medium:
            row: list[Text] = [brief_cell(item.get("id")), brief_cell(agent_id[:12]), sev,
                               brief_cell(item.get("reason")), brief_cell(item.get("score")),
                               brief_cell(item.get("top_signal"))]  # fmt: skip
        else:
            why = Text.assemble(brief_cell(item.get("reason")), "\n", sev)
            if status != "pending":
                why.append(f"\n{item.get('status') or ''}")
            row = [Text.assemble(brief_cell(item.get("id")), "\n", f"agent {agent_id[:8]}"),
                   why]
        if status != "pending" and medium:
            row.append(brief_cell(item.get("status")))
        if wide:
            row.append(cell(short_time(item.get("created_at"))))
        row.append(_claim(item.get("assertion")))
        table.add_row(*row)
    console.print(table)
    if page.get("next_cursor"):
        click.echo(f"more results: --cursor {page['next_cursor']} (or --all)", err=True)


_ITEM_ORDER = ("id", "status", "reason", "severity", "top_signal", "score", "agent_id",
               "assertion_id", "created_at", "decided_at", "decided_by", "decision_reason")  # fmt: skip
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}


def _severity_cell(value: Any) -> Text:
    text = str(value or "")
    return Text(text, style=_SEVERITY_STYLE.get(text, ""))
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
                brief_cell(sig.get("name")), brief_cell(sig.get("amount")), brief_cell(sig.get("detail"))
            )
        else:
            table.add_row(brief_cell(sig), Text(""), Text(""))
    return table


def _print_item(item: dict[str, Any]) -> None:
    console = stdout_console()
    console.print(fields((k, item.get(k)) for k in _ITEM_ORDER))
    signals = item.get("signals")
    if isinstance(signals, list) and signals:
        console.print(Text("\nsignals", style="bold underline"))
        console.print(_signals_table(signals))
    breakdown = item.get("breakdown")
    if isinstance(breakdown, dict):
        rest = {k: v for k, v in breakdown.items() if k not in ("signals", "reason", "score")}
        if rest:
            console.print(Text("\nscore breakdown", style="bold underline"))
            console.print(fields(sorted(rest.items())))
    assertion = item.get("assertion")
    if isinstance(assertion, dict):
        console.print(Text("\nassertion", style="bold underline"))
        console.print(fields((k, assertion.get(k)) for k in _ASSERTION_ORDER))
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
    with admin_api(opts) as admin:
        item = admin.quarantine_item(item_id)
    if opts.as_json:
        print_json(item)
    else:
        _print_item(item)


def _decided(opts: Options, item: dict[str, Any], verb: str) -> None:
    aid = item.get("assertion_id")
    after = {"approved": "is now active", "rejected": "is kept for audit only"}
    line = f"{verb} {item.get('id')}"
    if verb in after and aid:
        line += f" (assertion {aid} {after[verb]})"
    answer(opts, item, line)


@quarantine.command("approve")
@click.argument("item_id")
@click.option("--note", help="Why; kept with the item and in the audit log.")
@admin_options
def quarantine_approve(opts: Options, item_id: str, note: str | None) -> None:
    """Promote an item: its assertion enters the store with its original id and signature."""
    with admin_api(opts) as admin:
        item = admin.approve(item_id, note)
    _decided(opts, item, "approved")


@quarantine.command("reject")
@click.argument("item_id")
@click.option("--reason", help="Why; kept with the item and in the audit log.")
@admin_options
def quarantine_reject(opts: Options, item_id: str, reason: str | None) -> None:
    """Reject an item: kept for audit, never served as knowledge."""
    with admin_api(opts) as admin:
        item = admin.reject(item_id, reason)
    _decided(opts, item, "rejected")


@quarantine.command("note")
@click.argument("item_id")
@click.argument("text")
@admin_options
def quarantine_note(opts: Options, item_id: str, text: str) -> None:
    """Add a note to an item (any status)."""
    if not text.strip():
        raise click.BadParameter("must not be empty", param_hint="TEXT")
    with admin_api(opts) as admin:
        item = admin.add_note(item_id, text)
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
    action: Literal["approve", "reject"],
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
    id_list = _read_ids(ids) if ids else None
    if id_list == []:
        raise click.UsageError("--ids gave no ids")
    with admin_api(opts) as admin:
        result = admin.batch(action, ids=id_list, agent_id=agent_id, reason=reason, note=note)
    if opts.as_json:
        print_json(result)
        return
    status = result.get("status", action)
    target = f" of agent {agent_id}" if agent_id else ""
    click.echo(f"{status} {plural(int(result.get('processed', 0)), 'item')}{target}")
    skipped = result.get("skipped") or []
    if skipped:
        kinds = Counter(str(s.get("status")) for s in skipped if isinstance(s, dict))
        summary = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        click.echo(f"skipped {len(skipped)} ({summary}):", err=True)
        for s in skipped:
            if isinstance(s, dict):
                click.echo(f"  {s.get('id')}  {s.get('status')}", err=True)
