"""The PostgreSQL backend's full-text search against SQLite FTS5 itself (no database
needed): the same tokens for any text, and the same ``bm25()`` doubles for every match."""

from __future__ import annotations

import random
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from stemedb.index.query import fts_query, query_words
from stemedb.postgres import fts

# Letters with and without diacritics, other scripts, digits, combining marks, emoji,
# punctuation and spaces: what separates and what folds.
ALPHABET = ("aAbZz09_-.,'\" \t\n" "éÉüÜøßſµİıǅ" "\u0301\u0308\u200d" "東京タワー한국어"
            "Ωωσς" "🚀👍🏽" "\u00a0\u2028" "٣४")
_DDL = "CREATE VIRTUAL TABLE t USING fts5(a, b, c, tokenize='unicode61 remove_diacritics 2')"


def sqlite_tokens(texts: list[str]) -> list[list[str]]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", list(enumerate(texts, 1)))
    out: list[list[tuple[int, str]]] = [[] for _ in texts]
    for term, doc, offset in conn.execute("SELECT term, doc, offset FROM v"):
        out[doc - 1].append((offset, term))
    conn.close()
    return [[t for _, t in sorted(found)] for found in out]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=40), min_size=1, max_size=20))
def test_tokens_are_the_unicode61_tokens(texts: list[str]) -> None:
    assert [fts.tokens(t) for t in texts] == sqlite_tokens(texts)


def test_every_bmp_character_tokenizes_as_in_sqlite() -> None:
    chars = [chr(i) for i in range(0x80, 0x10000) if not 0xD800 <= i < 0xE000]
    texts = [f"a{ch}a" for ch in chars]
    fts.tokens("".join(chars))  # one look-up of them all, instead of one per text
    assert [fts.tokens(t) for t in texts] == sqlite_tokens(texts)


def test_bm25_gives_fts5s_doubles() -> None:
    """Every matching row's score equals ``bm25()`` exactly, on a random corpus."""
    rnd = random.Random(7)
    words = ["paris", "river", "capital", "Straße", "strasse", "café", "cafe", "東京", "x_y",
             "1.5", "a", "b", "c", "d", "é"]

    def text(n: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(rnd.randint(0, n)))

    rows = [(text(3), text(2), text(25)) for _ in range(300)]
    conn = sqlite3.connect(":memory:")
    conn.execute(_DDL)
    conn.executemany("INSERT INTO t (rowid, a, b, c) VALUES (?, ?, ?, ?)",
                     [(i, *r) for i, r in enumerate(rows, 1)])
    cols = [fts.columns(*r) for r in rows]
    total = sum(len(c) for row in cols for c in row)
    avgdl = float(total) / float(len(rows))
    checked = 0
    for q in ("paris", "capital river", "strasse", "CAFE 東京", "x_y", "1.5 a", "paris paris",
              "d é b", "river_capital"):
        phrases = [p for p in (fts.tokens(w) for w in query_words(q)) if p]
        hits = [sum(1 for c in cols if fts.phrase_count(c, p)) for p in phrases]
        idf = [fts.idf(len(rows), h) for h in hits]
        want = dict(conn.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ?",
                                 (fts_query(q),)).fetchall())
        got = {}
        for i, c in enumerate(cols, 1):
            freq = [float(fts.phrase_count(c, p)) for p in phrases]
            if all(freq):
                got[i] = fts.bm25(idf, freq, sum(len(x) for x in c), avgdl)
        assert got == want, q
        checked += len(want)
    assert checked > 100
