"""The same journal gives the same derived state and the same answers on every backend.

One scenario of real signed writes and admin records (accepted, superseded, retracted,
quarantined with verdicts and then decided, purged, nonce reuse and retries, allowlist,
thresholds, breakers, admin retractions, non-ASCII text) is submitted to an embedded store
and to a PostgreSQL store in different batch splits. The digests (the canonical dump) must
be equal, and so must the answers of a representative set of ``Reads`` calls: lists with
filters and cursors, ``as_of``, search, beliefs, disputes, quarantine lists, counts and
the audit log.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from stemedb import records
from stemedb.client import build_retraction
from stemedb.embedded import EmbeddedStore
from stemedb.model import quarantine_id, write_id
from stemedb.settings import JournalSettings
from stemedb.signing import AgentKey
from stemedb.store import AssertionFilter, Store
from tests.helpers import assertion_body

T0 = 1_700_000_000_000_000  # µs: the scenario's clock starts here


class Scenario:
    """Journal payloads in order, with the ids the checks ask about."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.ids: dict[str, str] = {}
        self.keys = {name: AgentKey.generate() for name in "ABCDE"}

    @property
    def at(self) -> int:
        return T0 + len(self.payloads) * 1_000_000

    def assert_(self, who: str, name: str | None = None, *, verdict: dict[str, Any] | None = None,
                body: bytes | None = None, **fields: Any) -> str:
        key = self.keys[who]
        body = body if body is not None else assertion_body(key, **fields)
        self.payloads.append(records.SignedWrite(records.ASSERT, body, key.sign_b64(body),
                                                 self.at, verdict).encode())
        wid = write_id(body)
        if name:
            self.ids[name] = wid
        return wid

    def retract(self, who: str, target: str, reason: str = "a mistake") -> None:
        key = self.keys[who]
        body = build_retraction(key, target, reason)
        self.payloads.append(records.SignedWrite(records.RETRACT, body, key.sign_b64(body),
                                                 self.at).encode())

    def admin(self, action: str, **fields: Any) -> int:
        at = self.at
        self.payloads.append(records.admin_record(action, "reviewer", at=at, **fields))
        return at


