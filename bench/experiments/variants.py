"""The features an A/B can take out, each as the collaborators or arguments StemeDB takes:

- ``metrics``: the API app built ``with_metrics=False`` (``server.run`` passes it on): no
  middleware, events, commit listener or ``/metrics`` route;
- ``defense``: the engine opened with ``AcceptAllGate`` as its content-defense gate;
- ``nothing``: everything in (the "on" side starts through the same launcher).

``run_options`` gives them to ``server.run`` (``variant_server``); the in-process A/B
(``ab.Side``) takes ``open_without_defense`` and ``app_without_metrics``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from stemedb.engine import Database
from stemedb.errors import StemeError
from stemedb.gate import DefenseGate, Known, Verdict
from stemedb.http import create_app
from stemedb.model import Assertion
from stemedb.store import NonceKey

FEATURES = ("metrics", "defense", "nothing")


class AcceptAllGate(DefenseGate):
    """Content defense taken out: every write is accepted without looking (no allowlist,
    duplicate, trust or quality work), and a single write's one index read is its nonce
    lookup alone (no duplicate lookup). Compare with writes the defense accepts, so both
    sides store the same rows."""

    def facts_many(self, items: Sequence[Assertion],
                   ) -> list[tuple[dict[NonceKey, tuple[str, str]], Known]]:
        seen = self.reads.writes_by_nonce([(a.agent_id, a.nonce) for a in items])
        return [({(a.agent_id, a.nonce): seen[(a.agent_id, a.nonce)]}
                 if (a.agent_id, a.nonce) in seen else {}, Known([], set(), None))
                for a in items]

    def verdicts(self, items: Sequence[Assertion], known: Known | None = None,
                 ) -> list[Verdict | StemeError]:
        return [None] * len(items)


open_without_defense = functools.partial(Database, defense=AcceptAllGate)


def app_without_metrics(database: Database) -> Any:
    # The in-process A/B closes the database after its run; the app must not close it first.
    return create_app(database, close_on_shutdown=False, with_metrics=False)


def run_options(without: str) -> dict[str, Any]:
    """``stemedb.server.run``'s keyword arguments for a server with ``without`` out."""
    if without not in FEATURES:
        raise ValueError(f"unknown feature {without!r}; one of {', '.join(FEATURES)}")
    if without == "defense":
        return {"open_database": open_without_defense}
    if without == "metrics":
        return {"with_metrics": False}
    return {}
