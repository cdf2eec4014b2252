"""``stemedb admin token``: create (the secret is printed once), list, revoke."""

from __future__ import annotations

import click

from ..output import brief_cell, cell, list_table, plural, print_json, short_time
from .common import Options, admin_api, admin_options, answer, stdout_console


@click.group()
def token() -> None:
    """Scoped API tokens (read, review, admin): create, list, revoke."""


@token.command("create")
@click.option("--name", required=True, help="Who or what holds it, e.g. alice or ingest-bot; "
              "unique among live tokens, recorded on every decision it makes.")
@click.option("--scope", required=True, type=click.Choice(["read", "review", "admin"]),
              help="read: the read routes; review: also the quarantine and the dashboard; "
              "admin: everything.")
@click.option("--namespace", "namespaces", multiple=True, metavar="NS", required=True,
              help="A namespace it may read (repeat for several; '*' for all). Required: "
              "no grant is implied.")
@click.option("--expires", metavar="WHEN",
              help="An RFC 3339 time or a duration from now: 90m, 12h, 30d, 2w "
              "(default: never).")
@admin_options
def token_create(opts: Options, name: str, scope: str, namespaces: tuple[str, ...],
                 expires: str | None) -> None:  # fmt: skip
    """Create a token and print its secret: the only time it is shown."""
    with admin_api(opts) as admin:
        data = admin.create_token(name, scope,  # type: ignore[arg-type]
                                  namespaces=list(namespaces), expires=expires)
    if opts.as_json:
        print_json(data)
        return
    click.echo(data["token"])
    grants = ", ".join(data.get("namespaces") or [])
    click.echo(f"token {data['name']}: scope {data['scope']}, namespaces {grants}, expires "
               f"{data.get('expires_at') or 'never'}. The secret above is shown only now; "
               "store it safely.", err=True)


@token.command("list")
@admin_options
def token_list(opts: Options) -> None:
    """Every token: name, scope, namespaces, status, expiry, last use (never a secret)."""
    with admin_api(opts) as admin:
        data = admin.tokens()
    if opts.as_json:
        print_json(data)
        return
    items = list(data.get("tokens", []))
    console = stdout_console()
    table = list_table(plural(len(items), "token"))
    for column in ("name", "scope", "status", "expires", "last used"):
        table.add_column(column, no_wrap=True)
    table.add_column("namespaces", overflow="fold")
    for t in items:
        table.add_row(brief_cell(t.get("name")), brief_cell(t.get("scope")),
                      brief_cell(t.get("status")), cell(short_time(t.get("expires_at"))),
                      cell(short_time(t.get("last_used_at"))),
                      brief_cell(", ".join(t.get("namespaces") or [])))
    console.print(table)


@token.command("revoke")
@click.argument("name")
@click.option("--reason", help="Why; kept in the audit log.")
@admin_options
def token_revoke(opts: Options, name: str, reason: str | None) -> None:
    """Revoke a token: every request with it is refused (401) from now on, on every
    node, and dashboard sessions it signed in end."""
    with admin_api(opts) as admin:
        data = admin.revoke_token(name, reason)
    answer(opts, data, f"revoked token {data.get('name', name)}")
