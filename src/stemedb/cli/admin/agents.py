"""``stemedb admin agent``: what is known of an agent (``agent AGENT``, the same as
``agent show AGENT``), and the enrollment of agent keys: ``list``, ``enroll``, ``revoke``."""

from __future__ import annotations

from typing import Any

import click

from ..output import brief_cell, list_table, plural, print_json, short_time
from .common import (
    Options,
    admin_api,
    admin_options,
    agent_cell,
    answer,
    connect,
    fields,
    stdout_console,
)


class _AgentGroup(click.Group):
    """``agent AGENT`` stays short for ``agent show AGENT``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and "--help" not in args and not any(a in self.commands for a in args):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_AgentGroup)
def agent() -> None:
    """An agent's standing (agent AGENT), and which keys may write: list, enroll, revoke."""


@agent.command("show")
@click.argument("agent_id")
@admin_options
def agent_show(opts: Options, agent_id: str) -> None:
    """An agent's trust score, write counts, allowlist, breaker and enrollment."""
    with connect(opts, admin=False) as client:
        data = client.agent(agent_id.strip())
    if opts.as_json:
        print_json(data)
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
    pairs += [(k, data.get(k)) for k in ("enrollment", "namespaces", "revoked_at",
                                         "revoked_lsn", "revocation_reason")]
    stdout_console().print(fields(pairs))


@agent.command("list")
@click.option("--revoked", "only", flag_value="revoked", help="Only revoked keys.")
@click.option("--enrolled", "only", flag_value="enrolled", help="Only enrolled keys.")
@admin_options
def agent_list(opts: Options, only: str | None) -> None:
    """Every enrolled or revoked key, with its namespaces, note, who and when."""
    with admin_api(opts) as admin:
        data = admin.agents()
    items = list(data.get("agents", []))
    if only:
        items = [a for a in items if a.get("enrollment") == only]
        data = {**data, "agents": items}
    if opts.as_json:
        print_json(data)
        return
    console = stdout_console()
    wide = console.width >= 120
    table = list_table(plural(len(items), "agent key") + f" (enrollment: {data.get('enrollment')})")
    table.add_column("agent", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("namespaces", overflow="fold")
    table.add_column("since", no_wrap=True)
    if wide:
        table.add_column("by", overflow="fold")
    table.add_column("note / reason", overflow="fold")
    for a in items:
        revoked = a.get("enrollment") == "revoked"
        since = short_time(a.get("revoked_at") if revoked else a.get("enrolled_at"))
        row = [agent_cell(a.get("agent_id"), console), brief_cell(a.get("enrollment")),
               brief_cell(", ".join(a.get("namespaces") or []) or "-"), brief_cell(since)]
        if wide:
            row.append(brief_cell(a.get("revoked_by") if revoked else a.get("enrolled_by")))
        row.append(brief_cell(a.get("reason") if revoked else a.get("note")))
        table.add_row(*row)
    console.print(table)


@agent.command("enroll")
@click.argument("agent_id")
@click.option("--namespace", "namespaces", multiple=True, metavar="NS",
              help="A namespace the key may write into (repeat for more; * for all). "
                   "At least one is required.")  # fmt: skip
@click.option("--note", help="Whose key this is; kept with the enrollment.")
@admin_options
def agent_enroll(opts: Options, agent_id: str, namespaces: tuple[str, ...],
                 note: str | None) -> None:
    """Enroll a key into its namespaces, or replace the namespaces of an enrolled one."""
    with admin_api(opts) as admin:
        data = admin.enroll(agent_id, namespaces, note)
    answer(opts, data, f"enrolled {data.get('agent_id', agent_id)} into "
                       f"{', '.join(data.get('namespaces') or [])} at lsn {data.get('lsn')}")


@agent.command("revoke")
@click.argument("agent_id")
@click.option("--reason", required=True, help="Why, e.g. key leaked; kept in the journal.")
@admin_options
def agent_revoke(opts: Options, agent_id: str, reason: str) -> None:
    """Revoke a key for good: its writes are refused and its assertions leave beliefs
    and disputes from now on (answers as_of an earlier time are unchanged)."""
    with admin_api(opts) as admin:
        data = admin.revoke(agent_id, reason)
    answer(opts, data, f"revoked {data.get('agent_id', agent_id)} at lsn "
                       f"{data.get('revoked_lsn')}")
