"""Dashboard sign-in state: sessions, signed cookies, CSRF and sign-in form tokens."""

from __future__ import annotations

import pytest

from stemedb.dashboard.chart import line_chart, nice_ceiling
from stemedb.dashboard.sessions import SessionStore, tokens_equal
from stemedb.dashboard.web import Form, safe_link, safe_next


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_round_trips_through_its_signed_cookie() -> None:
    store = SessionStore()
    s = store.create("10.0.0.1")
    cookie = store.cookie_value(s)
    assert store.get(cookie) is s
    assert len(s.csrf) >= 40 and len(s.sid) >= 40 and s.csrf != s.sid


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # signature changed
        lambda c: "X" + c[1:],  # session id changed
        lambda c: c.split(".")[0],  # signature dropped
        lambda c: c + "." + c,  # garbage appended
        lambda c: "",
        lambda c: "é" * 20,
        lambda c: "a" * 500,
    ],
)
def test_tampered_cookies_are_refused(mangle: object) -> None:
    store = SessionStore()
    cookie = store.cookie_value(store.create("x"))
    assert callable(mangle)
    assert store.get(mangle(cookie)) is None


def test_a_cookie_signed_by_another_process_is_refused() -> None:
    mine, theirs = SessionStore(), SessionStore()
    cookie = theirs.cookie_value(theirs.create("x"))
    assert mine.get(cookie) is None


def test_sessions_expire_when_idle_and_at_their_maximum_age() -> None:
    clock = Clock()
    store = SessionStore(clock=clock, idle_seconds=100, max_age_seconds=250)
    s = store.create("x")
    cookie = store.cookie_value(s)
    clock.now += 99
    assert store.get(cookie) is s  # touching it keeps it alive
    clock.now += 99
    assert store.get(cookie) is s
    clock.now += 60  # 258 s after sign-in: past the maximum age although active
    assert store.get(cookie) is None
    s2 = store.create("x")
    clock.now += 101
    assert store.get(store.cookie_value(s2)) is None
    assert len(store) == 0


def test_the_table_is_bounded_least_recently_used_first() -> None:
    store = SessionStore(max_sessions=3)
    a, b, c = (store.create(str(i)) for i in range(3))
    assert store.get(store.cookie_value(a)) is a  # a is now the most recently used
    store.create("d")
    assert len(store) == 3
    assert store.get(store.cookie_value(b)) is None
    assert store.get(store.cookie_value(a)) is a and store.get(store.cookie_value(c)) is c


def test_destroy_signs_out_for_good() -> None:
    store = SessionStore()
    s = store.create("x")
    cookie = store.cookie_value(s)
    store.destroy(s)
    assert store.get(cookie) is None


def test_flash_messages_are_shown_once_and_bounded() -> None:
    s = SessionStore().create("x")
    for i in range(8):
        s.flash("ok", f"m{i}")
    assert [m for _, m in s.pop_flashes()] == ["m3", "m4", "m5", "m6", "m7"]
    assert s.pop_flashes() == []


def test_csrf_tokens_compare_exactly() -> None:
    assert tokens_equal("abc", "abc")
    assert not tokens_equal("abc", "abd")
    assert not tokens_equal("abc", "ab")
    assert not tokens_equal("abc", "")
    assert not tokens_equal("abc", None)
    assert not tokens_equal("", "")


def test_login_form_tokens_are_double_submitted_and_signed() -> None:
    store = SessionStore()
    token = store.login_token()
    assert store.login_token_valid(token, token)
    assert not store.login_token_valid(token, None)
    assert not store.login_token_valid(None, token)
    assert not store.login_token_valid(token, store.login_token())
    forged = token.split(".")[0] + ".AAAA"
    assert not store.login_token_valid(forged, forged)
    assert not SessionStore().login_token_valid(token, token)  # another process's key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/quarantine?agent=ab", "/quarantine?agent=ab"),
        ("/", "/"),
        ("//evil.example/x", "/d"),
        ("https://evil.example/", "/d"),
        ("/\\evil.example", "/d"),
        ("javascript:alert(1)", "/d"),
        ("/x\r\nSet-Cookie: a=b", "/d"),
        ("", "/d"),
        (None, "/d"),
    ],
)
def test_redirect_targets_stay_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value, "/d") == expected


