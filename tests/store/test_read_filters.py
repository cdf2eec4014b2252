"""The read filters of ``store.Reads`` on every backend (``conftest.BACKENDS``):
namespaces and valid time (see the ``store`` module's contract).

Namespaces: whatever the grants, the query and its paging, no answer holds anything
outside the grants, and (for the lists) nothing inside them is left out: a restricted
answer is the unrestricted one with the invisible items taken out. Names that are LIKE
wildcards (``_``, ``%``), prefixes that are not whole segments (``acm``, ``acme-corp``)
and assertions without a context are in the data on purpose.

Valid time: bounds signed with different offsets compare as instants, the end is
exclusive, open ends hold forever, and ``valid_at`` combines with ``as_of``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb import records
from stemedb.access import covers
from stemedb.model import instant_us, quarantine_id, write_id
from stemedb.signing import AgentKey
from stemedb.store import AssertionFilter, Reads, Store
from tests.helpers import assertion_body

from .conftest import Backend

T0 = 1_700_000_000_000_000
CONTEXTS = [None, "acme", "acme/eu", "acme/eu/paris", "acme-corp", "acme_", "acme%", "acm",
            "beta", "beta/acme", "a_c", "abc", "café"]
GRANTS = ["acme", "acme/eu", "acme/eu/paris", "acme-corp", "acme_", "acme%", "acm", "beta",
          "beta/acme", "a_c", "abc", "café", "zzz", "a"]
QUARANTINE = {"reason": "LowQuality", "score": 0.3, "signals": ["short"], "quality": 0.3}


class Data:
    """Journal payloads spread over ``CONTEXTS``: per context two contested keys (three
    agents, two objects), one quarantined write and, in some, a retraction."""

    def __init__(self) -> None:
        self.keys = [AgentKey.generate() for _ in range(4)]
        self.payloads: list[bytes] = []
        self.context_of: dict[str, str | None] = {}
        self.agent_of: dict[str, str] = {}
        self.quarantined: list[str] = []

    @property
    def at(self) -> int:
        return T0 + len(self.payloads) * 1_000_000

    def write(self, who: int, context: str | None, verdict: dict[str, Any] | None = None,
              **fields: Any) -> str:
        key = self.keys[who]
        extra = {} if context is None else {"context": context}
        body = assertion_body(key, **extra, **fields)
        self.payloads.append(records.SignedWrite(records.ASSERT, body, key.sign_b64(body),
                                                 self.at, verdict).encode())
        wid = write_id(body)
        self.context_of[wid] = context
        self.agent_of[wid] = key.agent_id
        return wid

    def retract(self, who: int, target: str) -> None:
        key = self.keys[who]
        body = orjson.dumps({"retracts": target, "reason": "wrong", "agent_id": key.agent_id,
                             "timestamp": "2026-01-01T00:00:00Z",
                             "nonce": f"r-{len(self.payloads):06d}"})
        self.payloads.append(records.SignedWrite(records.RETRACT, body, key.sign_b64(body),
                                                 self.at).encode())


def build() -> Data:
    d = Data()
    for i, ctx in enumerate(CONTEXTS):
        for subject in ("river", "mountain"):
            for who, obj in ((0, "north"), (1, "north"), (2, "south")):
                d.write(who, ctx, subject=subject, predicate="flows", confidence=0.8,
                        object=f"{obj} fact {i}", evidence=[f"https://e.example/{who}/{i}"])
        d.quarantined.append(d.write(3, ctx, QUARANTINE, subject="lake", predicate="depth",
                                     object=f"deep fact {i}"))
        if i % 3 == 0:
            d.retract(2, d.write(2, ctx, subject="glacier", predicate="size",
                                 object=f"big fact {i}"))
    d.payloads.append(records.admin_record("quarantine.approve", "reviewer", at=d.at,
                                           id=quarantine_id(d.quarantined[1]), note=""))
    d.payloads.append(records.admin_record("quarantine.reject", "reviewer", at=d.at,
                                           id=quarantine_id(d.quarantined[8]), reason="no"))
    return d


@pytest.fixture
def filled(backend: Backend) -> Iterator[tuple[Store, Data]]:
    data = build()
    store = backend.open()
    try:
        store.submit(data.payloads).result(timeout=60)
        yield store, data
    finally:
        store.close()


def pages(read: Callable[[str | None], dict[str, Any]]) -> list[dict[str, Any]]:
    out, cursor = [], None
    for _ in range(500):
        page = read(cursor)
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def visible(grants: tuple[str, ...] | None, context: str | None) -> bool:
    return grants is None or covers(grants, context)


def support_ids(belief: dict[str, Any]) -> list[str]:
    return [s["id"] for c in belief["candidates"] for s in c["support"]]


grant_sets = st.one_of(
    st.none(),
    st.just(("*",)),
    st.lists(st.sampled_from(GRANTS), max_size=3, unique=True).map(tuple),
)
filters = st.fixed_dictionaries({
    "context": st.sampled_from([None, *[c for c in CONTEXTS if c is not None]]),
    "subject": st.sampled_from([None, "river", "lake", "glacier"]),
    "include_inactive": st.booleans(),
    "limit": st.integers(1, 9),
})


def test_no_read_answers_outside_the_grants(filled: tuple[Store, Data]) -> None:
    store, data = filled
    reads: Reads = store.reads
    lsn = reads.applied_lsn

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(grants=grant_sets, f=filters, as_of=st.sampled_from([None, 10, 40]))
    def check(grants: tuple[str, ...] | None, f: dict[str, Any], as_of: int | None) -> None:
        g = None if grants is None or "*" in grants else grants
        at = lsn if as_of is None else as_of
        # lists: the unrestricted answer without the invisible items, page after page
        af = AssertionFilter(**f)
        everything = pages(lambda c: reads.list_assertions(af, at, c))
        seen = pages(lambda c: reads.list_assertions(af, at, c, grants))
        assert [a["id"] for a in seen] == \
            [a["id"] for a in everything if visible(g, a["context"])]
        # a cursor of an unrestricted page does not widen a restricted one
        first = reads.list_assertions(af, at, None)
        if first["next_cursor"]:
            rest = pages(lambda c: reads.list_assertions(af, at, c or first["next_cursor"],
                                                         grants))
            assert all(visible(g, a["context"]) for a in rest)
        found = pages(lambda c: reads.search("fact", 7, at, c, grants))
        assert sorted(a["id"] for a in found) == sorted(
            a["id"] for a in pages(lambda c: reads.search("fact", 7, at, c))
            if visible(g, a["context"]))
        # point reads: absent, as if unknown
        for aid, ctx in list(data.context_of.items())[:: 7]:
            got = reads.assertion(aid, grants)
            assert (got is not None) == visible(g, ctx)
        # beliefs and disputes: over the visible claims only
        ctx = f["context"]
        b = orjson.loads(reads.belief_json("river", "flows", ctx, as_of, grants))
        assert all(visible(g, data.context_of[i]) for i in support_ids(b))
        if ctx is not None and not visible(g, ctx):
            assert b["candidates"] == []
        sb = reads.subject_beliefs("river", None, as_of, 100, None, grants)
        assert all(visible(g, data.context_of[i]) for x in sb["beliefs"] for i in support_ids(x))
        all_disputes = pages(lambda c: reads.disputes(as_of, 4, c, reference_us=None,
                                                      subject=None, predicate=None))
        some = pages(lambda c: reads.disputes(as_of, 4, c, reference_us=None, subject=None,
                                              predicate=None, namespaces=grants))
        assert [(d["subject"], d["context"]) for d in some] == \
            [(d["subject"], d["context"]) for d in all_disputes if visible(g, d["context"])]
        # counts of agents and the review queue
        for key in data.keys:
            counts = reads.agent_counts(key.agent_id, grants)
            mine = [c for i, c in data.context_of.items() if data.agent_of[i] == key.agent_id]
            if g is not None:
                assert (counts is None) == (not any(visible(g, c) for c in mine))
        items = pages(lambda c: reads.list_quarantine(status=None, agent_prefix=None,
                                                      reason=None, limit=5, cursor=c,
                                                      namespaces=grants))
        expected = [q for q in data.quarantined if visible(g, data.context_of[q])]
        assert sorted(i["assertion_id"] for i in items) == sorted(expected)
        total = reads.list_quarantine(status=None, agent_prefix=None, reason=None, limit=1,
                                      cursor=None, namespaces=grants)["total"]
        assert total == len(expected)
        for q in data.quarantined[::4]:
            item = reads.quarantine_item(quarantine_id(q), grants)
            assert (item is not None) == visible(g, data.context_of[q])
        pending = reads.pending_count(None, grants)
        assert pending == sum(reads.pending_by_reason(grants).values()) \
            == sum(reads.pending_per_agent(grants).values())
        assert reads.assertions_after(0, grants) == sum(
            1 for c in data.context_of.values() if visible(g, c))

    check()


def test_an_empty_grant_sees_nothing_and_a_star_sees_all(filled: tuple[Store, Data]) -> None:
    store, data = filled
    reads = store.reads
    lsn = reads.applied_lsn
    af = AssertionFilter(limit=1000, include_inactive=True)
    assert reads.list_assertions(af, lsn, None, ())["items"] == []
    assert reads.search("fact", 100, lsn, None, ())["items"] == []
    assert all(reads.assertion(i, ()) is None for i in data.context_of)
    assert orjson.loads(reads.belief_json("river", "flows", None, None, ()))["candidates"] == []
    assert reads.disputes(None, 100, None, reference_us=None, subject=None, predicate=None,
                          namespaces=())["items"] == []
    assert reads.agent_counts(data.keys[0].agent_id, ()) is None
    assert reads.pending_count(None, ()) == 0
    assert reads.decision_totals(()) == (0, 0)
    star = reads.list_assertions(af, lsn, None, ("*",))
    assert star == reads.list_assertions(af, lsn, None)
    # assertions without a context: only * covers them
    none_ids = {i for i, c in data.context_of.items() if c is None}
    assert none_ids & {a["id"] for a in star["items"]}
    assert not none_ids & {a["id"] for a in reads.list_assertions(af, lsn, None, tuple(GRANTS))[
        "items"]}


def test_wildcards_and_partial_segments_are_plain_text(filled: tuple[Store, Data]) -> None:
    store, _ = filled
    reads = store.reads
    af = AssertionFilter(limit=1000)

    def contexts(*grants: str) -> set[str | None]:
        return {a["context"] for a in reads.list_assertions(af, reads.applied_lsn, None,
                                                           grants)["items"]}

    assert contexts("acme") == {"acme", "acme/eu", "acme/eu/paris"}
    assert contexts("acme/eu") == {"acme/eu", "acme/eu/paris"}
    assert contexts("a_c") == {"a_c"}
    assert contexts("acme_") == {"acme_"}
    assert contexts("acme%") == {"acme%"}
    assert contexts("acm") == {"acm"}
    assert contexts("a") == set()
    assert contexts("café") == {"café"}
    assert contexts("beta") == {"beta", "beta/acme"}


def test_restricted_beliefs_are_not_the_cached_ones(filled: tuple[Store, Data]) -> None:
    store, data = filled
    reads = store.reads
    full = orjson.loads(reads.belief_json("river", "flows", None, None))
    # the answer over everything may now be cached; a restricted read must not get it
    reads.cached_belief_json("river", "flows", None, None)
    mine = orjson.loads(reads.belief_json("river", "flows", None, None, ("acme/eu/paris",)))
    # each agent's latest claim overall is in the last context written; restricted, its
    # latest visible one counts
    assert {data.context_of[i] for i in support_ids(full)} == {"café"}
    assert {data.context_of[i] for i in support_ids(mine)} == {"acme/eu/paris"}
    assert len(support_ids(mine)) == 3
    again = orjson.loads(reads.belief_json("river", "flows", None, None))
    assert again == full


# -- valid time ----------------------------------------------------------------------------

def test_valid_at_compares_instants_whatever_the_offset(backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    bodies = {
        # from 2019-12-31T22:00Z (written +02:00) to 2021-01-01
        "a": assertion_body(key, subject="rome", predicate="mayor", object="a",
                            valid_from="2020-01-01T00:00:00+02:00",
                            valid_until="2021-01-01T00:00:00Z"),
        # from 23:00Z on, open-ended
        "b": assertion_body(key, subject="rome", predicate="mayor", object="b",
                            valid_from="2019-12-31T23:00:00Z"),
        # always
        "c": assertion_body(key, subject="rome", predicate="mayor", object="c"),
        # until 2019-12-31T23:30Z (written -01:00)
        "d": assertion_body(key, subject="rome", predicate="mayor", object="d",
                            valid_until="2019-12-31T22:30:00.000001-01:00"),
    }
    ids = {name: write_id(b) for name, b in bodies.items()}
    at = T0
    try:
        for body in bodies.values():
            payload = records.SignedWrite(records.ASSERT, body, key.sign_b64(body), at).encode()
            store.submit([payload]).result(timeout=30)
            at += 1_000_000
        reads = store.reads
        lsn = reads.applied_lsn

        def valid(iso: str, as_of: int = lsn) -> set[str]:
            f = AssertionFilter(valid_at_us=instant_us(iso), limit=100)
            got = {a["id"] for a in reads.list_assertions(f, as_of, None)["items"]}
            return {n for n, i in ids.items() if i in got}

        assert valid("2019-12-31T22:30:00Z") == {"a", "c", "d"}
        assert valid("2019-12-31T21:59:59.999999Z") == {"c", "d"}
        assert valid("2019-12-31T23:30:00.000001Z") == {"a", "b", "c"}  # d's end: exclusive
        assert valid("2019-12-31T23:30:00Z") == {"a", "b", "c", "d"}
        assert valid("2021-01-01T00:00:00Z") == {"b", "c"}  # a's end: exclusive
        assert valid("2021-01-01T01:00:00+01:00") == {"b", "c"}  # the same instant
        assert valid("1000-01-01T00:00:00Z") == {"c", "d"}
        assert valid("2019-12-31T22:30:00Z", as_of=2) == {"a"}  # combined with as_of
        b = orjson.loads(reads.belief_json("rome", "mayor", None, None,
                                           valid_at=instant_us("2020-06-01T00:00:00Z")))
        # one agent: its latest claim valid then counts
        assert [c["object"] for c in b["candidates"]] == ["c"]
        b = orjson.loads(reads.belief_json("rome", "mayor", None, 1,
                                           valid_at=instant_us("2020-06-01T00:00:00Z")))
        assert [c["object"] for c in b["candidates"]] == ["a"]
        page = reads.subject_beliefs("rome", None, None, 10, None,
                                     valid_at=instant_us("2019-12-31T22:45:00Z"))
        assert [c["object"] for c in page["beliefs"][0]["candidates"]] == ["d"]
        assert [c["object"] for c in orjson.loads(reads.belief_json(
            "rome", "mayor", None, None))["candidates"]] == ["d"]
    finally:
        store.close()


def _valid_time_payloads(key: AgentKey) -> tuple[list[bytes], str]:
    body = assertion_body(key, subject="bonn", predicate="capital_of", object="germany",
                          valid_from="1949-05-23T00:00:00+01:00",
                          valid_until="1990-10-03T00:00:00Z")
    other = assertion_body(key, subject="berlin", predicate="capital_of", object="germany")
    return [records.SignedWrite(records.ASSERT, b, key.sign_b64(b), T0 + i).encode()
            for i, b in enumerate((body, other))], write_id(body)


def test_an_index_of_schema_1_gets_the_valid_time_instants(tmp_path: Any) -> None:
    import sqlite3

    from stemedb.embedded import EmbeddedStore
    from stemedb.settings import JournalSettings

    payloads, bonn = _valid_time_payloads(AgentKey.generate())
    store = EmbeddedStore(tmp_path / "d", JournalSettings(min_free_bytes=0))
    store.submit(payloads).result(timeout=30)
    digest = store.digest()
    store.close()
    conn = sqlite3.connect(tmp_path / "d" / "index.sqlite3")
    conn.executescript("ALTER TABLE assertions DROP COLUMN valid_from_us;"
                       " ALTER TABLE assertions DROP COLUMN valid_until_us;"
                       " PRAGMA user_version=1;")
    conn.close()
    store = EmbeddedStore(tmp_path / "d", JournalSettings(min_free_bytes=0))
    try:
        assert store.digest() == digest
        def valid(iso: str) -> set[str]:
            f = AssertionFilter(valid_at_us=instant_us(iso))
            return {a["subject"] for a in
                    store.reads.list_assertions(f, store.reads.applied_lsn, None)["items"]}

        assert valid("1980-01-01T00:00:00Z") == {"bonn", "berlin"}
        assert valid("2000-01-01T00:00:00Z") == valid("1949-05-22T22:59:59Z") == {"berlin"}
        assert store.reads.assertion(bonn) is not None
    finally:
        store.close()
