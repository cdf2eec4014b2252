"""The storage seam: what the engine needs from a storage backend, and its contract.

Two protocols, in the spirit of litestream's ``ReplicaClient``: a few methods, the
contract in their docstrings, one implementation per backend (``embedded.py``: the file
journal and the SQLite index in a data directory, the default; a cluster backend on
PostgreSQL plugs in beside it). ``tests/store/`` holds the suite every implementation
must pass.

The contract
------------
- **The journal is the truth.** ``Store.submit`` appends records (opaque payload bytes,
  see ``records.py``) to a hash-chained journal: LSNs are 1, 2, 3, … with no gaps, each
  record's chain hash is ``sha256(prev_hash || lsn || payload)`` (``journal.chain_hash``)
  and the first record's ``prev_hash`` is 32 zero bytes. The same payloads give the same
  LSNs and hashes on every backend.
- **Acknowledged means durable and applied.** The future ``submit`` returns resolves only
  after every record of the call is durable (fsync'ed, or committed with synchronous
  commit) AND applied to the derived state that ``reads`` answers from. A reader that
  starts after the future resolved sees the records. If the records cannot be made
  durable, the future fails and nothing of the call is acknowledged; the store then
  refuses further appends (``readiness`` says why) until it is healthy again: after a
  restart for a journal whose fsync failed, by itself once a database that was
  unreachable answers again.
- **Ordering.** Records of one ``submit`` call get consecutive LSNs in the order given;
  concurrent calls are serialised into one order (group commit may put several calls in
  one durable write). ``contexts`` ride along with their records to the appliers
  (already-parsed writes, so they are not parsed twice); they are never stored.
- **Derived state is a function of the journal.** Applying records 1..N always gives the
  same rows, whether applied one commit at a time or rebuilt in bulk; ``digest`` is a
  SHA-256 over a canonical dump of it, equal across rebuilds and backends.
- **Reads** see the derived state as of ``reads.applied_lsn``; answers "as of" an earlier
  LSN are computed from the same rows (history is kept, never overwritten).
- **Namespaces.** Every read of assertions, beliefs, disputes, quarantine items, agent
  counts and dashboard figures takes ``namespaces``: ``None`` (the default) hides
  nothing and takes exactly the unrestricted path; a tuple of grants (``access``: ``acme``
  covers the contexts ``acme`` and ``acme/…``; ``*`` covers all) hides every assertion
  whose ``context`` none of them covers, and everything derived from it, as if it did not
  exist: lists and counts leave it out, a point read answers None, beliefs and disputes
  are computed over the visible assertions only (never served from a cache computed over
  everything). An empty tuple hides everything. The filter is applied on every page: a
  cursor carries no grant.
- **Valid time.** ``valid_at`` (unix microseconds; ``AssertionFilter.valid_at_us``)
  keeps the claims with ``valid_from <= valid_at < valid_until`` (an absent bound is
  open), both compared as instants, whatever offset they were signed with.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .journal import Record

NonceKey = tuple[str, str]  # (agent_id, nonce)
DuplicateKey = tuple[str, str, str, str, str]  # agent, subject, predicate, object, context
Namespaces = tuple[str, ...] | None  # grants a read is restricted to (None: no restriction)


@dataclass
class AssertionFilter:
    subject: str | None = None
    predicate: str | None = None
    object: str | None = None
    agent_id: str | None = None
    context: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    include_inactive: bool = False
    limit: int = 100
    valid_at_us: int | None = None  # valid time: valid_from <= it < valid_until
    id_prefix: str | None = None  # 8-64 lowercase hex: ids that start with it


class Reads(Protocol):
    """The queries the engine and its services ask of the derived state."""

    # -- the write path: idempotency, replay, content defense --------------------------
    def writes_by_nonce(self, keys: Sequence[NonceKey]) -> dict[NonceKey, tuple[str, str]]:
        """For each (agent_id, nonce) already used: (write id, its original outcome JSON)."""
        ...

    def assertion_facts_many(self, items: Sequence[tuple[str, DuplicateKey]], since_us: int
                             ) -> list[tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]]:
        """``writes_by_nonce`` and ``duplicates`` of each assertion, given as (nonce,
        duplicate key), in order: in as few reads as the backend can (one statement per
        ``FACTS_PER_STATEMENT`` on PostgreSQL)."""
        ...

    def duplicates(self, keys: Sequence[DuplicateKey], since_us: int) -> set[DuplicateKey]:
        """The keys of assertions (not rejected) recorded at or after ``since_us``."""
        ...

    def trust_counters(self, agent_ids: Iterable[str]) -> dict[str, tuple[int, ...]]:
        """Each known agent's (accepted, quarantined, approved, rejected, retracted)."""
        ...

    def allowlist_expiry(self) -> dict[str, int]:
        """Allowlisted agent → expiry (unix µs)."""
        ...

    def get_state(self, key: str) -> dict[str, Any] | None:
        """Journaled runtime state (``thresholds``, ``config_thresholds``)."""
        ...

    def pending_count(self, agent_id: str | None = None, namespaces: Namespaces = None
                      ) -> int:
        """Pending quarantine items (of one agent)."""
        ...

    def assertion_row(self, aid: str) -> Any | None:
        """The stored row of an assertion, read by column name (``row["agent_id"]``,
        ``status``, ``ended_lsn``, …)."""
        ...

    # -- reads ---------------------------------------------------------------------------
    @property
    def applied_lsn(self) -> int:
        """The last LSN applied to the derived state."""
        ...

    @property
    def search_lag_records(self) -> int:
        """Assertions readable by id and filter that the full-text index has not taken in
        yet (0 where it is written with them); ``search`` itself never trails."""
        ...

    def lsn_at(self, at_us: int) -> int:
        """The greatest LSN recorded at or before ``at_us`` (0 if none)."""
        ...

    def assertion(self, aid: str, namespaces: Namespaces = None) -> dict[str, Any] | None:
        """One assertion in the API's shape (None: unknown, or outside ``namespaces``)."""
        ...

    def list_assertions(self, f: AssertionFilter, as_of: int, cursor: str | None,
                        namespaces: Namespaces = None) -> dict[str, Any]: ...

    def search(self, q: str, limit: int, as_of: int, cursor: str | None,
               namespaces: Namespaces = None) -> dict[str, Any]: ...

    def cached_belief_json(self, subject: str, predicate: str, context: str | None,
                           as_of: int | None) -> bytes | None:
        """A belief already computed for the LSN it would be answered at, else None.
        Unrestricted answers only: a restricted or valid-time belief is never cached."""
        ...

    def belief_json(self, subject: str, predicate: str, context: str | None,
                    as_of: int | None, namespaces: Namespaces = None,
                    valid_at: int | None = None) -> bytes: ...

    def subject_beliefs(self, subject: str, context: str | None, as_of: int | None,
                        limit: int, cursor: str | None, namespaces: Namespaces = None,
                        valid_at: int | None = None) -> dict[str, Any]: ...

    def disputes(self, as_of: int | None, limit: int, cursor: str | None, *,
                 reference_us: int | None, subject: str | None, predicate: str | None,
                 namespaces: Namespaces = None) -> dict[str, Any]: ...

    # -- admin ---------------------------------------------------------------------------
    def list_quarantine(self, *, status: str | None, agent_prefix: str | None,
                        reason: str | None, limit: int, cursor: str | None,
                        oldest_first: bool = False, namespaces: Namespaces = None,
                        severity: str | None = None
                        ) -> dict[str, Any]: ...

    def quarantine_item(self, qid: str, namespaces: Namespaces = None
                        ) -> dict[str, Any] | None: ...

    def quarantine_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Quarantine item ids that start with ``prefix``, at most ``limit``."""
        ...

    def pending_ids_of_agent(self, agent_id: str, namespaces: Namespaces = None
                             ) -> list[str]: ...

    def pending_per_agent(self, namespaces: Namespaces = None) -> dict[str, int]:
        """Pending items per agent, busiest first."""
        ...

    def rejected_before(self, before_us: int) -> int: ...

    def allowlist(self) -> list[dict[str, Any]]: ...

    def allowlisted_until(self, agent_id: str) -> int | None: ...

    def agent_counts(self, agent_id: str, namespaces: Namespaces = None
                     ) -> dict[str, Any] | None:
        """The agent's counters and first/last seen (None: never wrote). Restricted, they
        are counted over its visible assertions and their quarantine items (None: it has
        none)."""
        ...

    def agents_with_prefix(self, prefix: str, limit: int = 2) -> list[str]: ...

    def manual_breakers(self) -> list[dict[str, Any]]: ...

    def enrollments(self) -> list[dict[str, Any]]:
        """Every enrolled or revoked agent key (``index.admin.enrollments``): what the
        write path holds in memory to refuse revoked, unenrolled or out-of-namespace
        writes."""
        ...

    def last_admin_lsn(self) -> int:
        """The LSN of the newest admin record (0 if none): nodes sharing a store poll it
        to reload what they cache from admin decisions (thresholds, allowlist, bans)."""
        ...

    def audit_log(self, target: str | None, limit: int) -> list[dict[str, Any]]: ...

    def tokens(self) -> list[dict[str, Any]]:
        """Every API token's row (its hash, never the secret), oldest first."""
        ...

    # -- dashboard figures -----------------------------------------------------------------
    def pending_by_reason(self, namespaces: Namespaces = None) -> dict[str, int]: ...

    def pending_by_agent(self, reason: str, namespaces: Namespaces = None
                         ) -> list[tuple[str, int]]: ...

    def newest_pending(self, agent_id: str, reason: str | None, limit: int,
                       namespaces: Namespaces = None) -> list[dict[str, Any]]: ...

    def last_lsn_at(self, at_us: int) -> int: ...

    def quarantined_between(self, after_lsn: int, upto_lsn: int,
                            namespaces: Namespaces = None) -> int: ...

    def decisions_by_minute(self, start_us: int, after_lsn: int, minute_us: int,
                            namespaces: Namespaces = None) -> list[tuple[int, str, int]]: ...

    def decision_totals(self, namespaces: Namespaces = None) -> tuple[int, int]: ...

    def assertions_after(self, lsn: int, namespaces: Namespaces = None) -> int: ...


