"""``stemedb admin retract | audit``: decisions on assertions, and the record of every
decision."""

from __future__ import annotations

import click

from ..output import brief_cell, list_table, plural, print_json
from .common import Options, admin_api, admin_options, answer, stdout_console


@click.command()
@click.argument("assertion_id")
@click.option("--reason", required=True, help="Why; kept in the audit log.")
@admin_options
def retract(opts: Options, assertion_id: str, reason: str) -> None:
    """Retract any agent's active assertion: it stays readable as retracted, leaves
    beliefs and search, and counts as its agent's retraction."""
    with admin_api(opts) as admin:
        data = admin.retract(assertion_id, reason)
    answer(opts, data, f"retracted {data.get('id', assertion_id)} of agent "
                       f"{str(data.get('agent_id', ''))[:16]} at lsn {data.get('lsn')}")


# -- audit ------------------------------------------------------------------------------


@click.command()
@click.option("--target", help="Only decisions about this quarantine item or agent id.")
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
        row = [brief_cell(at), brief_cell(it.get("by")), brief_cell(it.get("action")),
               brief_cell(str(it.get("target") or "")[: 16 if wide else 8]), brief_cell(detail)]  # fmt: skip
        table.add_row(*([brief_cell(it.get("lsn"))] if wide else []), *row)
    console.print(table)
