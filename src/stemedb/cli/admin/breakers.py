"""``stemedb admin breaker``: list, show, open (ban an agent), reset (unban)."""

from __future__ import annotations

import click
from rich.text import Text

from ..output import brief_cell, cell, list_table, plural, print_json, short_id, short_time
from .common import Options, admin_api, admin_options, answer, fields, stdout_console


@click.group()
def breaker() -> None:
    """Per-agent circuit breakers: list, show, open (ban an agent), reset (unban)."""


_BREAKER_FIELDS = ("agent_id", "state", "failure_rate", "requests", "reason", "opened_at", "until")


@breaker.command("list")
@click.option("--state", type=click.Choice(["OPEN", "HALF_OPEN", "CLOSED"], case_sensitive=False),
              help="Only breakers in this state.")  # fmt: skip
@admin_options
def breaker_list(opts: Options, state: str | None) -> None:
    """Every agent with a breaker state, OPEN ones first."""
    with admin_api(opts) as admin:
        data = admin.breakers()
    items = list(data.get("circuit_breakers", []))
    if state:
        items = [b for b in items if str(b.get("state", "")).upper() == state.upper()]
        data = {**data, "circuit_breakers": items}
    if opts.as_json:
        print_json(data)
        return
    console = stdout_console()
    wide = console.width >= 120
    # The width a time needs: to the second on a wide terminal, to the minute on 80 columns.
    clock = 19 if wide else 16
    table = list_table(plural(len(items), "circuit breaker"))
    table.add_column("agent", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("failure rate", justify="right", no_wrap=True)
    table.add_column("requests", justify="right", no_wrap=True)
    if wide:
        table.add_column("opened", no_wrap=True)
    table.add_column("until", no_wrap=True)
    table.add_column("reason")
    for b in items:
        row = [short_id(b.get("agent_id"), console), brief_cell(b.get("state")),
               _rate(b.get("failure_rate")), brief_cell(b.get("requests"))]  # fmt: skip
        if wide:
            row.append(cell(short_time(b.get("opened_at"))))
        row += [cell((short_time(b.get("until")) or "")[:clock]), brief_cell(b.get("reason"))]
        table.add_row(*row)
    console.print(table)


def _rate(value: object) -> Text:
    """A failure rate (0 to 1) as a percentage."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Text(f"{value * 100:.0f}%")
    return brief_cell(value)


@breaker.command("show")
@click.argument("agent_id")
@admin_options
def breaker_show(opts: Options, agent_id: str) -> None:
    """One agent's breaker (id or a prefix of at least 8 hex characters)."""
    with admin_api(opts) as admin:
        data = admin.breaker(agent_id)
    if opts.as_json:
        print_json(data)
    else:
        stdout_console().print(fields((k, data.get(k)) for k in _BREAKER_FIELDS))


@breaker.command("open")
@click.argument("agent_id")
@click.option("--reason", required=True, help="Why, e.g. flooding_quarantine.")
@click.option("--duration-seconds", required=True, type=click.IntRange(min=1),
              help="How long the ban lasts, e.g. 3600.")  # fmt: skip
@admin_options
def breaker_open(opts: Options, agent_id: str, reason: str, duration_seconds: int) -> None:
    """Ban an agent: its writes answer 429 until the duration passes or a reset."""
    with admin_api(opts) as admin:
        data = admin.open_breaker(agent_id, reason, duration_seconds)
    who = data.get("agent_id", agent_id)
    answer(opts, data, f"opened breaker of {who} until {data.get('until')}")


@breaker.command("reset")
@click.argument("agent_id")
@click.option("--reason", help="Why; kept in the audit log.")
@admin_options
def breaker_reset(opts: Options, agent_id: str, reason: str | None) -> None:
    """Unban an agent: its breaker goes back to CLOSED with a clean window."""
    with admin_api(opts) as admin:
        data = admin.reset_breaker(agent_id, reason)
    answer(opts, data, f"reset breaker of {data.get('agent_id', agent_id)}: {data.get('state')}")
