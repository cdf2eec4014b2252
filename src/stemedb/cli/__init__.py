"""The ``stemedb`` command: one module per command group, each command a thin call."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stemedb")
def main() -> None:
    """StemeDB: an epistemic database for AI agents."""


def _register() -> None:
    from . import client_cmds, server_cmds

    for module in (server_cmds, client_cmds):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