def build() -> Scenario:
    s = Scenario()
    k = s.keys
    texts = ["Rhône valley", "Düsseldorf Altstadt", "東京 タワー", "naïve café au lait",
             "ÅNGSTRÖM unit", "rocket 🚀 launch", "Paris-Brest pastry", "foo_bar baz.qux 1.5"]
    for who in "ABCD":  # enough accepted writes to be trusted
        for i in range(6):
            s.assert_(who, subject=f"{texts[i % len(texts)]} gauge {i}", predicate="measured_by",
                      object=f"station {who} {i} {texts[(i + 3) % len(texts)]}", confidence=0.8,
                      evidence=[f"https://gauges.example/{who}/{i}"])
    # A contested key, and the same key in another context
    s.assert_("A", "canberra_a", subject="australia", predicate="capital", object="canberra",
              confidence=0.9, evidence=["https://atlas.example/au"])
    s.assert_("B", subject="australia", predicate="capital", object="canberra", confidence=0.8,
              evidence=["https://gov.example/au"])
    s.assert_("C", "sydney_c", subject="australia", predicate="capital", object="sydney",
              confidence=0.9, evidence=["https://other.example/au"])
    s.assert_("D", subject="australia", predicate="capital", object="sydney", confidence=0.85,
              evidence=["https://more.example/au#top"])
    s.assert_("A", subject="australia", predicate="capital", object="melbourne",
              context="history", confidence=0.7)
    s.assert_("B", subject="australia", predicate="capital", object="sydney", context="history",
              confidence=0.6)
    # Objects of every JSON kind (1 and 1.0 are one object)
    s.assert_("A", subject="answer", predicate="value", object=1, confidence=0.5, evidence=[])
    s.assert_("B", subject="answer", predicate="value", object=1.0, confidence=0.6)
    s.assert_("C", subject="answer", predicate="value", object={"b": [1, 2], "a": "x"},
              confidence=0.7)
    s.assert_("D", subject="answer", predicate="value", object=[True, None, "Ünïcode"],
              confidence=1)
    s.assert_("A", "long", subject="essay", predicate="text", confidence=0.4,
              object=" ".join(["river paris capital"] * 150 + ["Straße"] * 3))
    # Supersede, retract (own, another's, a missing one)
    old = s.assert_("A", "old", subject="mount everest", predicate="height_m", object=8848)
    s.assert_("A", "new", subject="mount everest", predicate="height_m", object=8849,
              supersedes=old)
    mine = s.assert_("B", "mine", subject="danube", predicate="length_km", object=2850)
    s.retract("B", mine)
    s.retract("B", s.ids["canberra_a"])  # not B's: nothing happens, nothing is counted
    s.retract("C", "f" * 64)
    # Quarantined writes, one superseding an active assertion of its agent
    e_active = s.assert_("E", "e_active", subject="moon", predicate="made_of", object="rock")
    v = {"reason": "LowQuality", "score": 0.31, "signals": ["short"], "quality": 0.31}
    s.assert_("E", "q1", verdict=v, subject="moon", predicate="made_of", object="cheese paris")
    s.assert_("E", "q2", verdict={**v, "reason": "Duplicate", "score": 0.9},
              subject="mars", predicate="colour", object="red")
    s.assert_("E", "q3", verdict={**v, "reason": "UntrustedHighConfidence", "score": 1},
              subject="venus", predicate="colour", object="yellow", confidence=1.0)
    s.assert_("E", "q4", verdict=v, subject="moon", predicate="made_of", object="basalt",
              supersedes=e_active)
    # A nonce reused with another body, and the very same body twice (a retry)
    reused = assertion_body(k["C"], subject="nonce", predicate="first", nonce="fixed-nonce-1")
    s.assert_("C", "nonce_first", body=reused)
    s.assert_("C", "nonce_second", body=assertion_body(k["C"], subject="nonce",
                                                       predicate="second", nonce="fixed-nonce-1"))
    s.assert_("C", body=reused)
    # Admin records
    q = {name: quarantine_id(s.ids[name]) for name in ("q1", "q2", "q3", "q4")}
    s.admin("quarantine.approve", id=q["q1"], note="checked by hand")
    rejected_at = s.admin("quarantine.reject", id=q["q2"], reason="wrong")
    s.admin("quarantine.note", id=q["q3"], note="looking into it")
    s.admin("quarantine.approve", id=q["q4"])
    s.admin("quarantine.approve", id=q["q2"], note="too late")  # already decided: audit only
    s.admin("quarantine.reject", id="q_missing", reason="no such item")
    s.admin("allowlist.add", agent_id=k["E"].agent_id, expires_at="2099-01-01T00:00:00Z",
            expires_us=4_070_908_800_000_000, reason="pilot")
    s.admin("allowlist.add", agent_id=k["C"].agent_id, expires_at="2098-01-01T00:00:00Z",
            expires_us=4_039_372_800_000_000, reason="trial")
    s.admin("allowlist.remove", agent_id=k["C"].agent_id, reason="trial over")
    s.admin("thresholds.set", values={"quality_threshold": 0.4}, source="config")
    s.admin("thresholds.set", values={"duplicate_window_s": 60})
    s.admin("breaker.open", agent_id=k["D"].agent_id, reason="spam", duration_seconds=60)
    s.admin("breaker.reset", agent_id=k["D"].agent_id, reason="ok now")
    s.admin("breaker.open", agent_id=k["C"].agent_id, reason="burst", duration_seconds=1.5)
    s.admin("assertion.retract", id=s.ids["sydney_c"], agent_id=k["C"].agent_id,
            reason="withdrawn")
    s.admin("assertion.retract", id=s.ids["sydney_c"], agent_id=k["C"].agent_id,
            reason="twice")  # already retracted: audit only
    s.admin("something.new", id="x", detail="kept in the audit log only")
    s.admin("quarantine.purge", before=rejected_at + 1)
    # API tokens: created, a live name taken again (changes nothing), revoked, reused
    for name, digest, scope, spaces, expires in (
            ("alice", "a" * 64, "review", ["*"], None),
            ("etl", "b" * 64, "read", ["acme", "beta/eu"], T0 + 10**12),
            ("alice", "c" * 64, "admin", ["*"], None)):
        s.admin("token.create", name=name, scope=scope, namespaces=spaces,
                expires_at=None if expires is None else "2023-11-26T16:00:00.000000Z",
                expires_us=expires, hash=digest)
    s.admin("token.revoke", name="alice", hash="a" * 64, reason="left")
    s.admin("token.revoke", name="alice", hash="a" * 64, reason="twice")  # audit only
    s.admin("token.create", name="alice", scope="read", namespaces=["*"], expires_at=None,
            expires_us=None, hash="d" * 64)
    # Writes after the decisions: answers as of earlier LSNs differ from the newest
    s.assert_("E", subject="australia", predicate="capital", object="sydney", confidence=0.9)
    s.assert_("D", subject="paris", predicate="capital_of", object="france",
              evidence=["https://www.atlas.example/fr/"])
    s.assert_("A", subject="paris", predicate="capital_of", object="france", confidence=0.95)
    s.assert_("B", subject="Paris ", predicate="twin_city", object="Rome", context="culture")
    # valid time, with bounds signed in other offsets
    s.assert_("C", subject="australia", predicate="capital", object="melbourne",
              valid_from="1901-01-01T00:00:00+10:00", valid_until="1927-05-09T00:00:00+10:00")
    s.assert_("D", subject="australia", predicate="capital", object="canberra",
              valid_from="1927-05-08T14:00:00Z", context="history")
    return s


