"""Beliefs and disputes against a real server process, through the Client and the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stemedb.client import ApiError, Client
from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path_factory.mktemp("beliefs") / "data").start()
    try:
        yield s
    finally:
        s.stop()


def _admin(s: ServerProcess) -> Client:
    return Client(s.url, admin_token=(s.data_dir / "admin.token").read_text().strip())


_gauge = iter(range(10**6))


def _good_writes(c: Client, n: int) -> None:
    for _ in range(n):
        i = next(_gauge)
        out = c.assert_(
            f"weather station {i}",
            "located_in",
            f"river valley {i % 7}",
            0.8,
            evidence=[f"https://stations.example/{i}"],
        )
        assert out["status"] == "accepted", out


def _approved_writes(c: Client, admin: Client, n: int) -> None:
    """Claims a new agent may not make unreviewed (confidence ≥ 0.95), approved by an admin."""
    for _ in range(n):
        i = next(_gauge)
        out = c.assert_(
            f"lighthouse {i}",
            "located_in",
            f"harbour district {i % 5}",
            0.97,
            evidence=[f"https://lighthouses.example/{i}"],
        )
        assert out["status"] == "quarantined" and out["reason"] == "UntrustedHighConfidence", out
        admin.request(
            "POST",
            f"/v1/admin/quarantine/{out['quarantine_id']}/approve",
            json={"note": "checked against the registry"},
        )


def _key(subject: str, predicate: str) -> dict[str, str]:
    return {"subject": subject, "predicate": predicate}


def test_fifty_fresh_keys_do_not_outweigh_three_trusted_independent_agents(
    srv: ServerProcess,
) -> None:
    admin = _admin(srv)
    honest = [Client(srv.url, AgentKey.generate()) for _ in range(3)]
    _good_writes(honest[0], 5)
    _good_writes(honest[1], 6)
    _approved_writes(honest[2], admin, 3)  # trusted through review: 3 approved + 2 accepted
    _good_writes(honest[2], 2)
    for c in honest:
        assert admin.agent(c.key.agent_id)["trusted"] is True  # type: ignore[union-attr]
    for i, c in enumerate(honest):
        c.assert_(
            "france",
            "capital",
            "Paris",
            0.9,
            evidence=[f"https://source-{i}.example/france/capital"],
        )

    sybils = [Client(srv.url, AgentKey.generate()) for _ in range(50)]
    for i, c in enumerate(sybils):
        evidence = ["https://one-blog.example/post"] if i % 2 else None
        out = c.assert_("france", "capital", "Lyon", 0.9 if evidence else 0.8, evidence=evidence)
        assert out["status"] == "accepted", out

    b = honest[0].beliefs("france", predicate="capital")
    paris, lyon = b["candidates"]
    assert (paris["object"], lyon["object"]) == ("Paris", "Lyon")
    assert paris["score"] > 0.75 > 0.25 > lyon["score"]
    assert (paris["agents"], lyon["agents"]) == (3, 50)
    assert [g["kind"] for g in paris["groups"]] == ["evidence"] * 3
    assert lyon["groups"] == [{"kind": "unproven", "strength": lyon["strength"], "agents": 50}]
    assert not b["contested"]
    assert all(s["trusted"] for s in paris["support"])
    assert not any(s["trusted"] for s in lyon["support"])
    assert {s["id"] for s in paris["support"]} <= {
        i["id"] for i in honest[0].query(subject="france", predicate="capital", limit=100)["items"]
    }
    for c in (admin, *honest, *sybils):
        c.close()


def test_beliefs_follow_supersede_retract_and_approval_at_once(srv: ServerProcess) -> None:
    admin = _admin(srv)
    a, b, late = (Client(srv.url, AgentKey.generate()) for _ in range(3))
    _good_writes(a, 5)
    _good_writes(b, 5)

    def view() -> dict[Any, float]:
        got = a.beliefs("mount everest", predicate="height_m", context="survey")
        return {c["object"]: c["agents"] for c in got["candidates"]}

    first = a.assert_(
        "mount everest",
        "height_m",
        8848,
        0.85,
        context="survey",
        evidence=["https://survey.example/1955"],
    )
    b.assert_(
        "mount everest",
        "height_m",
        8848.0,
        0.85,
        context="survey",
        evidence=["https://survey.example/1999"],
    )
    assert view() == {8848: 2}  # 8848 and 8848.0 are one object
    newer = a.assert_(
        "mount everest",
        "height_m",
        8849,
        0.85,
        context="survey",
        evidence=["https://survey.example/2020"],
        supersedes=first["id"],
    )
    assert view() == {8848: 1, 8849: 1}
    disputes = a.disputes(subject="mount everest")["items"]
    assert [(d["predicate"], d["context"]) for d in disputes] == [("height_m", "survey")]
    with pytest.raises(ApiError) as e:
        b.retract(newer["id"], "not mine to retract")
    assert e.value.status == 403
    a.retract(newer["id"], "measured the snow cap")
    assert view() == {8848: 1}
    assert a.disputes(subject="mount everest")["items"] == []
    q = late.assert_(
        "mount everest",
        "height_m",
        8849,
        0.97,
        context="survey",
        evidence=["https://survey.example/2020-gnss"],
    )
    assert q["status"] == "quarantined"
    assert view() == {8848: 1}
    admin.request("POST", f"/v1/admin/quarantine/{q['quarantine_id']}/approve", json={})
    assert view() == {8848: 1, 8849: 1}
    for c in (admin, a, b, late):
        c.close()


def _cli(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stemedb", *args, "--url", srv.url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_cli_against_the_server(srv: ServerProcess) -> None:
    c = Client(srv.url, AgentKey.generate())
    c.assert_("amazon", "flows_into", "atlantic ocean", 0.8, evidence=["https://rivers.example/a"])
    out = _cli(srv, "beliefs", "amazon", "flows_into", "--json")
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["candidates"][0]["object"] == "atlantic ocean"
    out = _cli(srv, "beliefs", "amazon")
    assert out.returncode == 0, out.stderr
    assert "flows_into" in out.stdout and "atlantic ocean" in out.stdout
    out = _cli(srv, "disputes", "--limit", "5")
    assert out.returncode == 0, out.stderr
    assert "dispute" in out.stdout
    out = _cli(srv, "beliefs", "amazon", "--as-of", "yesterday")
    assert out.returncode == 1 and "as_of" in out.stderr
    c.close()


def test_as_of_is_replay_consistent_across_writes_and_reindex(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    try:
        keys = [Client(srv.url, AgentKey.generate()) for _ in range(4)]
        for c in keys:
            _good_writes(c, 5)
        ids = [
            c.assert_(
                "nile",
                "length_km",
                6650 if i < 2 else 6850,
                0.85,
                evidence=[f"https://nile-{i}.example/"],
            )["id"]
            for i, c in enumerate(keys)
        ]
        n = keys[0].beliefs("nile", predicate="length_km")["as_of_lsn"]

        def answers() -> list[Any]:
            return [
                httpx.get(
                    srv.url + "/v1/beliefs",
                    params={"subject": "nile", "predicate": "length_km", "as_of": f"lsn:{n}"},
                ).json(),
                httpx.get(
                    srv.url + "/v1/beliefs", params={"subject": "nile", "as_of": f"lsn:{n}"}
                ).json(),
                httpx.get(srv.url + "/v1/disputes", params={"as_of": f"lsn:{n}"}).json(),
            ]

        before = answers()
        assert before[0]["contested"] and before[2]["items"][0]["subject"] == "nile"
        # Later writes move the data and every agent's trust counts.
        keys[2].retract(ids[2], "wrong source")
        _good_writes(keys[3], 3)
        keys[3].assert_(
            "nile",
            "length_km",
            6650,
            0.85,
            evidence=["https://nile-3b.example/"],
            supersedes=ids[3],
        )
        now = keys[0].beliefs("nile", predicate="length_km")
        assert [c["object"] for c in now["candidates"]] == [6650] and not now["contested"]
        assert answers() == before
        for c in keys:
            c.close()
    finally:
        assert srv.stop() == 0
    out = subprocess.run(
        [sys.executable, "-m", "stemedb", "reindex", "--data-dir", str(srv.data_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    srv = ServerProcess(srv.data_dir).start()
    try:
        assert answers() == before
    finally:
        srv.stop()
