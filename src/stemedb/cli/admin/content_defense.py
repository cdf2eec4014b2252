"""``stemedb admin allowlist | thresholds``: what content defense lets through."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click
from rich.text import Text

from ..output import brief_cell, cell, list_table, plural, print_json, short_time
from .common import Options, admin_api, admin_options, agent_cell, answer, stdout_console

THRESHOLD_KEYS = (
    "quality_threshold",
    "confidence_threshold",
    "duplicate_lookback_hours",
    "untrusted_confidence_threshold",
)


@click.group()
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
    with admin_api(opts) as admin:
        data = admin.allowlist()
    if opts.as_json:
        print_json(data)
        return
    entries = list(data.get("allowlist", []))
    console = stdout_console()
    clock = 19 if console.width >= 120 else 16  # to the minute on a narrow terminal
    table = list_table(plural(len(entries), "allowlisted agent"))
    for name in ("agent", "expires", "active", "reason", "added by"):
        table.add_column(name, no_wrap=name not in ("reason", "added by"))
    for e in entries:
        table.add_row(agent_cell(e.get("agent_id"), console),
                      cell((short_time(e.get("expires_at")) or "")[:clock]),
                      brief_cell(e.get("active")), brief_cell(e.get("reason")),
                      brief_cell(e.get("added_by")))  # fmt: skip
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
    with admin_api(opts) as admin:
        entry = admin.allow(agent_id, expires, reason)
    until = entry.get("expires_at", expires)
    answer(opts, entry, f"allowlisted {entry.get('agent_id', agent_id)} until {until}")


@allowlist.command("remove")
@click.argument("agent_id")
@admin_options
def allowlist_remove(opts: Options, agent_id: str) -> None:
    """Remove AGENT_ID from the allowlist: its writes are checked again at once."""
    with admin_api(opts) as admin:
        result = admin.disallow(agent_id)
    answer(opts, result, f"removed {result.get('agent_id', agent_id)} from the allowlist")


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


@click.command()
@click.option(
    "--set", "assignments", multiple=True, metavar="KEY=VALUE",
    help=f"Change a threshold at runtime (repeatable): {', '.join(THRESHOLD_KEYS)}.",
)  # fmt: skip
@admin_options
def thresholds(opts: Options, assignments: tuple[str, ...]) -> None:
    """Show the content-defense thresholds, or change them at once (no restart) with --set."""
    values = dict(_parse_assignment(a) for a in assignments)
    with admin_api(opts) as admin:
        data = admin.set_thresholds(values) if values else admin.thresholds()
    if opts.as_json:
        print_json(data)
        return
    table = list_table("content-defense thresholds" + (" (changed)" if values else ""))
    table.add_column("threshold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for key, value in data.items():
        mark = Text(" *" if key in values else "")
        table.add_row(brief_cell(key), Text.assemble(brief_cell(value), mark))
    stdout_console().print(table)