def test_only_plain_http_links_become_links() -> None:
    assert safe_link("https://example.org/a#b") == "https://example.org/a#b"
    assert safe_link("javascript:alert(1)") is None
    assert safe_link('https://x.org/"><script>') is None
    assert safe_link(42) is None


def test_form_values_are_trimmed_and_lists_drop_blanks() -> None:
    f = Form({"a": ["  x "], "ids": ["1", " ", "2 "]})
    assert f.get("a") == "x" and f.get("missing", "d") == "d"
    assert f.getlist("ids") == ["1", "2"]


def test_chart_scale_and_markup() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 45, 100, 101, 99_999)] == [
        2,
        2,
        4,
        8,
        60,
        100,
        200,
        100_000,
    ]
    series = [(i * 60_000_000, i * 10) for i in range(61)]
    chart = line_chart(series, title="<Pending> & more", chart_id="c")
    assert chart.svg.count("<polyline") == 1
    assert "&lt;Pending&gt; &amp; more" in chart.svg and "<Pending>" not in chart.svg
    points = chart.svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 61
    assert "600 now" in chart.summary and "peak 600" in chart.summary
    assert 'role="img"' in chart.svg and 'aria-labelledby="c-title c-desc"' in chart.svg
    empty = line_chart([], title="t")
    assert "<polyline" in empty.svg


# -- shared sessions (several nodes behind a load balancer) ----------------------------------

SECRET = b"the same on every node"


def test_a_shared_session_is_recognised_by_every_node_with_the_secret() -> None:
    clock = Clock()
    a = SessionStore(secret=SECRET, shared=True, clock=clock)
    b = SessionStore(secret=SECRET, shared=True, clock=clock)
    other = SessionStore(secret=b"another deployment", shared=True, clock=clock)
    s = a.create("10.0.0.1")
    cookie = a.cookie_value(s)
    on_b = b.get(cookie)
    assert on_b is not None and on_b.sid == s.sid and on_b.csrf == s.csrf
    assert tokens_equal(s.csrf, on_b.csrf)
    assert other.get(cookie) is None
    assert SessionStore().get(cookie) is None  # a local store never reads them


@pytest.mark.parametrize("mangle", [
    lambda c: c.replace(".v1.", ".v2.") if ".v1." in c else "v2" + c[2:],
    lambda c: ".".join(p if i != 2 else "0" for i, p in enumerate(c.split("."))),  # created
    lambda c: ".".join(p if i != 3 else "9" * 12 for i, p in enumerate(c.split("."))),  # seen
    lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),
    lambda c: c.rpartition(".")[0],
])
def test_a_shared_cookie_with_any_part_changed_is_refused(mangle: object) -> None:
    store = SessionStore(secret=SECRET, shared=True, clock=Clock())
    cookie = store.cookie_value(store.create("x"))
    assert callable(mangle)
    assert store.get(mangle(cookie)) is None


def test_a_shared_session_expires_and_is_refreshed_while_used() -> None:
    clock = Clock()
    a = SessionStore(secret=SECRET, shared=True, clock=clock, idle_seconds=300,
                     max_age_seconds=1000)
    b = SessionStore(secret=SECRET, shared=True, clock=clock, idle_seconds=300,
                     max_age_seconds=1000)
    cookie = a.cookie_value(a.create("x"))
    clock.now += 30
    s = b.get(cookie)
    assert s is not None and s.refresh is None  # fresh enough: no new cookie yet
    clock.now += 200
    s = b.get(cookie)
    assert s is not None and s.refresh  # used after a minute: the answer re-issues it
    cookie = s.refresh
    clock.now += 250  # idle 250 s since the refresh: alive on every node
    assert a.get(cookie) is not None
    clock.now += 301
    assert a.get(cookie) is None and b.get(cookie) is None  # idle too long
    fresh = a.cookie_value(a.create("x"))
    start = clock.now
    while (got := b.get(fresh)) is not None:  # used every 59 s: alive until its max age
        fresh = got.refresh or fresh
        clock.now += 59
    assert 1000 < clock.now - start <= 1000 + 59


def test_signing_out_refuses_the_session_on_that_node() -> None:
    store = SessionStore(secret=SECRET, shared=True, clock=Clock())
    s = store.create("x")
    cookie = store.cookie_value(s)
    store.destroy(s)
    assert store.get(cookie) is None


def test_a_shared_store_needs_its_secret() -> None:
    with pytest.raises(ValueError):
        SessionStore(shared=True)
