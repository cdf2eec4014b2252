"""The A/B variants serve for real: each ``variant_server`` launch takes out its feature
and nothing else, and the in-process side opens the engine with the variant gate."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.experiments import ab
from bench.experiments.variants import AcceptAllGate, open_without_defense
from bench.servers import StemeServer
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, signed_headers

pytestmark = pytest.mark.integration

# A new agent claiming near-certainty: content defense quarantines it (202).
OVERCONFIDENT = {"confidence": 0.99}


@pytest.mark.parametrize(("without", "metrics", "overconfident"), [
    ("nothing", 200, 202),
    ("metrics", 404, 202),
    ("defense", 200, 201),
])
def test_variant_server(tmp_path: Path, without: str, metrics: int, overconfident: int) -> None:
    key = AgentKey.generate()
    with StemeServer(tmp_path / "data", without=without) as server:
        server.start(timeout=30)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            statuses = []
            for fields in ({}, OVERCONFIDENT):
                body = assertion_body(key, **fields)
                statuses.append(http.post("/v1/assert", content=body,
                                          headers=signed_headers(key, body)).status_code)
            assert statuses == [201, overconfident]
            assert http.get("/metrics").status_code == metrics


def test_inprocess_side_uses_the_variant_gate(tmp_path: Path) -> None:
    from stemedb.settings import load_settings

    db = open_without_defense(load_settings(env=ab.ENV,
                                            overrides={"server.data_dir": str(tmp_path)}))
    try:
        assert type(db.defense) is AcceptAllGate
    finally:
        db.close()
    # Every one of the side's writes must be answered 201, or ``drive`` raises.
    rate, cpu = ab.side(ab.Side(open_database=open_without_defense), "t", writes=20)
    assert rate > 0 and cpu > 0