def chunks(items: Sequence[bytes], seed: int, most: int) -> Iterator[list[bytes]]:
    rnd = random.Random(seed)
    i = 0
    while i < len(items):
        n = rnd.randint(1, most)
        yield list(items[i:i + n])
        i += n


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build()


@pytest.fixture
def stores(scenario: Scenario, tmp_path: Path, postgres_url: str) -> Iterator[tuple[Store, Store]]:
    from stemedb.postgres import PostgresStore

    embedded = EmbeddedStore(tmp_path / "embedded", JournalSettings(min_free_bytes=0))
    postgres = PostgresStore(postgres_url)
    try:
        for part in chunks(scenario.payloads, seed=1, most=1):
            embedded.submit(part).result(timeout=30)
        for part in chunks(scenario.payloads, seed=2, most=9):
            postgres.submit(part).result(timeout=30)
        yield embedded, postgres
    finally:
        embedded.close()
        postgres.close()


def test_the_same_journal_gives_the_same_digest_and_records(stores: tuple[Store, Store]) -> None:
    embedded, postgres = stores
    assert postgres.last_lsn == embedded.last_lsn
    assert [(r.lsn, r.hash, r.payload) for r in postgres.records()] == \
        [(r.lsn, r.hash, r.payload) for r in embedded.records()]
    assert postgres.digest() == embedded.digest()


