"""Read queries over the index: filtered lists, full-text search, point reads.

Every list is answered "as the database stood" at an LSN (``as_of``). The first page
pins the LSN it was answered at into its cursor, so following ``next_cursor`` pages
through one consistent snapshot even while writes continue.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

from ..answers import decode_cursor, encode_cursor, row_to_assertion
from ..errors import ValidationFailed
from ..model import nfc
from ..store import AssertionFilter, Namespaces
from . import filters
from .store import IndexStore

log = logging.getLogger("stemedb.index")

MAX_LIMIT = 1000
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"\w+", re.UNICODE)

# Status of a row as of LSN :asof (retracted/superseded keep their final status once
# ended; a row not yet active is shown with its stored status).
_STATUS_AS_OF = (
    "CASE WHEN ended_lsn IS NOT NULL AND ended_lsn <= :asof THEN status"
    " WHEN active_lsn IS NOT NULL AND active_lsn <= :asof THEN 'active'"
    " WHEN status IN ('retracted', 'superseded') THEN 'quarantined'"
    " ELSE status END"
)
_ACTIVE_AS_OF = (
    "active_lsn IS NOT NULL AND active_lsn <= :asof AND (ended_lsn IS NULL OR ended_lsn > :asof)"
)


def list_assertions(store: IndexStore, f: AssertionFilter, as_of: int,
                    cursor: str | None, namespaces: Namespaces = None) -> dict[str, Any]:
    params: dict[str, Any] = {"asof": as_of}
    after = None
    if cursor:
        c = decode_cursor(cursor)
        params["asof"] = c.get("a", as_of)
        after = c.get("l")
    where = ["lsn <= :asof"]
    if f.id_prefix is not None:
        # A range of the unique index on id, read before anything else (not a scan in
        # LSN order that filters by id).
        where.append("rowid IN (SELECT rowid FROM assertions WHERE id >= :lo AND id < :hi)")
        params["lo"], params["hi"] = f.id_prefix, f.id_prefix + "g"
    for col in ("subject", "predicate", "context"):
        value = getattr(f, col)
        if value is not None:
            where.append(f"{col} = :{col}")
            params[col] = nfc(value.strip()) if col != "context" else nfc(value)
    if f.object is not None:
        where.append("object_text = :object")
        params["object"] = nfc(f.object)
    if f.agent_id is not None:
        where.append("agent_id = :agent_id")
        params["agent_id"] = f.agent_id.lower()
    if f.since_us is not None:
        where.append("recorded_at >= :since")
        params["since"] = f.since_us
    if f.until_us is not None:
        where.append("recorded_at < :until")
        params["until"] = f.until_us
    if not f.include_inactive:
        where.append(_ACTIVE_AS_OF)
    if f.valid_at_us is not None:
        where.append(filters.valid_at(f.valid_at_us, params, filters.sqlite_mark))
    grants = filters.restriction(namespaces)
    if grants is not None:
        where.append(filters.named(grants, params, filters.sqlite_mark))
    if after is not None:
        where.append("lsn < :after")
        params["after"] = after
    params["limit"] = f.limit + 1
    sql = (f"SELECT *, {_STATUS_AS_OF} AS status_as_of FROM assertions WHERE "
           + " AND ".join(where) + " ORDER BY lsn DESC LIMIT :limit")
    rows = store.query(sql, params)  # type: ignore[arg-type]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    items = [row_to_assertion(r, r["status_as_of"]) for r in rows]
    next_cursor = (encode_cursor({"l": rows[-1]["lsn"], "a": params["asof"]})
                   if more and rows else None)
    return {"items": items, "next_cursor": next_cursor, "as_of_lsn": params["asof"]}


def query_words(q: str) -> list[str]:
    """The words a search looks for (at most ``MAX_QUERY_WORDS``): plain words only, so
    operators are just text."""
    words = _WORD.findall(q)
    if not words:
        raise ValidationFailed([{"field": "q", "message": "must contain at least one word"}])
    return words[:MAX_QUERY_WORDS]


def fts_query(q: str) -> str:
    """Plain words to an FTS5 query: every word quoted (a phrase), all required."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in query_words(q))


def search(store: IndexStore, q: str, limit: int, as_of: int, cursor: str | None,
           namespaces: Namespaces = None) -> dict[str, Any]:
    params: dict[str, Any] = {"asof": as_of, "match": fts_query(q), "limit": limit + 1,
                              "offset": 0}
    try:  # the full-text index trails the other reads: bring it up first
        store.flush_search()
    except sqlite3.Error as e:  # e.g. a full disk: search what is indexed
        log.warning("adding new assertions to the full-text index failed: %s", e)
    if cursor:
        c = decode_cursor(cursor)
        params["asof"] = c.get("a", as_of)
        params["offset"] = c.get("o", 0)
    grants = filters.restriction(namespaces)
    visible = ("" if grants is None else
               " AND " + filters.named(grants, params, filters.sqlite_mark, "a.context"))
    sql = (
        f"SELECT a.*, {_STATUS_AS_OF} AS status_as_of FROM assertions_fts"
        " JOIN assertions a ON a.rowid = assertions_fts.rowid"
        f" WHERE assertions_fts MATCH :match AND a.lsn <= :asof AND {_ACTIVE_AS_OF}{visible}"
        " ORDER BY bm25(assertions_fts), a.lsn DESC LIMIT :limit OFFSET :offset"
    )
    rows = store.query(sql, params)  # type: ignore[arg-type]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (encode_cursor({"o": params["offset"] + limit, "a": params["asof"]})
                   if more else None)
    return {"items": [row_to_assertion(r, r["status_as_of"]) for r in rows],
            "next_cursor": next_cursor, "as_of_lsn": params["asof"]}


def assertion(store: IndexStore, aid: str, namespaces: Namespaces = None
              ) -> dict[str, Any] | None:
    """One assertion, if it exists and ``namespaces`` cover it."""
    grants = filters.restriction(namespaces)
    if grants is None:
        row = store.get_assertion_row(aid)
    else:
        params: dict[str, Any] = {"id": aid}
        cond = filters.named(grants, params, filters.sqlite_mark)
        rows = store.query(f"SELECT * FROM assertions WHERE id = :id AND {cond}",
                           params)  # type: ignore[arg-type]
        row = rows[0] if rows else None
    return None if row is None else row_to_assertion(row)