class Store(Protocol):
    """A storage backend: the journal and the derived state behind one door."""

    @property
    def reads(self) -> Reads:
        """The derived state's queries."""
        ...

    def submit(self, payloads: Sequence[bytes], contexts: Sequence[Any] | None = None
               ) -> concurrent.futures.Future[list[Record]]:
        """Append ``payloads`` in order; the future resolves with their records once they
        are durable and applied (see the module's contract). Raises ``Unavailable`` at
        once when the store refuses appends (``JournalReadOnly`` when a journal turned
        read-only until a restart).

        An applier may mark a context as taken: when a signed write's record found its
        write id or its (agent, nonce) already owned by another record (committed before
        it, possibly by another node sharing the store), the record is journaled but
        changes nothing, and its context gets ``context.taken = (owner's write id, the
        owner's original outcome JSON)``. The same write id means a retry of the same
        write; another one, a reused nonce."""
        ...

    @property
    def last_lsn(self) -> int:
        """The LSN of the last durable record (0 for an empty journal)."""
        ...

    @property
    def read_only_reason(self) -> str | None:
        """Why appends are refused until a restart (a failed write or fsync: never retried
        and assumed good), or None."""
        ...

    def records(self, from_lsn: int = 1, to_lsn: int | None = None) -> Iterator[Record]:
        """The durable records from ``from_lsn`` to ``to_lsn`` (inclusive; None: the end),
        in order, checksums and chain checked as they are read."""
        ...

    def readiness(self) -> tuple[bool, str]:
        """(True, "ready"), or (False, why appends are refused: read-only journal,
        derived state behind after a failure, disk low, backend unreachable)."""
        ...

    def digest(self) -> str:
        """SHA-256 of the canonical dump of the derived state (one snapshot)."""
        ...

    def close(self) -> None:
        """Stop accepting appends, finish what is in flight, release everything."""
        ...
