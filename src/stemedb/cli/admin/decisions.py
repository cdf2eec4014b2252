"""``stemedb admin retract | audit``: decisions on assertions, and the record of every
decision."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.text import Text

from ..output import brief_cell, list_table, plural, print_json, resolve_assertion_id, short_id
from .common import Options, admin_api, admin_options, answer, connect, stdout_console


@click.command()
@click.argument("assertion_id")
@click.option("--reason", required=True, help="Why; kept in the audit log.")
@admin_options
def retract(opts: Options, assertion_id: str, reason: str) -> None:
    """Retract any agent's active assertion: it stays readable as retracted, leaves
    beliefs and search, and counts as its agent's retraction."""
    with connect(opts) as client:
        full = resolve_assertion_id(client, assertion_id)
        data = client.admin.acting_as(opts.actor).retract(full, reason)
    answer(opts, data, f"retracted {data.get('id', assertion_id)} of agent "
                       f"{str(data.get('agent_id', ''))[:16]} at lsn {data.get('lsn')}")


# -- audit ------------------------------------------------------------------------------


@click.command()
@click.option("--target", help="Only decisions about this quarantine item or agent id "
              "(or ids starting with a prefix of at least 8 hex characters).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@admin_options
def audit(opts: Options, target: str | None, limit: int) -> None:
    """Admin decisions, newest first: who did what, when and why."""
    with admin_api(opts) as admin:
        data = admin.audit(target=target, limit=limit)
    if opts.as_json:
        print_json(data)
        return
    items = list(data.get("items", []))
    console = stdout_console()
    wide = console.width >= 120
    table = list_table(plural(len(items), "decision"))
    # 80 columns: who acted goes under when, so that the detail keeps room.
    if wide:
        table.add_column("lsn", justify="right", no_wrap=True)
        table.add_column("at", no_wrap=True)
        table.add_column("by")
    else:
        table.add_column("at / by", max_width=16)  # the time to the minute is 16 wide
    table.add_column("action", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("detail")
    for it in items:
        at = str(it.get("at") or "")[: 19 if wide else 16].replace("T", " ")
        aim = short_id(it.get("target"), console, wide_at=10_000, length=16 if wide else 12)
        if wide:
            first = [brief_cell(it.get("lsn")), brief_cell(at), brief_cell(it.get("by"))]
        else:
            first = [Text.assemble(at, "\n", brief_cell(it.get("by")))]
        table.add_row(*first, brief_cell(it.get("action")), aim, Text(_detail(it.get("detail"))))
    console.print(table)


def _detail(detail: Any) -> str:
    """``key: value; …`` for a person (the target's ids are in their own column): words
    a table can wrap, where JSON would be one long word."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    parts = []
    for k, v in detail.items():
        if k in ("id", "agent_id", "expires_us") or v in ("", None):
            continue
        text = v if isinstance(v, str) else orjson.dumps(v).decode()
        parts.append(f"{k}: {text}")
    return "; ".join(parts)

