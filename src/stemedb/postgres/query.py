"""Assertions read back (``index/query.py`` on PostgreSQL): point reads, filtered lists
and full-text search, each "as the database stood" at an LSN. The first page pins that
LSN into its cursor, so paging is one consistent snapshot under concurrent writes."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from ..answers import decode_cursor, encode_cursor, row_to_assertion
from ..index import filters
from ..index.query import query_words
from ..model import nfc
from ..store import AssertionFilter, Namespaces
from . import fts
from .connection import Conn
from .schema import ASSERTION_COLUMNS

# Status of a row as of LSN %(asof)s (as ``index.query._STATUS_AS_OF``).
STATUS_AS_OF = (
    "CASE WHEN ended_lsn IS NOT NULL AND ended_lsn <= %(asof)s THEN status"
    " WHEN active_lsn IS NOT NULL AND active_lsn <= %(asof)s THEN 'active'"
    " WHEN status IN ('retracted', 'superseded') THEN 'quarantined'"
    " ELSE status END"
)
ACTIVE_AS_OF = ("active_lsn IS NOT NULL AND active_lsn <= %(asof)s"
                " AND (ended_lsn IS NULL OR ended_lsn > %(asof)s)")


def applied_lsn(conn: Conn) -> int:
    row = conn.execute("SELECT lsn FROM tip").fetchone()
    return int(row[0]) if row else 0


def lsn_at(conn: Conn, at_us: int) -> int:
    """Greatest LSN recorded at or before ``at_us`` (0 if none)."""
    row = conn.execute("SELECT max(lsn) FROM lsn_time WHERE at <= %s", (at_us,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def assertion_row(conn: Conn, aid: str, namespaces: Namespaces = None
                  ) -> dict[str, Any] | None:
    grants = filters.restriction(namespaces)
    with conn.cursor(row_factory=dict_row) as cur:
        if grants is None:
            return cur.execute(f"SELECT {ASSERTION_COLUMNS} FROM assertions WHERE id = %s",
                               (aid,)).fetchone()
        params: dict[str, Any] = {"id": aid}
        cond = filters.named(grants, params, filters.psycopg_mark)
        return cur.execute(f"SELECT {ASSERTION_COLUMNS} FROM assertions"
                           f" WHERE id = %(id)s AND {cond}", params).fetchone()


def list_assertions(conn: Conn, f: AssertionFilter, as_of: int, cursor: str | None,
                    namespaces: Namespaces = None) -> dict[str, Any]:
    params: dict[str, Any] = {"asof": as_of}
    if cursor:
        c = decode_cursor(cursor)
        params["asof"] = c.get("a", as_of)
        if "l" in c:
            params["after"] = c["l"]
    where = ["lsn <= %(asof)s"]
    if f.id_prefix is not None:  # a range of the unique index on id
        params["lo"], params["hi"] = f.id_prefix, f.id_prefix + "g"
        where.append("id >= %(lo)s AND id < %(hi)s")
    # subject and predicate are indexed by their md5 (long values do not fit a btree)
    if f.subject is not None:
        params["subject"] = nfc(f.subject.strip())
        where.append("md5(subject) = md5(%(subject)s) AND subject = %(subject)s")
    if f.predicate is not None:
        params["predicate"] = nfc(f.predicate.strip())
        where.append("md5(predicate) = md5(%(predicate)s) AND predicate = %(predicate)s")
    if f.context is not None:
        params["context"] = nfc(f.context)
        where.append("context = %(context)s")
    if f.object is not None:
        params["object"] = nfc(f.object)
        where.append("object_text = %(object)s")
    if f.agent_id is not None:
        params["agent_id"] = f.agent_id.lower()
        where.append("agent_id = %(agent_id)s")
    if f.since_us is not None:
        params["since"] = f.since_us
        where.append("recorded_at >= %(since)s")
    if f.until_us is not None:
        params["until"] = f.until_us
        where.append("recorded_at < %(until)s")
    if not f.include_inactive:
        where.append(ACTIVE_AS_OF)
    if f.valid_at_us is not None:
        where.append(filters.valid_at(f.valid_at_us, params, filters.psycopg_mark))
    grants = filters.restriction(namespaces)
    if grants is not None:
        where.append(filters.named(grants, params, filters.psycopg_mark))
    if "after" in params:
        where.append("lsn < %(after)s")
    params["limit"] = f.limit + 1
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {ASSERTION_COLUMNS}, {STATUS_AS_OF} AS status_as_of FROM assertions"
            f" WHERE {' AND '.join(where)} ORDER BY lsn DESC LIMIT %(limit)s", params).fetchall()
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    next_cursor = (encode_cursor({"l": rows[-1]["lsn"], "a": params["asof"]})
                   if more and rows else None)
    return {"items": [row_to_assertion(r, r["status_as_of"]) for r in rows],
            "next_cursor": next_cursor, "as_of_lsn": params["asof"]}


# -- full-text search (see fts.py) ---------------------------------------------------------

_CANDIDATES = ("SELECT a.rowid, a.lsn, a.subject, a.predicate, a.object_text, f.tokens"
               " FROM assertions_fts f JOIN assertions a ON a.rowid = f.rowid"
               " WHERE {match} a.lsn <= %(asof)s AND " + ACTIVE_AS_OF)
_HOLDERS = ("SELECT a.subject, a.predicate, a.object_text FROM assertions_fts f"
            " JOIN assertions a ON a.rowid = f.rowid WHERE {match} true")


def _match(lexemes: list[str], params: dict[str, Any]) -> str:
    """The ``@@`` condition for rows holding every one of ``lexemes`` (the indexable ones;
    with none, every row is a candidate and the phrases decide)."""
    usable = [t for t in lexemes if fts.indexable(t)]
    if not usable:
        return ""
    params["match"] = fts.tsquery_text(usable)
    return "f.doc @@ %(match)s::tsquery AND"


def _hits(conn: Conn, phrase: list[str]) -> int:
    """Rows of the whole index holding ``phrase`` (FTS5's ``nHit``, over every row)."""
    params: dict[str, Any] = {}
    match = _match(phrase, params)
    if len(phrase) == 1 and match:
        row = conn.execute("SELECT count(*) FROM assertions_fts f WHERE " + match + " true",
                           params).fetchone()
        return int(row[0]) if row else 0
    return sum(1 for r in conn.execute(_HOLDERS.format(match=match), params)
               if fts.phrase_count(fts.columns(*r), phrase))


def search(conn: Conn, q: str, limit: int, as_of: int, cursor: str | None,
           namespaces: Namespaces = None) -> dict[str, Any]:
    """Plain words, each a phrase, all required; ranked as FTS5's ``bm25()``, then newest
    first (``index.query.search``)."""
    params: dict[str, Any] = {"asof": as_of}
    offset = 0
    if cursor:
        c = decode_cursor(cursor)
        params["asof"] = c.get("a", as_of)
        offset = c.get("o", 0)
    phrases = [p for p in (fts.tokens(w) for w in query_words(q)) if p]
    ranked: list[tuple[float, int, int]] = []
    if phrases:
        match = _match([t for p in phrases for t in p], params)
        grants = filters.restriction(namespaces)
        if grants is not None:
            match += " " + filters.named(grants, params, filters.psycopg_mark,
                                         "a.context") + " AND"
        candidates = conn.execute(_CANDIDATES.format(match=match), params).fetchall()
        if candidates:
            ranked = _rank(conn, phrases, candidates)
    page = ranked[offset: offset + limit + 1]
    more = len(page) > limit
    page = page[:limit]
    items = []
    if page:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = {r["rowid"]: r for r in cur.execute(
                f"SELECT {ASSERTION_COLUMNS}, {STATUS_AS_OF} AS status_as_of FROM assertions"
                " WHERE rowid = ANY(%(page)b::bigint[])",
                {**params, "page": [rowid for _, _, rowid in page]})}
        items = [row_to_assertion(rows[rowid], rows[rowid]["status_as_of"])
                 for _, _, rowid in page]
    next_cursor = (encode_cursor({"o": offset + limit, "a": params["asof"]}) if more else None)
    return {"items": items, "next_cursor": next_cursor, "as_of_lsn": params["asof"]}


def _rank(conn: Conn, phrases: list[list[str]], candidates: list[Any]
          ) -> list[tuple[float, int, int]]:
    """(bm25, -lsn, rowid) of every candidate that holds every phrase, best first."""
    matched = []
    for rowid, lsn, subject, predicate, object_text, size in candidates:
        cols = fts.columns(subject, predicate, object_text)
        freq = [float(fts.phrase_count(cols, p)) for p in phrases]
        if all(freq):
            matched.append((rowid, lsn, size, freq))
    if not matched:
        return []
    stats = conn.execute("SELECT rows, tokens FROM fts_stats").fetchone()
    assert stats is not None
    rows, total = int(stats[0]), int(stats[1])
    avgdl = float(total) / float(rows)
    idf = [fts.idf(rows, _hits(conn, p)) for p in phrases]
    return sorted((fts.bm25(idf, freq, size, avgdl), -lsn, rowid)
                  for rowid, lsn, size, freq in matched)
