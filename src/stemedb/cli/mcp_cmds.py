"""``stemedb mcp``: the MCP server for agents (stdio, or streamable HTTP with ``--http``).

The ``mcp`` SDK is an optional extra, imported only when the command runs, so the rest
of the command line works without it.
"""

from __future__ import annotations

import anyio
import click

from .client_cmds import _load_key, plain_url_option
from .output import EXIT_USAGE, fail

MIN_TOKEN_LENGTH = 16


@click.command("mcp")
@click.option(
    "--key",
    "key_path",
    required=True,
    envvar="STEMEDB_AGENT_KEY",
    type=click.Path(exists=True, dir_okay=False),
    help="Agent key file (PEM or hex) that signs every write (env STEMEDB_AGENT_KEY).",
)
@plain_url_option
@click.option(
    "--api-token",
    envvar="STEMEDB_TOKEN",
    help="StemeDB API token the tools read with (env STEMEDB_TOKEN); needed when the "
    "server's reads need one ([auth] read = token).",
)
@click.option("--http", "http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --http: address.")
@click.option("--port", default=18189, show_default=True, type=int, help="With --http: port.")
@click.option(
    "--token",
    envvar="STEMEDB_MCP_TOKEN",
    help="With --http: the bearer token clients must send (env STEMEDB_MCP_TOKEN; "
    f"at least {MIN_TOKEN_LENGTH} characters, e.g. from `openssl rand -hex 32`).",
)
def mcp_cmd(key_path: str, url: str, api_token: str | None, http: bool, host: str, port: int,
            token: str | None) -> None:
    """Serve StemeDB's tools to an MCP client: assert, get, query, search, beliefs,
    disputes, retract.

    Runs beside the agent, so the key never leaves its host: writes are signed here.
    Over stdio by default (the MCP client starts this command); with --http, on
    http://HOST:PORT/mcp behind a bearer token.
    """
    key = _load_key(key_path)
    if http and len(token or "") < MIN_TOKEN_LENGTH:
        fail(
            f"--http needs --token (or STEMEDB_MCP_TOKEN) of at least {MIN_TOKEN_LENGTH} "
            "characters",
            EXIT_USAGE,
            hint="generate one with `openssl rand -hex 32` and give it to the MCP client",
        )
    try:
        from ..integrations import mcp_server
    except ModuleNotFoundError as e:
        fail(f"{e}: the MCP server is the optional extra stemedb[mcp]", EXIT_USAGE,
             hint="pip install 'stemedb[mcp]'")  # fmt: skip
    client = mcp_server.make_client(url, key, api_token)
    if http:
        assert token is not None
        click.echo(f"stemedb mcp: serving http://{host}:{port}/mcp as agent {key.agent_id}",
                   err=True)  # fmt: skip
        anyio.run(lambda: mcp_server.serve_http(client, key.agent_id, token=token, host=host,
                                                port=port))  # fmt: skip
    else:
        # stdout is the protocol channel: nothing else may be written to it.
        anyio.run(mcp_server.serve_stdio, client, key.agent_id)


COMMANDS = [mcp_cmd]
