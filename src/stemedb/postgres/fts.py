"""Full-text search that finds and ranks exactly what the embedded store's FTS5 does.

The embedded index searches with SQLite FTS5 (``tokenize='unicode61 remove_diacritics
2'``; every query word a quoted phrase, all of them required; ranked by ``bm25()``, then
newest first). PostgreSQL's own parsers split text differently (URLs, e-mail addresses,
hyphenated words and decimals stay whole; diacritics stay), so this backend does not use
them. Instead:

- **Tokens.** ``tokens`` splits and folds text the way unicode61 does. Which characters
  are token characters and what each folds to is asked of the very same FTS5 tokenizer,
  through an in-memory SQLite database, once per distinct non-ASCII character (then
  remembered): the two backends tokenize alike by construction, not by imitation.
- **Finding.** Each assertion's distinct tokens are stored as a ``tsvector``
  (``assertions_fts.doc``, GIN-indexed); a search selects the rows holding every query
  token (``@@``), then keeps those where each query word's tokens stand next to each
  other in one column, as an FTS5 phrase must.
- **Ranking.** ``bm25`` is FTS5's formula, evaluated in the same order of floating-point
  operations, over the same figures: the number of rows and of tokens in the whole index
  (``fts_stats``), the rows holding each phrase, and each row's token count and phrase
  frequencies. Equal inputs give equal doubles, so the order (and its ties, broken by LSN)
  is the embedded one.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence

# What unicode61 does with a character: None, a separator; else the text it folds to
# (possibly empty: a diacritic that is part of a token but dropped from it).
_ASCII: dict[str, str | None] = {
    chr(i): (chr(i).lower() if chr(i).isalnum() else None) for i in range(128)}
_known: dict[str, str | None] = dict(_ASCII)
_probe_lock = threading.Lock()
_probe_conn: sqlite3.Connection | None = None

MAX_LEXEME_BYTES = 2046  # a tsvector lexeme is shorter than 2 KiB: longer tokens are not indexed
K1 = 1.2  # BM25 constants, as FTS5's bm25() has them
B = 0.75


def _probe(chars: Iterable[str]) -> None:
    """Asks FTS5's unicode61 tokenizer what it does with each of ``chars``: each is put
    between two ASCII letters ("a" + ch + "a") in a row of its own; one token back means
    a token character (folded to what stands between the a's), two mean a separator."""
    global _probe_conn
    todo = [ch for ch in chars if ch not in _known]
    if not todo:
        return
    with _probe_lock:
        if _probe_conn is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize="
                         "'unicode61 remove_diacritics 2')")
            conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
            _probe_conn = conn
        conn = _probe_conn
        conn.execute("DELETE FROM t")
        conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)",
                         [(i, f"a{ch}a") for i, ch in enumerate(todo, start=1)])
        found: dict[int, list[tuple[int, str]]] = {}
        for term, doc, offset in conn.execute("SELECT term, doc, offset FROM v"):
            found.setdefault(doc, []).append((offset, term))
        for i, ch in enumerate(todo, start=1):
            terms = [t for _, t in sorted(found.get(i, []))]
            _known[ch] = terms[0][1:-1] if len(terms) == 1 else None


def tokens(text: str) -> list[str]:
    """``text`` as unicode61 tokens (remove_diacritics 2), in order."""
    if not text.isascii():
        _probe(set(text))
    out: list[str] = []
    word: list[str] = []
    known = _known
    for ch in text:
        folded = known[ch]
        if folded is None:
            if word:
                token = "".join(word)
                if token:
                    out.append(token)
                word = []
        else:
            word.append(folded)
    if word and (token := "".join(word)):
        out.append(token)
    return out


def columns(subject: str, predicate: str, object_text: str) -> tuple[list[str], ...]:
    """The tokens of the three columns FTS5 indexes, each apart (a phrase never spans
    two columns)."""
    return tokens(subject), tokens(predicate), tokens(object_text)


def indexable(token: str) -> bool:
    return len(token.encode()) <= MAX_LEXEME_BYTES


def tsvector_text(cols: Sequence[Sequence[str]]) -> str:
    """The ``tsvector`` input of a row's distinct tokens (no positions: phrases are
    checked on the text itself)."""
    distinct = sorted({t for col in cols for t in col if indexable(t)})
    return " ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in distinct)


def tsquery_text(lexemes: Iterable[str]) -> str:
    """A ``tsquery`` that every one of ``lexemes`` is in the row."""
    return " & ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'"
                      for t in sorted(set(lexemes)))


def phrase_count(cols: Sequence[Sequence[str]], phrase: Sequence[str]) -> int:
    """How many times ``phrase`` stands in the row (FTS5's instances: in any column, at
    any start, overlapping ones too)."""
    n = len(phrase)
    first = phrase[0]
    count = 0
    for col in cols:
        for i in range(len(col) - n + 1):
            if col[i] == first and (n == 1 or list(col[i:i + n]) == list(phrase)):
                count += 1
    return count


def bm25(idf: Sequence[float], freq: Sequence[float], size: int, avgdl: float) -> float:
    """FTS5's ``bm25()`` of a row: phrase IDFs, the row's phrase frequencies and token
    count, the index's average row size. The operations are FTS5's, in its order."""
    score = 0.0
    d = float(size)
    for i in range(len(idf)):
        score += idf[i] * ((freq[i] * (K1 + 1.0)) / (freq[i] + K1 * (1 - B + B * d / avgdl)))
    return -1.0 * score


def idf(rows: int, hits: int) -> float:
    """FTS5's IDF of a phrase found in ``hits`` of ``rows`` rows (never below 1e-6)."""
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return value if value > 0.0 else 1e-6
