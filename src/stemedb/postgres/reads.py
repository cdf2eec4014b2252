"""``PostgresReads``: this backend's answer to ``store.Reads``.

Each method runs one named query through the ``Reader`` (a pooled connection; one
snapshot for an answer of several statements). The admin and dashboard queries are the
embedded index's own (``index/admin.py``, ``index/dashboard.py``: portable SQL over
``index.store.Queries``), run here through ``Portable``; the others are PostgreSQL's
(``lookups``, ``query``, ``beliefs``), for arrays, md5 indexes and full-text search.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from psycopg.rows import RowMaker

from ..answers import row_to_assertion
from ..index import admin, dashboard
from ..store import AssertionFilter, DuplicateKey, Namespaces, NonceKey
from . import beliefs, lookups, query
from .connection import Conn, Reader

T = TypeVar("T")


class Row:
    """A row read by position or by column name, as ``sqlite3.Row`` is."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _rows(cursor: Any) -> RowMaker[Row]:
    names: dict[str, int] = {}
    for i, column in enumerate(cursor.description or ()):
        names.setdefault(column.name, i)  # the first of two equal names, as sqlite3.Row

    def make(values: Sequence[Any]) -> Row:
        return Row(names, values)

    return make


@functools.lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class Portable:
    """``index.store.Queries`` on a PostgreSQL connection."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[Any]) -> list[Row]:
        with self._conn.cursor(row_factory=_rows) as cur:
            return cur.execute(_pyformat(sql), list(params)).fetchall()


class PostgresReads:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def _run(self, fn: Callable[..., T], *args: Any, snapshot: bool = False, **kw: Any) -> T:
        return self._reader.run(lambda conn: fn(conn, *args, **kw), snapshot=snapshot)

    def _portable(self, fn: Callable[..., T], *args: Any, snapshot: bool = False,
                  **kw: Any) -> T:
        return self._reader.run(lambda conn: fn(Portable(conn), *args, **kw), snapshot=snapshot)

    # -- the write path -----------------------------------------------------------------

    def writes_by_nonce(self, keys: Sequence[NonceKey]) -> dict[NonceKey, tuple[str, str]]:
        return self._run(lookups.writes_by_nonce, keys)

    def assertion_facts_many(self, items: Sequence[tuple[str, DuplicateKey]], since_us: int
                             ) -> list[tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]]:
        return self._run(lookups.assertion_facts_many, items, since_us)

    def duplicates(self, keys: Sequence[DuplicateKey], since_us: int) -> set[DuplicateKey]:
        return self._run(lookups.duplicates, keys, since_us)

    def trust_counters(self, agent_ids: Iterable[str]) -> dict[str, tuple[int, ...]]:
        return self._run(lookups.trust_counters, list(agent_ids))

    def allowlist_expiry(self) -> dict[str, int]:
        return self._run(lookups.allowlist_expiry)

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self._portable(admin.get_state, key)

    def pending_count(self, agent_id: str | None = None, namespaces: Namespaces = None
                      ) -> int:
        return self._portable(admin.pending_count, agent_id, namespaces)

    def assertion_row(self, aid: str) -> Any | None:
        return self._run(query.assertion_row, aid)

    # -- reads ----------------------------------------------------------------------------

    @property
    def applied_lsn(self) -> int:
        return self._run(query.applied_lsn)

    @property
    def search_lag_records(self) -> int:
        return 0  # the full-text rows are written in the transaction of their assertions

    def lsn_at(self, at_us: int) -> int:
        return self._run(query.lsn_at, at_us)

    def assertion(self, aid: str, namespaces: Namespaces = None) -> dict[str, Any] | None:
        row = self._run(query.assertion_row, aid, namespaces)
        return None if row is None else row_to_assertion(row)

    def list_assertions(self, f: AssertionFilter, as_of: int, cursor: str | None,
                        namespaces: Namespaces = None) -> dict[str, Any]:
        return self._run(query.list_assertions, f, as_of, cursor, namespaces)

    def search(self, q: str, limit: int, as_of: int, cursor: str | None,
               namespaces: Namespaces = None) -> dict[str, Any]:
        return self._run(query.search, q, limit, as_of, cursor, namespaces, snapshot=True)

    def cached_belief_json(self, subject: str, predicate: str, context: str | None,
                           as_of: int | None) -> bytes | None:
        """Nothing is cached yet: every belief is computed (``belief_json``)."""
        return None

    def belief_json(self, subject: str, predicate: str, context: str | None,
                    as_of: int | None, namespaces: Namespaces = None,
                    valid_at: int | None = None) -> bytes:
        return self._run(beliefs.belief_json, subject, predicate, context, as_of,
                         namespaces, valid_at, snapshot=True)

    def subject_beliefs(self, subject: str, context: str | None, as_of: int | None,
                        limit: int, cursor: str | None, namespaces: Namespaces = None,
                        valid_at: int | None = None) -> dict[str, Any]:
        return self._run(beliefs.subject_beliefs, subject, context, as_of, limit, cursor,
                         namespaces, valid_at, snapshot=True)

    def disputes(self, as_of: int | None, limit: int, cursor: str | None, *,
                 reference_us: int | None, subject: str | None, predicate: str | None,
                 namespaces: Namespaces = None) -> dict[str, Any]:
        return self._run(beliefs.disputes, as_of, limit, cursor, reference_us=reference_us,
                         subject=subject, predicate=predicate, namespaces=namespaces,
                         snapshot=True)

    # -- admin ----------------------------------------------------------------------------

    def list_quarantine(self, *, status: str | None, agent_prefix: str | None,
                        reason: str | None, limit: int, cursor: str | None,
                        oldest_first: bool = False, namespaces: Namespaces = None,
                        severity: str | None = None) -> dict[str, Any]:
        return self._portable(admin.list_quarantine, status=status, agent_prefix=agent_prefix,
                              reason=reason, limit=limit, cursor=cursor,
                              oldest_first=oldest_first, namespaces=namespaces,
                              severity=severity, snapshot=True)

    def quarantine_item(self, qid: str, namespaces: Namespaces = None
                        ) -> dict[str, Any] | None:
        return self._portable(admin.get_quarantine, qid, namespaces)

    def quarantine_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return self._portable(admin.quarantine_ids_with_prefix, prefix, limit)

    def pending_ids_of_agent(self, agent_id: str, namespaces: Namespaces = None
                             ) -> list[str]:
        return self._portable(admin.pending_ids_of_agent, agent_id, namespaces)

    def pending_per_agent(self, namespaces: Namespaces = None) -> dict[str, int]:
        return self._portable(admin.quarantine_counts, namespaces)

    def rejected_before(self, before_us: int) -> int:
        return self._portable(admin.rejected_before, before_us)

    def allowlist(self) -> list[dict[str, Any]]:
        return self._portable(admin.allowlist)

    def allowlisted_until(self, agent_id: str) -> int | None:
        return self._portable(admin.allowlisted_until, agent_id)

    def agent_counts(self, agent_id: str, namespaces: Namespaces = None
                     ) -> dict[str, Any] | None:
        return self._portable(admin.agent_counts, agent_id, namespaces,
                              snapshot=namespaces is not None)

    def agents_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return self._portable(admin.agents_with_prefix, prefix, limit)

    def manual_breakers(self) -> list[dict[str, Any]]:
        return self._portable(admin.manual_breakers)

    def enrollments(self) -> list[dict[str, Any]]:
        return self._portable(admin.enrollments)

    def last_admin_lsn(self) -> int:
        return int(self._portable(admin.last_admin_lsn))

    def tokens(self) -> list[dict[str, Any]]:
        return self._portable(admin.tokens)

    def audit_log(self, target: str | None, limit: int) -> list[dict[str, Any]]:
        return self._portable(admin.audit_log, target, limit)

    # -- dashboard figures ------------------------------------------------------------------

    def pending_by_reason(self, namespaces: Namespaces = None) -> dict[str, int]:
        return self._portable(dashboard.pending_by_reason, namespaces)

    def pending_by_agent(self, reason: str, namespaces: Namespaces = None
                         ) -> list[tuple[str, int]]:
        return self._portable(dashboard.pending_by_agent, reason, namespaces)

    def newest_pending(self, agent_id: str, reason: str | None, limit: int,
                       namespaces: Namespaces = None) -> list[dict[str, Any]]:
        return self._portable(dashboard.newest_pending, agent_id, reason, limit, namespaces)

    def last_lsn_at(self, at_us: int) -> int:
        return self._portable(dashboard.last_lsn_at, at_us)

    def quarantined_between(self, after_lsn: int, upto_lsn: int,
                            namespaces: Namespaces = None) -> int:
        return self._portable(dashboard.quarantined_between, after_lsn, upto_lsn, namespaces)

    def decisions_by_minute(self, start_us: int, after_lsn: int, minute_us: int,
                            namespaces: Namespaces = None) -> list[tuple[int, str, int]]:
        return self._portable(dashboard.decisions_by_minute, start_us, after_lsn, minute_us,
                              namespaces)

    def decision_totals(self, namespaces: Namespaces = None) -> tuple[int, int]:
        return self._portable(dashboard.decision_totals, namespaces)

    def assertions_after(self, lsn: int, namespaces: Namespaces = None) -> int:
        return self._portable(dashboard.assertions_after, lsn, namespaces)