def calls(s: Scenario, last: int) -> Iterator[tuple[str, Callable[[Any], Any]]]:
    """(label, reads → answer) for the representative set of ``Reads`` calls."""
    k, ids = s.keys, s.ids
    a, c, e = k["A"].agent_id, k["C"].agent_id, k["E"].agent_id
    lsns = sorted({0, 1, last // 3, last // 2, last - 12, last - 1, last, last + 5})
    for n in lsns:
        for f in (AssertionFilter(), AssertionFilter(include_inactive=True, limit=7),
                  AssertionFilter(subject="australia", predicate="capital"),
                  AssertionFilter(subject=" australia", context="history",
                                  include_inactive=True),
                  AssertionFilter(agent_id=a.upper(), limit=3),
                  AssertionFilter(object="1", include_inactive=True),
                  AssertionFilter(predicate="measured_by", since_us=T0 + 5_000_000,
                                  until_us=T0 + 20_000_000, limit=4)):
            yield f"list {f} @{n}", lambda r, f=f, n=n: pages(
                lambda cur: r.list_assertions(f, n, cur))
        for q in ("paris", "capital paris", "rhone", "Straße strasse", "東京", "cafe naive",
                  "foo_bar", "1.5", "paris OR london", 'NEAR(paris "river")', "_", "ÅNGSTRÖM",
                  "station a", "gauge"):
            yield f"search {q!r} @{n}", lambda r, q=q, n=n: pages(
                lambda cur: r.search(q, 3, n, cur))
        for key in (("australia", "capital", None), ("australia", "capital", "history"),
                    (" Australia ", "capital", None), ("answer", "value", None),
                    ("moon", "made_of", None), ("mount everest", "height_m", None),
                    ("paris", "capital_of", None)):
            yield f"belief {key} @{n}", lambda r, key=key, n=n: r.belief_json(*key, n)
        yield f"subject beliefs @{n}", lambda r, n=n: pages(
            lambda cur: r.subject_beliefs("australia", None, n, 1, cur))
        yield f"disputes @{n}", lambda r, n=n: pages(lambda cur: r.disputes(
            n, 1, cur, reference_us=None, subject=None, predicate=None))
        yield f"disputes of a key @{n}", lambda r, n=n: r.disputes(
            n, 10, None, reference_us=T0 + 10**9, subject="australia ", predicate="capital")
        yield f"lsn_at {n}", lambda r, n=n: r.lsn_at(T0 + n * 1_000_000 - 1)
    yield "belief newest", lambda r: r.belief_json("australia", "capital", None, None)
    yield "disputes newest", lambda r: r.disputes(None, 5, None, reference_us=None, subject=None,
                                                  predicate=None)
    yield "applied", lambda r: r.applied_lsn
    yield "tokens", lambda r: r.tokens()
    for name in ("canberra_a", "sydney_c", "old", "new", "mine", "q1", "q2", "q3", "q4",
                 "nonce_first", "nonce_second", "long", "e_active"):
        yield f"assertion {name}", lambda r, name=name: r.assertion(ids[name])
        yield f"row {name}", lambda r, name=name: _row(r.assertion_row(ids[name]))
        yield f"quarantine {name}", lambda r, name=name: r.quarantine_item(
            quarantine_id(ids[name]))
    for status in (None, "pending", "approved", "rejected"):
        for prefix in (None, e[:6], e, "0", "ff"):
            for oldest in (False, True):
                yield f"quarantine list {status} {prefix} {oldest}", (
                    lambda r, status=status, prefix=prefix, oldest=oldest: pages(
                        lambda cur: r.list_quarantine(status=status, agent_prefix=prefix,
                                                      reason=None, limit=1, cursor=cur,
                                                      oldest_first=oldest), key="next_cursor"))
    yield "quarantine by reason", lambda r: r.list_quarantine(
        status=None, agent_prefix=None, reason="LowQuality", limit=10, cursor=None)
    nonces = [(c, "fixed-nonce-1"), (a, "nope"), (e, "fixed-nonce-1")]
    yield "writes_by_nonce", lambda r: r.writes_by_nonce(nonces)
    yield "writes_by_nonce one", lambda r: r.writes_by_nonce(nonces[:1])
    dup = (a, "australia", "capital", '"canberra"', "")
    dups = [dup, (c, "australia", "capital", '"sydney"', ""), (a, "x", "y", '"z"', "")]
    yield "duplicates", lambda r: sorted(r.duplicates(dups, T0))
    yield "duplicates later", lambda r: sorted(r.duplicates(dups, T0 + 10**12))
    yield "duplicates one", lambda r: sorted(r.duplicates(dups[:1], T0))
    yield "facts", lambda r: r.assertion_facts_many(
        [("fixed-nonce-1", (c, "nonce", "first", '"france"', ""))], T0)
    yield "facts dup", lambda r: r.assertion_facts_many([("n", dup)], T0)
    # more than one statement's worth (FACTS_PER_STATEMENT) on PostgreSQL, repeats too
    facts = [("fixed-nonce-1", (c, "nonce", "first", '"france"', "")), ("n", dup),
             ("nope", dups[2]), ("fixed-nonce-1", (e, "a", "b", '"c"', ""))] * 9
    yield "facts many", lambda r: r.assertion_facts_many(facts, T0)
    yield "facts many later", lambda r: r.assertion_facts_many(facts[:3], T0 + 10**12)
    yield "facts many none", lambda r: r.assertion_facts_many([], T0)
    yield "trust", lambda r: r.trust_counters([a, c, e, "0" * 64])
    yield "allowlist expiry", lambda r: r.allowlist_expiry()
    yield "state", lambda r: [r.get_state(x) for x in ("thresholds", "config_thresholds", "x")]
    yield "pending", lambda r: [r.pending_count(), r.pending_count(e), r.pending_count(a)]
    yield "pending ids", lambda r: r.pending_ids_of_agent(e)
    yield "pending per agent", lambda r: r.pending_per_agent()
    yield "rejected before", lambda r: [r.rejected_before(T0 + x * 10**9) for x in (0, 1, 10**4)]
    yield "allowlist", lambda r: [r.allowlist(), r.allowlisted_until(e), r.allowlisted_until(c)]
    yield "agents", lambda r: [r.agent_counts(x) for x in (a, c, e, "0" * 64)]
    yield "prefix", lambda r: [r.agents_with_prefix(x) for x in ("", a[:1], a[:10], "g")]
    yield "breakers", lambda r: r.manual_breakers()
    yield "audit", lambda r: [r.audit_log(None, 100), r.audit_log(c, 2), r.audit_log("x", 5)]
    yield "by reason", lambda r: r.pending_by_reason()
    yield "by agent", lambda r: [r.pending_by_agent(x) for x in ("LowQuality", "Duplicate")]
    yield "newest", lambda r: [r.newest_pending(e, None, 5), r.newest_pending(e, "X", 5)]
    yield "last lsn at", lambda r: [r.last_lsn_at(T0 + x * 10**6) for x in (-1, 0, 10, 10**6)]
    yield "quarantined between", lambda r: r.quarantined_between(0, last)
    yield "decisions", lambda r: r.decisions_by_minute(T0, 0, 60_000_000)
    yield "decision totals", lambda r: r.decision_totals()
    yield "after", lambda r: [r.assertions_after(x) for x in (0, last // 2, last)]
    # read filters: namespaces (the scenario's contexts: none, "history", "culture") and
    # valid time
    for ns in ((), ("history",), ("culture", "hist"), ("*",)):
        yield f"ns list {ns}", lambda r, ns=ns: pages(lambda cur: r.list_assertions(
            AssertionFilter(include_inactive=True, limit=5), last, cur, ns))
        yield f"ns search {ns}", lambda r, ns=ns: r.search("paris", 10, last, None, ns)
        yield f"ns belief {ns}", lambda r, ns=ns: r.belief_json("australia", "capital", None,
                                                                None, ns)
        yield f"ns subject {ns}", lambda r, ns=ns: r.subject_beliefs("australia", None, None,
                                                                     10, None, ns)
        yield f"ns disputes {ns}", lambda r, ns=ns: r.disputes(
            None, 10, None, reference_us=T0, subject=None, predicate=None, namespaces=ns)
        yield f"ns assertion {ns}", lambda r, ns=ns: [r.assertion(ids[x], ns)
                                                      for x in ("old", "canberra_a")]
        yield f"ns quarantine {ns}", lambda r, ns=ns: [
            r.list_quarantine(status=None, agent_prefix=None, reason=None, limit=10,
                              cursor=None, namespaces=ns),
            r.quarantine_item(quarantine_id(ids["q1"]), ns)]
        yield f"ns agents {ns}", lambda r, ns=ns: [r.agent_counts(x, ns) for x in (a, c, e)]
        yield f"ns figures {ns}", lambda r, ns=ns: [
            r.pending_count(None, ns), r.pending_count(e, ns), r.pending_per_agent(ns),
            r.pending_by_reason(ns), r.pending_by_agent("LowQuality", ns),
            r.newest_pending(e, None, 5, ns), r.quarantined_between(0, last, ns),
            r.decisions_by_minute(T0, 0, 60_000_000, ns), r.decision_totals(ns),
            r.assertions_after(0, ns), r.pending_ids_of_agent(e, ns)]
    for at in (-1_893_456_000_000_000, -1_345_000_000_000_000, 0, T0, 4_102_444_800_000_000):
        yield f"valid_at {at}", lambda r, at=at: r.list_assertions(
            AssertionFilter(valid_at_us=at, limit=1000), last, None)
        yield f"valid_at belief {at}", lambda r, at=at: r.belief_json(
            "australia", "capital", None, None, None, at)


def pages(read: Callable[[str | None], dict[str, Any]], key: str = "next_cursor"
          ) -> list[dict[str, Any]]:
    """Every page, following the cursors."""
    out, cursor = [], None
    while True:
        page = read(cursor)
        out.append(page)
        cursor = page.get(key)
        if cursor is None or len(out) > 200:
            return out


def _row(row: Any) -> dict[str, Any] | None:
    """A stored row (a ``sqlite3.Row``, whose iteration gives values, or a dict) as a dict."""
    return None if row is None else {k: row[k] for k in row.keys()}  # noqa: SIM118


def test_the_same_journal_gives_the_same_answers(stores: tuple[Store, Store],
                                                 scenario: Scenario) -> None:
    embedded, postgres = stores
    last = embedded.last_lsn
    differ = []
    for label, call in calls(scenario, last):
        want, got = call(embedded.reads), call(postgres.reads)
        if got != want:
            differ.append(f"{label}:\n  embedded {want!r}\n  postgres {got!r}")
    assert not differ, f"{len(differ)} answers differ:\n" + "\n".join(differ[:10])
    # the scenario reaches what it means to: a dispute, search hits, a purge, taken nonces
    assert embedded.reads.disputes(None, 5, None, reference_us=None, subject=None,
                                   predicate=None)["items"]
    assert embedded.reads.search("capital paris", 10, last, None)["items"]
    assert embedded.reads.assertion(scenario.ids["q2"]) is None
    assert embedded.reads.assertion(scenario.ids["nonce_second"]) is None
