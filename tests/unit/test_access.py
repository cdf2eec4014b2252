"""Namespace grants: hierarchical, fail closed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stemedb.access import (
    ALL,
    PRINCIPAL_KEY,
    Principal,
    covers,
    includes,
    normalize,
    normalize_all,
    principal_of,
    visible_namespaces,
)


def test_hierarchy():
    assert covers(["acme"], "acme")
    assert covers(["acme"], "acme/eu/paris")
    assert not covers(["acme"], "acme-corp")
    assert not covers(["acme"], "beta/acme")
    assert not covers(["acme"], None)
    assert covers([ALL], None)
    assert covers([ALL], "anything")


def test_empty_grant_covers_nothing():
    assert not covers([], "acme")
    assert not covers([], None)
    assert visible_namespaces(Principal("t", "read", ())) == ()


def test_normalize():
    assert normalize("acme/") == "acme"
    assert normalize(" * ") == ALL
    assert normalize_all(["b", "a/", "a"]) == ("a", "b")
    assert normalize_all(["a", "*"]) == (ALL,)
    for bad in ("", "/", "a//b", "a/*", "x" * 129):
        with pytest.raises(ValueError):
            normalize(bad)


def test_includes_and_scopes():
    assert includes(["acme"], "acme/eu")
    assert not includes(["acme/eu"], "acme")
    assert not includes(["acme"], ALL)
    assert includes([ALL], ALL)
    p = Principal("ops", "review", ("acme",))
    assert p.allows("read") and p.allows("review") and not p.allows("admin")
    assert p.sees("acme/x") and not p.sees("beta")


def test_principal_in_scope():
    p = Principal("root", "admin", (ALL,))
    assert principal_of({PRINCIPAL_KEY: p}) is p
    assert principal_of({}) is None
    assert visible_namespaces(None) is None
    assert visible_namespaces(p) is None


@given(st.lists(st.sampled_from(["a", "a/b", "b", "c/d"]), max_size=3),
       st.sampled_from(["a", "a/b", "a/b/c", "ab", "b", "c", "c/d/e", None]))
def test_covered_context_is_under_a_grant(grants, context):
    if covers(grants, context):
        assert context is not None
        assert any(context == g or context.startswith(g + "/") for g in grants)
