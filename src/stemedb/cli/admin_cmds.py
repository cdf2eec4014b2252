"""Admin commands: ``stemedb admin quarantine | allowlist | thresholds | breaker | retract |
audit | agent | token``.

Each command is a thin call to ``client.admin`` (the SDK's admin API, docs/admin.md);
the command groups live in ``cli/admin/``. The admin token is ``STEMEDB_ADMIN_TOKEN`` if
set, else the ``admin.token`` file the server writes into its data directory on first
start (``--data-dir``, env ``STEMEDB_DATA_DIR``, default ``./stemedb-data``). Every
command takes ``--json`` to print the server's answer. Exit codes as in
:mod:`stemedb.cli.output` (no admin token is a usage error, 2).
"""

from __future__ import annotations

import click

from .admin.agents import agent
from .admin.breakers import breaker
from .admin.common import CLIENT_FACTORY, make_client, resolve_token
from .admin.content_defense import allowlist, thresholds
from .admin.decisions import audit, retract
from .admin.quarantine import quarantine
from .admin.tokens import token


@click.group()
@click.pass_context
def admin(ctx: click.Context) -> None:
    """Review quarantine, manage the allowlist, thresholds, circuit breakers and API
    tokens.

    The admin token is read from STEMEDB_ADMIN_TOKEN, else from admin.token in the
    server's data directory (--data-dir, env STEMEDB_DATA_DIR, default ./stemedb-data).
    """
    # Looked up when the group runs, so that tests can swap in a client with a transport.
    ctx.meta[CLIENT_FACTORY] = make_client


for _command in (quarantine, allowlist, thresholds, breaker, retract, audit, agent, token):
    admin.add_command(_command)

COMMANDS: list[click.Command] = [admin]

__all__ = ["COMMANDS", "make_client", "resolve_token"]
