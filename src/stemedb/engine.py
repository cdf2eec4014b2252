"""Database: the one door for writes and reads. Owns the journal and the index.

Write path: signature → idempotency (200) → clock skew (422) → nonce replay (409) →
journal (group commit, one fsync for many callers) → index (applied in the journal's
commit thread, same batch, one SQLite transaction) → answer. A caller is answered only
after its record is durable and applied.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import records, signing
from .admin import Admin
from .backends import open_store
from .embedded import EmbeddedStore
from .enrollment import Enrollment
from .errors import (
    BreakerOpen,
    Conflict,
    Forbidden,
    JournalReadOnly,
    NonceReused,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SignatureInvalid,
    StemeError,
    Unavailable,
    ValidationFailed,
)
from .events import NO_EVENTS, WriteEvents
from .gate import DefenseGate, Known
from .guards import Admission, BreakerState, Guards, retry_after_header
from .index import IndexStore
from .journal import Journal, Record
from .model import (
    Assertion,
    Retraction,
    load_json,
    parse_assertion,
    parse_retraction,
    parse_time,
    quarantine_id,
    write_id,
)
from .rounds import Releases, Rounds
from .settings import ContentDefenseSettings, Settings
from .store import AssertionFilter, Namespaces, Reads, Store
from .tokens import Tokens

log = logging.getLogger("stemedb.engine")


Claimed = Callable[[str], None]  # told the agent id a write's body claims
FOLLOW_ADMIN_SECONDS = 0.25  # how often a cluster node looks for other nodes' decisions
ROUNDS_IN_THREAD_FROM = 8  # writes in flight from which check reads leave the loop (embedded)
GateFactory = Callable[[Reads, ContentDefenseSettings], DefenseGate]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """HTTP status and body of one write."""

    status: int
    body: dict[str, Any]


@dataclass(slots=True)
class _Pending:
    """A write checked and about to be journaled (nonce reserved)."""

    kind: str
    body: bytes
    signature: str
    parsed: Assertion | Retraction
    id: str
    verdict: dict[str, Any] | None = None
    # What content defense needs from the index, when read together with the nonce.
    facts: Known | None = None
    record: dict[str, Any] | None = None  # the journal payload, as a dict, once submitted
    submitted: bool = False
    # Set by the store's applier when another writer's record took this nonce first (a
    # cluster backend): (that write's id, its outcome JSON). This record changed nothing.
    taken: tuple[str, str] | None = None
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


class Database:
    """The engine over a store (``store.Store``; the embedded one unless given) and its
    services: guards, the content-defense gate and the admin service."""

    def __init__(self, settings: Settings, *, events: WriteEvents = NO_EVENTS,
                 store: Store | None = None, defense: GateFactory = DefenseGate,
                 fsync: Callable[[int], None] = os.fsync,
                 clock: Callable[[], float] = time.time) -> None:
        """``store``: the storage backend (default: the embedded store in
        ``settings.data_dir``); ``defense``: builds the content-defense gate from the
        reads and the ``[content_defense]`` settings (benchmarks pass a variant)."""
        self.settings = settings
        self.clock = clock
        self.data_dir = settings.data_dir
        self._inflight: dict[tuple[str, str], _Pending] = {}
        self._inflight_lock = threading.Lock()
        self._events = events
        self.guards = Guards(settings)
        self.store: Store = store if store is not None else open_store(
            settings, fsync=fsync, on_commit=self._on_commit_stats)
        self.reads = self.store.reads
        self._verify_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.server.verify_workers, thread_name_prefix="stemedb-verify"
        )
        self.defense = defense(self.reads, settings.content_defense)
        self._releases = Releases()
        self._facts_rounds = Rounds(self.defense.facts_many, in_thread=self._read_in_thread,
                                    shared=lambda e: isinstance(e, StemeError))
        self.enrollment = Enrollment(self.reads, settings.agents, self.append_admin)
        self.admin = Admin(reads=self.reads, append=self.append_admin,
                           breakers=self.guards.breakers, defense=self.defense,
                           config=settings.content_defense, events=events,
                           enrollment=self.enrollment)
        self.tokens = Tokens(reads=self.reads, append=self.append_admin)
        self.tokens.reload()
        self._restore_manual_breakers()

    def _read_in_thread(self) -> bool:
        """Whether a round of check reads goes to a worker thread: on a shared store
        always; embedded, from ``ROUNDS_IN_THREAD_FROM`` writes in flight (architecture.md)."""
        return self.shared_store or len(self._inflight) >= ROUNDS_IN_THREAD_FROM

    @property
    def shared_store(self) -> bool:
        """Whether other nodes write to this store too (cluster mode)."""
        return not isinstance(self.store, EmbeddedStore)

    @property
    def journal(self) -> Journal:
        """The embedded store's journal (embedded only)."""
        return self._embedded().journal

    @property
    def index(self) -> IndexStore:
        """The embedded store's index (embedded only)."""
        return self._embedded().index

    def _embedded(self) -> EmbeddedStore:
        if not isinstance(self.store, EmbeddedStore):
            raise AttributeError("the store is not the embedded one")
        return self.store

    async def start(self) -> None:
        """Work done once the event loop runs: journal a changed config's thresholds,
        start housekeeping."""
        await self.admin.sync_config_thresholds()
        await asyncio.to_thread(self.enrollment.refresh)
        self._tasks = [asyncio.create_task(self._housekeeping(), name="stemedb-housekeeping")]
        if self.shared_store:  # other nodes decide too
            self._tasks.append(asyncio.create_task(self._follow_admin(),
                                                   name="stemedb-follow-admin"))

    async def stop(self) -> None:
        for task in getattr(self, "_tasks", ()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow_admin(self, every_seconds: float = FOLLOW_ADMIN_SECONDS) -> None:
        """On a store other nodes write to, reload what this node caches from admin
        decisions (thresholds, allowlist, in-process bans, API tokens) when another node
        journaled one: a change made on any node applies on all within ``every_seconds``."""
        seen = await asyncio.to_thread(self.reads.last_admin_lsn)
        while True:
            await asyncio.sleep(every_seconds)
            try:
                lsn = await asyncio.to_thread(self.reads.last_admin_lsn)
            except StemeError as e:  # the database is away: try again next round
                log.debug("admin follow skipped: %s", e.detail)
                continue
            if lsn != seen:
                seen = lsn
                self.defense.invalidate()
                try:  # off the loop: on this store a read is a round trip
                    await asyncio.to_thread(self.enrollment.refresh)
                except StemeError:
                    self.enrollment.invalidate()
                try:
                    await asyncio.to_thread(self.tokens.reload)
                except StemeError as e:  # keep the table we have; next round retries
                    log.debug("token reload skipped: %s", e.detail)
                    seen = -1
                if self.guards.link is None:  # with Redis, bans are shared already
                    await asyncio.to_thread(self._sync_manual_breakers)

    async def _housekeeping(self, every_seconds: float = 60.0) -> None:
        while True:
            try:
                await self.admin.purge_rejected()
            except StemeError as e:  # read-only journal etc.: try again later
                log.warning("housekeeping skipped: %s", e.detail)
            await asyncio.sleep(every_seconds)

    async def append_admin(self, payloads: Sequence[bytes]) -> list[Record]:
        """Journal admin records (one group commit) and wait until applied. The write
        path's cached thresholds and allowlist are reloaded afterwards."""
        self._check_writable()
        try:
            return await asyncio.wrap_future(self.store.submit(payloads))
        finally:
            self.defense.invalidate()
            self.enrollment.invalidate()

    def close(self) -> None:
        self.store.close()
        self._verify_pool.shutdown(wait=True)
        self.guards.close()

    # -- commit-thread callbacks ----------------------------------------------------

    def _on_commit_stats(self, n: int, fsync_seconds: float, nbytes: int) -> None:
        self._events.observe_commit(n, fsync_seconds, nbytes)

    @property
    def events(self) -> WriteEvents:
        """Who observes the engine and its services (``Metrics`` in a server)."""
        return self._events

    @events.setter
    def events(self, events: WriteEvents) -> None:
        self._events = self.admin.events = events

    # -- health -----------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        return self.store.readiness()

    def _check_writable(self) -> None:
        ok, reason = self.readiness()
        if not ok:
            if self.store.read_only_reason:
                raise JournalReadOnly(reason)
            raise Unavailable(reason)

    # -- writes -----------------------------------------------------------------------

    def _verified(self, kind: str, body: bytes, signature: str | None,
                  claimed: Claimed | None = None) -> tuple[Assertion | Retraction, str]:
        """Schema (400/422), then the signature (401): who wrote this, proven.
        Returns the parsed write and the signature in canonical base64. ``claimed`` is
        told the agent id the body claims as soon as it parsed (the access log's)."""
        sig = signing.decode_signature(signature)
        parsed: Assertion | Retraction = (
            parse_assertion(body) if kind == records.ASSERT else parse_retraction(body)
        )
        if claimed is not None:
            claimed(parsed.agent_id)
        if not signing.verify(parsed.agent_id, body, sig):
            raise SignatureInvalid("the signature does not match the body and agent_id")
        return parsed, signing.encode_signature(sig)

    def _admit(self, agent: str) -> Admission:
        """The agent's rate limit and breaker (429), before any check of the write."""
        decision = self.guards.limit("assert", agent)
        if decision is not None and not decision.allowed:
            self._events.observe_rate_limited("assert")
            raise RateLimited(f"agent {agent[:16]} is over its write rate limit",
                              retry_after=retry_after_header(decision.retry_after),
                              limit_headers=decision.headers())
        admission = self.guards.breakers.admit(agent)
        if not admission.allowed:
            raise BreakerOpen(f"the circuit breaker of agent {agent[:16]} is "
                              f"{admission.state.value}",
                              retry_after=retry_after_header(admission.retry_after),
                              state=admission.state.value)
        return admission

    def _guarded_reserve(self, kind: str, body: bytes, sig_b64: str,
                         parsed: Assertion | Retraction,
                         known: dict[tuple[str, str], tuple[str, str]], mark: int,
                         ) -> tuple[_Pending | WriteResult, Admission]:
        """Admission, then the checks before the journal (without content defense);
        ``known``: the index's answer for the write's nonce, read after ``mark``. A 4xx
        found after the signature proved the agent counts as a breaker failure."""
        admission = self._admit(parsed.agent_id)
        try:
            self._enrolled(parsed)
            return self._reserve(kind, body, sig_b64, parsed, known, mark), admission
        except StemeError as e:
            self._judge_error(parsed.agent_id, admission, e)
            raise

    async def _guarded_reserve_read(self, kind: str, body: bytes, sig_b64: str,
                                    parsed: Assertion | Retraction,
                                    ) -> tuple[_Pending | WriteResult, Admission]:
        """``_guarded_reserve`` of a single write, reading what its checks need first:
        an assertion's facts, with those of the writes that reach their checks while a
        read is out (``Rounds``, see ``_read_in_thread``); on a shared store a retraction's
        nonce in a worker thread. Admission comes first, so a refused agent costs no
        read; the reservation stays on the loop."""
        admission = self._admit(parsed.agent_id)
        try:
            self._enrolled(parsed)
            facts = None
            mark = self._releases.mark()
            known: dict[tuple[str, str], tuple[str, str]] | None = None  # None: _reserve reads
            if isinstance(parsed, Assertion):
                known, facts = await self._facts_rounds(parsed)
            elif self.shared_store:
                key = (parsed.agent_id, parsed.nonce)
                known = await asyncio.to_thread(self.reads.writes_by_nonce, [key])
            checked = self._reserve(kind, body, sig_b64, parsed, known, mark)
            if facts is not None and isinstance(checked, _Pending) and not checked.submitted:
                checked.facts = facts
            return checked, admission
        except StemeError as e:
            self._judge_error(parsed.agent_id, admission, e)
            raise

    def _enrolled(self, parsed: Assertion | Retraction) -> None:
        """403 for a revoked key, an unenrolled one in registered mode, or an enrolled
        one writing outside its namespaces: one look-up in memory."""
        if isinstance(parsed, Assertion):
            self.enrollment.admit(parsed.agent_id, parsed.context)
        else:
            self.enrollment.admit(parsed.agent_id, None, retraction=True)

    def _judge_error(self, agent: str, admission: Admission, e: StemeError) -> None:
        self._judge(agent, admission, e.status < 500 if e.status != 429 else True)

    def _stored(self, kind: str, agent: str, admission: Admission,
                verdict: dict[str, Any] | None) -> None:
        """A new write is durable: judge it for the breaker and report it."""
        self._judge(agent, admission, verdict is not None)
        self._events.observe_write(kind, "quarantined" if verdict else "accepted")
        if verdict:
            self._events.observe_quarantine(agent, verdict["reason"])

    def _judge(self, agent: str, admission: Admission, failure: bool | None) -> None:
        """Feed a write's outcome to the agent's breaker (None: not judged, e.g. a replay)."""
        breakers = self.guards.breakers
        if failure is None:
            breakers.release(agent, admission)
            return
        before = admission.state
        breakers.record(agent, failure, probe=admission.probe)
        if failure and before != BreakerState.OPEN:
            view = breakers.view(agent)
            if view.state == BreakerState.OPEN and not view.manual:
                self._events.observe_breaker_open("automatic")

    def _reserve(self, kind: str, body: bytes, sig_b64: str, parsed: Assertion | Retraction,
                 known: dict[tuple[str, str], tuple[str, str]] | None, mark: int,
                 ) -> _Pending | WriteResult:
        """Idempotency (200), clock skew (422), nonce replay (409), references; then the
        write's nonce is reserved. ``known`` holds the index's answer for the nonce when
        the caller read it first (after ``self._releases.mark()`` gave ``mark``), else None.

        The in-flight table is consulted before the index: a write leaves the table only
        after its index rows are committed, so one of the two always sees it. An answer
        read before that check is stale if the nonce's write left the table since the
        read (``Releases``): then the index is read again. Only the event-loop thread
        adds entries, so check-then-add needs no lock held between."""
        wid = write_id(body)
        key = (parsed.agent_id, parsed.nonce)
        with self._inflight_lock:
            pending = self._inflight.get(key)
        if pending is not None:
            if pending.id == wid:
                return pending  # a retry racing its original: share its outcome
            raise NonceReused(f"nonce {parsed.nonce!r} is already used by write {pending.id}")
        if known is not None and self._releases.since(key, mark):
            known = None
        seen = (self.reads.writes_by_nonce([key]) if known is None else known).get(key)
        if seen is not None and seen[0] == wid:
            return WriteResult(200, orjson.loads(seen[1]))
        self._check_skew(parsed)
        if seen is not None:
            raise NonceReused(f"nonce {parsed.nonce!r} is already used by write {seen[0]}")
        self._check_references(kind, parsed)
        p = _Pending(kind, body, sig_b64, parsed, wid)
        with self._inflight_lock:
            self._inflight[key] = p
        return p

    def _defend(self, staged: Sequence[tuple[int, _Pending, Admission]]
                ) -> list[tuple[int, _Pending, Admission, StemeError | None]]:
        """Content defense for reserved, not yet journaled assertions: sets each verdict,
        or releases the write with the error that refused it (pending cap, 429)."""
        asserts = [(p, adm, p.parsed) for _, p, adm in staged if isinstance(p.parsed, Assertion)]
        known = asserts[0][0].facts if len(asserts) == 1 else None
        verdicts = self.defense.verdicts([a for _, _, a in asserts], known)
        refused: dict[int, StemeError] = {}
        for (p, adm, _), v in zip(asserts, verdicts, strict=True):
            if isinstance(v, StemeError):
                refused[id(p)] = v
                self._judge_error(p.parsed.agent_id, adm, v)
                p.future.set_exception(v)
                p.future.exception()  # retrieved: whoever shares it sees the error
                self._release(p)
            else:
                p.verdict = v
        return [(i, p, adm, refused.get(id(p))) for i, p, adm in staged]

    def _check_skew(self, parsed: Assertion | Retraction) -> None:
        skew = self.settings.server.max_clock_skew_seconds
        delta = parsed.timestamp_dt.timestamp() - self.clock()
        if abs(delta) > skew:
            where = "ahead of" if delta > 0 else "behind"
            raise ValidationFailed([{
                "field": "timestamp",
                "message": f"is {abs(delta):.0f} s {where} server time; "
                           f"at most {skew} s are allowed",
            }])

    def _check_references(self, kind: str, parsed: Assertion | Retraction) -> None:
        target = parsed.retracts if isinstance(parsed, Retraction) else parsed.supersedes
        if target is None:
            return
        field_name = "retracts" if isinstance(parsed, Retraction) else "supersedes"
        row = self.reads.assertion_row(target)
        if row is None:
            if isinstance(parsed, Retraction):
                raise NotFound(f"assertion {target} does not exist")
            raise ValidationFailed([{"field": field_name, "message": "no such assertion"}])
        if row["agent_id"] != parsed.agent_id:
            raise Forbidden(f"only the agent that made assertion {target} may {kind} it")
        self.enrollment.admit_target(parsed.agent_id, row["context"] or None)
        if row["status"] != "active":
            raise Conflict(f"assertion {target} is {row['status']}, not active")

    def _release(self, p: _Pending) -> None:
        key = (p.parsed.agent_id, p.parsed.nonce)
        self._releases.add(key)  # first: whoever misses it in the table sees the release
        with self._inflight_lock:
            if self._inflight.get(key) is p:
                del self._inflight[key]

    def _submit(self, pendings: Sequence[_Pending]) -> concurrent.futures.Future[list[Record]]:
        at = records.now_us()
        payloads = []
        for p in pendings:  # each encoded once; the dict rides along to the index
            p.record = records.SignedWrite(p.kind, p.body, p.signature, at, p.verdict).to_dict()
            payloads.append(orjson.dumps(p.record))
            p.submitted = True
        try:
            fut = self.store.submit(payloads, list(pendings))
        except BaseException as e:
            for p in pendings:
                p.future.set_exception(e)
                p.future.exception()  # retrieved: the caller sees the raise instead
                self._release(p)
            raise

        def done(f: concurrent.futures.Future[list[Record]]) -> None:
            err = f.exception()
            for i, p in enumerate(pendings):
                if err is not None:
                    p.future.set_exception(err)
                elif p.taken is None:
                    p.future.set_result(_outcome(p, f.result()[i].lsn))
                elif p.taken[0] == p.id:  # the same write won elsewhere: a retry
                    p.future.set_result(orjson.loads(p.taken[1]))
                else:
                    p.future.set_exception(NonceReused(
                        f"nonce {p.parsed.nonce!r} is already used by write {p.taken[0]}"))
                    p.future.exception()  # retrieved: the caller sees it through await
                self._release(p)

        fut.add_done_callback(done)
        return fut

    async def write(self, kind: str, body: bytes, signature: str | None,
                    claimed: Claimed | None = None) -> WriteResult:
        """One signed write (POST /v1/assert or /v1/retract). ``claimed``: see
        ``_verified``."""
        try:
            return await self._write(kind, body, signature, claimed)
        except StemeError as e:
            self._events.observe_write(kind, e.type)
            raise

    async def _write(self, kind: str, body: bytes, signature: str | None,
                     claimed: Claimed | None) -> WriteResult:
        limit = self.settings.server.max_body_bytes
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is {len(body)} bytes; at most {limit} are allowed")
        self._check_writable()
        parsed, sig_b64 = self._verified(kind, body, signature, claimed)
        checked, admission = await self._guarded_reserve_read(kind, body, sig_b64, parsed)
        agent = parsed.agent_id
        if isinstance(checked, WriteResult):
            self._judge(agent, admission, None)
            self._events.observe_write(kind, "replayed")
            return checked
        if checked.submitted:  # an identical request is in flight: share its outcome
            self._judge(agent, admission, None)
            return WriteResult(200, await asyncio.wrap_future(checked.future))
        ((_, _, _, refused),) = self._defend([(0, checked, admission)])
        if refused is not None:
            raise refused
        try:
            self._submit([checked])
            out = await asyncio.wrap_future(checked.future)
        except NonceReused:  # another node's write took the nonce first
            self._judge(agent, admission, True)
            raise
        except BaseException:
            self._judge(agent, admission, None)
            raise
        if checked.taken is not None:  # the same write was stored by another node
            self._judge(agent, admission, None)
            self._events.observe_write(kind, "replayed")
            return WriteResult(200, out)
        self._stored(kind, agent, admission, checked.verdict)
        return WriteResult(202 if checked.verdict else 201, out)

    async def write_batch(self, items: Sequence[tuple[bytes, str]]) -> list[dict[str, Any]]:
        """POST /v1/assert/batch: each item checked on its own; all accepted items share
        one journal submission. One bad item never fails the others.

        Signatures are verified on the verify pool; the index is asked about every
        item's nonce, and content defense about every reserved item, in one go each."""
        self._check_writable()
        parsed = await self._verify_all(items)
        results: list[dict[str, Any] | None] = [None] * len(items)

        def fail(i: int, e: StemeError) -> None:
            results[i] = {"index": i, "status": "error", "error": problem_of(e)}

        mark = self._releases.mark()
        known = self.reads.writes_by_nonce(
            [(x[0].agent_id, x[0].nonce) for x in parsed if not isinstance(x, StemeError)])
        staged: list[tuple[int, _Pending, Admission]] = []
        shared: list[tuple[int, _Pending, Admission]] = []
        mine: set[int] = set()  # ids of the pendings this batch reserved
        for i, (body, _) in enumerate(items):
            item = parsed[i]
            try:
                if isinstance(item, StemeError):
                    raise item
                a, sig_b64 = item
                checked, admission = self._guarded_reserve(records.ASSERT, body, sig_b64, a, known,
                                                           mark)
            except StemeError as e:
                self._events.observe_write(records.ASSERT, e.type)
                fail(i, e)
                continue
            if isinstance(checked, WriteResult):
                self._judge(a.agent_id, admission, None)
                results[i] = {"index": i, **checked.body, "http_status": 200}
            elif checked.submitted or id(checked) in mine:  # the same write again
                shared.append((i, checked, admission))
            else:
                mine.add(id(checked))
                staged.append((i, checked, admission))
        new: list[tuple[int, _Pending, Admission]] = []
        for i, p, admission, refused in self._defend(staged):
            if refused is None:
                new.append((i, p, admission))
            else:
                self._events.observe_write(records.ASSERT, refused.type)
                fail(i, refused)
        if new:
            try:  # one wait for the whole submission: every item's future is set by then
                await asyncio.wrap_future(self._submit([p for _, p, _ in new]))
            except StemeError as e:
                for i, p, admission in new:
                    self._judge(p.parsed.agent_id, admission, None)
                    fail(i, e)
                new = []
        for i, p, admission in new:
            if p.taken is not None:  # another node's write took the nonce first
                self._judge(p.parsed.agent_id, admission, True if p.taken[0] != p.id else None)
                try:
                    results[i] = {"index": i, **p.future.result(), "http_status": 200}
                except NonceReused as e:
                    self._events.observe_write(records.ASSERT, e.type)
                    fail(i, e)
                continue
            self._stored(records.ASSERT, p.parsed.agent_id, admission, p.verdict)
            results[i] = {"index": i, **p.future.result(), "http_status": 202 if p.verdict else 201}
        for i, p, admission in shared:
            self._judge(p.parsed.agent_id, admission, None)
            try:
                out = await asyncio.wrap_future(p.future)
            except StemeError as e:
                fail(i, e)
                continue
            results[i] = {"index": i, **out, "http_status": 200}
        return [r for r in results if r is not None]

    async def _verify_all(self, items: Sequence[tuple[bytes, str]]
                          ) -> list[tuple[Assertion, str] | StemeError]:
        """Parse and verify every item on the verify pool: one task per worker, each a
        contiguous slice (libsodium releases the GIL, so slices verify in parallel)."""
        limit = self.settings.server.max_body_bytes

        def one(body: bytes, signature: str) -> tuple[Assertion, str] | StemeError:
            try:
                if len(body) > limit:
                    raise PayloadTooLarge(f"the body is {len(body)} bytes; at most {limit}")
                parsed, sig_b64 = self._verified(records.ASSERT, body, signature)
                assert isinstance(parsed, Assertion)
                return parsed, sig_b64
            except StemeError as e:
                return e

        def chunk(part: Sequence[tuple[bytes, str]]) -> list[tuple[Assertion, str] | StemeError]:
            return [one(body, signature) for body, signature in part]

        size = max(16, -(-len(items) // self.settings.server.verify_workers))
        parts = await asyncio.gather(*[
            asyncio.wrap_future(self._verify_pool.submit(chunk, items[i:i + size]))
            for i in range(0, len(items), size)])
        return [r for part in parts for r in part]

    # -- reads ------------------------------------------------------------------------

    def refuse_if_banned(self, kind: str, body: bytes, signature: str | None,
                         claimed: Claimed | None = None) -> None:
        """429 for a correctly signed write of an agent whose breaker is OPEN, before any
        other complaint about the request (e.g. its content type): a banned agent learns
        that it is banned."""
        try:
            parsed, _ = self._verified(kind, body, signature, claimed)
        except StemeError:
            return
        view = self.guards.breakers.view(parsed.agent_id)
        if view.state == BreakerState.OPEN and view.until is not None:
            raise BreakerOpen(f"the circuit breaker of agent {parsed.agent_id[:16]} is OPEN",
                              retry_after=retry_after_header(max(0.0, view.until - time.time())))

    def breaker_view(self, agent_id: str) -> dict[str, Any]:
        return self.admin.breaker_view(agent_id)

    def _sync_manual_breakers(self) -> None:
        """This node's in-process breakers follow the bans other nodes journaled: opened
        ones in force are opened, reset ones are closed."""
        breakers = self.guards.breakers
        for b in self.reads.manual_breakers():
            view = breakers.view(b["agent_id"])
            if b["state"] == "OPEN" and b["until_us"] and b["until_us"] / 1e6 > time.time():
                if not (view.manual and view.state == BreakerState.OPEN):
                    at = b["opened_at"] / 1e6
                    breakers.open(b["agent_id"], b["reason"],
                                  (b["until_us"] - b["opened_at"]) / 1e6, at=at)
            elif b["state"] == "CLOSED" and view.manual and view.state == BreakerState.OPEN:
                breakers.reset(b["agent_id"])

    def _restore_manual_breakers(self) -> None:
        """Manual opens are journaled; replay the ones still in force (automatic state is
        rebuilt from the writes that follow)."""
        for b in self.reads.manual_breakers():
            if b["state"] == "OPEN" and b["until_us"]:
                at = b["opened_at"] / 1e6
                self.guards.breakers.open(b["agent_id"], b["reason"],
                                          (b["until_us"] - b["opened_at"]) / 1e6, at=at)

    def resolve_as_of(self, as_of: str | None) -> int:
        """An ``as_of`` parameter (RFC 3339 time or ``lsn:N``) to an LSN."""
        current = self.reads.applied_lsn
        if as_of is None or as_of == "":
            return current
        if as_of.startswith("lsn:"):
            try:
                n = int(as_of[4:])
            except ValueError:
                n = -1
            if n < 0:
                raise ValidationFailed([{"field": "as_of", "message": "lsn:N needs N >= 0"}])
            return min(n, current)
        try:
            t = parse_time(as_of)
        except ValueError as e:
            raise ValidationFailed([{"field": "as_of", "message": f"{e}, or lsn:N"}]) from None
        return min(self.reads.lsn_at(int(t.timestamp() * 1_000_000)), current)

    def get_assertion(self, aid: str, namespaces: Namespaces = None) -> dict[str, Any]:
        """One assertion; 404 when it does not exist or lies outside ``namespaces`` (the
        same answer, so existence does not leak)."""
        found = self.reads.assertion(aid.lower(), namespaces)
        if found is None:
            raise NotFound(f"no assertion with id {aid}")
        self.enrollment.mark([found])
        return found

    def list_assertions(self, f: AssertionFilter, as_of: str | None,
                        cursor: str | None, namespaces: Namespaces = None) -> dict[str, Any]:
        page = self.reads.list_assertions(f, self.resolve_as_of(as_of), cursor, namespaces)
        self.enrollment.mark(page["items"], page["as_of_lsn"])
        return page

    def search(self, q: str, limit: int, as_of: str | None, cursor: str | None,
               namespaces: Namespaces = None) -> dict[str, Any]:
        page = self.reads.search(q, limit, self.resolve_as_of(as_of), cursor, namespaces)
        self.enrollment.mark(page["items"], page["as_of_lsn"])
        return page

    async def beliefs(self, subject: str, predicate: str | None, context: str | None,
                      as_of: str | None, limit: int = 100, cursor: str | None = None,
                      namespaces: Namespaces = None, valid_at: int | None = None) -> bytes:
        """GET /v1/beliefs as JSON bytes. An answer already computed for the LSN it would
        be given at is served on the event loop (one indexed read and a dictionary
        look-up); computing one (milliseconds of Python), finding the LSN of an ``as_of``
        time, or a whole subject's page runs in a worker thread, so it never holds up the
        loop's other requests. Restricted to ``namespaces`` or at a ``valid_at`` time
        (unix µs), the answer is computed over those claims only, never cached."""
        if as_of and not as_of.startswith("lsn:"):
            lsn: int | None = await asyncio.to_thread(self.resolve_as_of, as_of)
        else:
            lsn = self.resolve_as_of(as_of) if as_of else None
        if namespaces is not None or valid_at is not None:
            return await asyncio.to_thread(self._filtered_beliefs, subject, predicate, context,
                                           lsn, limit, cursor, namespaces, valid_at)
        if predicate is None:
            page = await asyncio.to_thread(self.reads.subject_beliefs, subject, context, lsn,
                                           limit, cursor)
            return orjson.dumps(page)
        body = self.reads.cached_belief_json(subject, predicate, context, lsn)
        if body is None:
            body = await asyncio.to_thread(self.reads.belief_json, subject, predicate, context,
                                           lsn)
        return body

    def _filtered_beliefs(self, subject: str, predicate: str | None, context: str | None,
                          lsn: int | None, limit: int, cursor: str | None,
                          namespaces: Namespaces, valid_at: int | None) -> bytes:
        if predicate is None:
            return orjson.dumps(self.reads.subject_beliefs(
                subject, context, lsn, limit, cursor, namespaces, valid_at))
        return self.reads.belief_json(subject, predicate, context, lsn, namespaces, valid_at)

    def disputes(self, as_of: str | None, limit: int, cursor: str | None, *,
                 subject: str | None, predicate: str | None,
                 namespaces: Namespaces = None) -> dict[str, Any]:
        """GET /v1/disputes: contested keys, most contested first. ``open_for_seconds`` is
        measured to now, to the ``as_of`` time, or (``lsn:N``) to when LSN N was
        recorded."""
        lsn = self.resolve_as_of(as_of) if as_of else None
        if not as_of:
            reference: int | None = int(time.time() * 1_000_000)
        elif as_of.startswith("lsn:"):
            reference = None
        else:
            reference = int(parse_time(as_of).timestamp() * 1_000_000)
        return self.reads.disputes(lsn, limit, cursor, reference_us=reference, subject=subject,
                                   predicate=predicate, namespaces=namespaces)


def _outcome(p: _Pending, lsn: int) -> dict[str, Any]:
    if p.kind == records.RETRACT:
        assert isinstance(p.parsed, Retraction)
        return {"id": p.id, "status": "retracted", "retracts": p.parsed.retracts, "lsn": lsn}
    if p.verdict:
        return {"id": p.id, "status": "quarantined", "lsn": lsn,
                "quarantine_id": quarantine_id(p.id), "reason": p.verdict["reason"]}
    return {"id": p.id, "status": "accepted", "lsn": lsn}


def problem_of(e: StemeError, instance: str | None = None) -> dict[str, Any]:
    """RFC 9457 problem body of an error."""
    body: dict[str, Any] = {"type": e.type_uri, "title": e.title, "status": e.status,
                            "detail": e.detail}
    if instance:
        body["instance"] = instance
    body.update(e.extra())
    return body


def parse_batch(body: bytes, max_items: int) -> list[tuple[bytes, str]]:
    """The batch envelope: {"items": [{"body": "<exact JSON text>", "signature"}]}."""
    data = load_json(body)
    if not isinstance(data, dict) or set(data) != {"items"} or not isinstance(data["items"], list):
        raise ValidationFailed([{"field": "items", "message": "body must be {\"items\": [...]}"}])
    items = data["items"]
    if not 1 <= len(items) <= max_items:
        raise ValidationFailed([{"field": "items",
                                 "message": f"must hold 1 to {max_items} items"}])
    out = []
    errors = []
    for i, it in enumerate(items):
        if (not isinstance(it, dict) or set(it) != {"body", "signature"}
                or not isinstance(it["body"], str) or not isinstance(it["signature"], str)):
            errors.append({"field": f"items.{i}",
                           "message": "must be {\"body\": string, \"signature\": string}"})
            continue
        out.append((it["body"].encode("utf-8"), it["signature"]))
    if errors:
        raise ValidationFailed(errors)
    return out
