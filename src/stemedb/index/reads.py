"""``IndexReads``: the embedded store's answer to ``store.Reads``, over the SQLite index.

Each method is one named query of ``index/`` (lookups, queries, admin queries, beliefs,
dashboard figures); nothing outside ``index/`` writes SQL against the index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..answers import row_to_assertion
from ..store import AssertionFilter, DuplicateKey, Namespaces, NonceKey
from . import admin, beliefs, dashboard, lookups, query
from .store import IndexStore


class IndexReads:
    def __init__(self, store: IndexStore) -> None:
        self.store = store

    # -- the write path -----------------------------------------------------------------

    def writes_by_nonce(self, keys: Sequence[NonceKey]) -> dict[NonceKey, tuple[str, str]]:
        return lookups.writes_by_nonce(self.store, keys)

    def assertion_facts_many(self, items: Sequence[tuple[str, DuplicateKey]], since_us: int
                             ) -> list[tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]]:
        # A point read here is ~20 µs in process: nothing to share between them.
        return [lookups.assertion_facts(self.store, nonce, key, since_us)
                for nonce, key in items]

    def duplicates(self, keys: Sequence[DuplicateKey], since_us: int) -> set[DuplicateKey]:
        return lookups.duplicates(self.store, keys, since_us)

    def trust_counters(self, agent_ids: Iterable[str]) -> dict[str, tuple[int, ...]]:
        return lookups.trust_counters(self.store, agent_ids)

    def allowlist_expiry(self) -> dict[str, int]:
        return lookups.allowlist_expiry(self.store)

    def get_state(self, key: str) -> dict[str, Any] | None:
        return admin.get_state(self.store, key)

    def pending_count(self, agent_id: str | None = None, namespaces: Namespaces = None
                      ) -> int:
        return admin.pending_count(self.store, agent_id, namespaces)

    def assertion_row(self, aid: str) -> Any | None:
        return self.store.get_assertion_row(aid)

    # -- reads ----------------------------------------------------------------------------

    @property
    def applied_lsn(self) -> int:
        return self.store.applied_lsn

    @property
    def search_lag_records(self) -> int:
        return self.store.search_lag_records

    def lsn_at(self, at_us: int) -> int:
        return self.store.lsn_at(at_us)

    def assertion(self, aid: str, namespaces: Namespaces = None) -> dict[str, Any] | None:
        if namespaces is not None:
            return query.assertion(self.store, aid, namespaces)
        row = self.store.get_assertion_row(aid)
        return None if row is None else row_to_assertion(row)

    def list_assertions(self, f: AssertionFilter, as_of: int, cursor: str | None,
                        namespaces: Namespaces = None) -> dict[str, Any]:
        return query.list_assertions(self.store, f, as_of, cursor, namespaces)

    def search(self, q: str, limit: int, as_of: int, cursor: str | None,
               namespaces: Namespaces = None) -> dict[str, Any]:
        return query.search(self.store, q, limit, as_of, cursor, namespaces)

    def cached_belief_json(self, subject: str, predicate: str, context: str | None,
                           as_of: int | None) -> bytes | None:
        return beliefs.cached_belief_json(self.store, subject, predicate, context, as_of)

    def belief_json(self, subject: str, predicate: str, context: str | None,
                    as_of: int | None, namespaces: Namespaces = None,
                    valid_at: int | None = None) -> bytes:
        return beliefs.belief_json(self.store, subject, predicate, context, as_of,
                                   namespaces, valid_at)

    def subject_beliefs(self, subject: str, context: str | None, as_of: int | None,
                        limit: int, cursor: str | None, namespaces: Namespaces = None,
                        valid_at: int | None = None) -> dict[str, Any]:
        return beliefs.subject_beliefs(self.store, subject, context, as_of, limit, cursor,
                                       namespaces, valid_at)

    def disputes(self, as_of: int | None, limit: int, cursor: str | None, *,
                 reference_us: int | None, subject: str | None, predicate: str | None,
                 namespaces: Namespaces = None) -> dict[str, Any]:
        return beliefs.disputes(self.store, as_of, limit, cursor, reference_us=reference_us,
                                subject=subject, predicate=predicate, namespaces=namespaces)

    # -- admin ----------------------------------------------------------------------------

    def list_quarantine(self, *, status: str | None, agent_prefix: str | None,
                        reason: str | None, limit: int, cursor: str | None,
                        oldest_first: bool = False, namespaces: Namespaces = None,
                        severity: str | None = None) -> dict[str, Any]:
        return admin.list_quarantine(self.store, status=status, agent_prefix=agent_prefix,
                                     reason=reason, limit=limit, cursor=cursor,
                                     oldest_first=oldest_first, namespaces=namespaces,
                                     severity=severity)

    def quarantine_item(self, qid: str, namespaces: Namespaces = None
                        ) -> dict[str, Any] | None:
        return admin.get_quarantine(self.store, qid, namespaces)

    def quarantine_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return admin.quarantine_ids_with_prefix(self.store, prefix, limit)

    def pending_ids_of_agent(self, agent_id: str, namespaces: Namespaces = None
                             ) -> list[str]:
        return admin.pending_ids_of_agent(self.store, agent_id, namespaces)

    def pending_per_agent(self, namespaces: Namespaces = None) -> dict[str, int]:
        return admin.quarantine_counts(self.store, namespaces)

    def rejected_before(self, before_us: int) -> int:
        return admin.rejected_before(self.store, before_us)

    def allowlist(self) -> list[dict[str, Any]]:
        return admin.allowlist(self.store)

    def allowlisted_until(self, agent_id: str) -> int | None:
        return admin.allowlisted_until(self.store, agent_id)

    def agent_counts(self, agent_id: str, namespaces: Namespaces = None
                     ) -> dict[str, Any] | None:
        return admin.agent_counts(self.store, agent_id, namespaces)

    def agents_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return admin.agents_with_prefix(self.store, prefix, limit)

    def manual_breakers(self) -> list[dict[str, Any]]:
        return admin.manual_breakers(self.store)

    def enrollments(self) -> list[dict[str, Any]]:
        return admin.enrollments(self.store)

    def last_admin_lsn(self) -> int:
        return admin.last_admin_lsn(self.store)

    def tokens(self) -> list[dict[str, Any]]:
        return admin.tokens(self.store)

    def audit_log(self, target: str | None, limit: int) -> list[dict[str, Any]]:
        return admin.audit_log(self.store, target, limit)

    # -- dashboard figures ------------------------------------------------------------------

    def pending_by_reason(self, namespaces: Namespaces = None) -> dict[str, int]:
        return dashboard.pending_by_reason(self.store, namespaces)

    def pending_by_agent(self, reason: str, namespaces: Namespaces = None
                         ) -> list[tuple[str, int]]:
        return dashboard.pending_by_agent(self.store, reason, namespaces)

    def newest_pending(self, agent_id: str, reason: str | None, limit: int,
                       namespaces: Namespaces = None) -> list[dict[str, Any]]:
        return dashboard.newest_pending(self.store, agent_id, reason, limit, namespaces)

    def last_lsn_at(self, at_us: int) -> int:
        return dashboard.last_lsn_at(self.store, at_us)

    def quarantined_between(self, after_lsn: int, upto_lsn: int,
                            namespaces: Namespaces = None) -> int:
        return dashboard.quarantined_between(self.store, after_lsn, upto_lsn, namespaces)

    def decisions_by_minute(self, start_us: int, after_lsn: int, minute_us: int,
                            namespaces: Namespaces = None) -> list[tuple[int, str, int]]:
        return dashboard.decisions_by_minute(self.store, start_us, after_lsn, minute_us,
                                             namespaces)

    def decision_totals(self, namespaces: Namespaces = None) -> tuple[int, int]:
        return dashboard.decision_totals(self.store, namespaces)

    def assertions_after(self, lsn: int, namespaces: Namespaces = None) -> int:
        return dashboard.assertions_after(self.store, lsn, namespaces)
