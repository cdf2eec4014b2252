"""``stemedb serve`` with one feature taken out (``variants``), for the A/B figures
through HTTP (``ab_http``).

Run: ``python -m bench.experiments.variant_server --without metrics|defense|nothing
serve --port P --data-dir D [--dashboard-port N] [--host H] [--config C]``. Both sides of
an A/B start through this launcher (``nothing`` takes nothing out), so they differ only in
the feature. Settings resolve as ``stemedb serve``'s do: defaults < TOML < STEMEDB_* env <
these flags.
"""

from __future__ import annotations

import argparse
import sys

from stemedb.server import run
from stemedb.settings import Settings, load_settings

from .variants import FEATURES, run_options

PROG = "python -m bench.experiments.variant_server"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--without", choices=FEATURES, required=True)
    commands = p.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--dashboard-port", type=int)
    serve.add_argument("--data-dir")
    serve.add_argument("--config")
    return p.parse_args(argv)


def settings_of(args: argparse.Namespace) -> Settings:
    flags = {"server.host": args.host, "server.port": args.port,
             "server.dashboard_port": args.dashboard_port, "server.data_dir": args.data_dir}
    return load_settings(args.config, overrides={k: v for k, v in flags.items() if v is not None})


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    run(settings_of(args), **run_options(args.without))


if __name__ == "__main__":
    main(sys.argv[1:])
