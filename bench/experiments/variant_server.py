"""``stemedb serve`` with one feature taken out, for the A/B figures through HTTP
(``bench/experiments/ab_http.py``).

Run: ``python -m bench.experiments.variant_server --without metrics|defense|nothing
serve ARGS...``.
Both sides of an A/B start through this launcher (``nothing`` takes nothing out), so they
differ only in the feature:

- ``metrics``: the API app is built ``create_app(with_metrics=False)``: no middleware,
  hooks, commit listener or ``/metrics`` route;
- ``defense``: the content-defense gate accepts every write without looking (no
  allowlist, duplicate, trust or quality work) and a single write's combined index read
  is the nonce lookup alone (no duplicate lookup). Use with writes the defense
  accepts, so both sides store the same rows.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

FEATURES = ("metrics", "defense", "nothing")


def bypass_defense() -> Callable[[], None]:
    """Takes content defense out of the write path; returns what puts it back."""
    from stemedb.gate import DefenseGate
    from stemedb.index import lookups

    verdicts, facts = DefenseGate.verdicts, lookups.assertion_facts

    def accept_all(self: Any, items: Sequence[Any], known: Any = None) -> list[None]:
        return [None] * len(items)

    def nonce_only(store: Any, nonce: str, key: Any, since_us: int) -> Any:
        return lookups.writes_by_nonce(store, [(key[0], nonce)]), set()

    DefenseGate.verdicts = accept_all  # type: ignore[method-assign,assignment]
    lookups.assertion_facts = nonce_only

    def undo() -> None:
        DefenseGate.verdicts = verdicts  # type: ignore[method-assign]
        lookups.assertion_facts = facts

    return undo


def without_metrics() -> None:
    """Makes ``stemedb serve`` build its API app without metrics."""
    from stemedb import server
    from stemedb.http import create_app

    server.create_app = functools.partial(create_app, with_metrics=False)  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "--without" or argv[1] not in FEATURES:
        raise SystemExit(f"usage: python -m bench.experiments.variant_server --without "
                         f"{'|'.join(FEATURES)} serve ARGS...")
    if argv[1] == "metrics":
        without_metrics()
    elif argv[1] == "defense":
        bypass_defense()
    from stemedb.cli import main as cli

    cli(argv[2:], prog_name="stemedb")


if __name__ == "__main__":
    main(sys.argv[1:])
