"""The ``stemedb`` command: one module per command group, each command a thin call."""

from __future__ import annotations

import click

from ..version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stemedb")
def main() -> None:
    """StemeDB: an epistemic database for AI agents."""


# Command modules, in help order. Each exposes COMMANDS, a list of click commands.
_MODULES = ("server_cmds", "client_cmds", "beliefs_cmds", "mcp_cmds", "admin_cmds", "ops_cmds",
            "cluster_cmds")


def _register() -> None:
    import importlib

    for name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            continue
        for command in module.COMMANDS:
            main.add_command(command)


_register()
