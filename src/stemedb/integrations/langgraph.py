"""A LangGraph ``BaseStore`` on StemeDB: agent memory that is signed, kept and weighed.

Mapping (docs/agents.md has the long form):

- namespace tuple -> ``context``, labels joined with ``/`` (so a label may not hold ``/``);
- key -> ``subject``; every item uses one predicate (``"memory"`` unless told otherwise);
- value -> ``object`` (a JSON object);
- ``put`` asserts the new value, signed with the store's key, *superseding* this agent's
  active assertion for the key: the old one stays readable with status ``superseded``.
  A put of the value that is already active writes nothing;
- ``delete`` retracts this agent's active assertion(s) for the key (kept, ``retracted``);
- ``get``/``search``/``list_namespaces`` read this agent's active assertions;
  ``created_at`` is when the first assertion of the key's supersede chain was recorded,
  ``updated_at`` when the active one was; ``item.stemedb`` carries the assertion id,
  confidence, agent and, unless disabled, the belief across all agents (score, contested).

Every operation is written once, as a generator that yields the SDK calls it needs and
receives their answers (:data:`Step`); :meth:`StemeDBStore.batch` runs them with the
sync :class:`Client`, :meth:`StemeDBStore.abatch` with :class:`AsyncClient` (the calls of
one step concurrently).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Generator, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from ..client import DEFAULT_URL, ApiError, AsyncClient, Client, ClientError
from ..signing import AgentKey

log = logging.getLogger("stemedb.integrations.langgraph")

T = TypeVar("T")
# One SDK call: a method of Client/AsyncClient, its positional and keyword arguments.
Call = tuple[str, tuple[Any, ...], dict[str, Any]]
Step = Generator[list[Call], list[Any], T]

DEFAULT_PREDICATE = "memory"
DEFAULT_CONFIDENCE = 0.8  # below confidence_threshold (0.85), so no evidence is expected
PAGE = 1000  # the largest page the list endpoints serve
SEARCH_PAGE = 200
MAX_SEARCH_PAGES = 25  # full-text hits read for one search, at most 5,000
DELETE_REASON = "deleted through the LangGraph store"


class WriteQuarantined(Exception):
    """A ``put`` that content defense held for review: the value is *not* active.

    ``answer`` is the server's ``{"id", "status": "quarantined", "quarantine_id",
    "reason"}``; the previous value stays the active one.
    """

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = dict(answer)
        self.id = str(answer.get("id"))
        self.quarantine_id = answer.get("quarantine_id")
        self.reason = answer.get("reason")
        super().__init__(
            f"write quarantined ({self.reason}): assertion {self.id}, quarantine item "
            f"{self.quarantine_id}; it becomes the value only if an admin approves it"
        )


@dataclass(frozen=True)
class Belief:
    """What StemeDB makes of every agent's claims on the item's key (docs/beliefs.md)."""

    score: float  # this value's trust-weighted score in [0, 1]
    supporters: int  # agents whose latest claim on the key is this value
    rivals: int  # other values claimed for the key
    contested: bool  # several values have strong support
    contention: float  # runner-up strength / top strength


@dataclass(frozen=True)
class Provenance:
    """The assertion behind an item."""

    assertion_id: str
    agent_id: str
    confidence: float
    evidence: tuple[str, ...]
    status: str
    lsn: int
    supersedes: str | None
    belief: Belief | None  # None when the store was made with beliefs=False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Provenanced:
    """What both item classes add: ``stemedb``, also in ``dict()``."""

    def __init__(self, *, stemedb: Provenance, **fields: Any) -> None:
        super().__init__(**fields)  # Item's or SearchItem's
        self.stemedb = stemedb

    def dict(self) -> dict[str, Any]:
        return {**super().dict(), "stemedb": self.stemedb.to_dict()}  # type: ignore[misc]


class StemeDBItem(_Provenanced, Item):
    """An :class:`Item` with the assertion behind it in ``stemedb``."""


class StemeDBSearchItem(_Provenanced, SearchItem):
    """A :class:`SearchItem` with the assertion behind it in ``stemedb``."""


@dataclass
class _Entry:
    """One key's state: its active assertion and when its supersede chain began."""

    namespace: tuple[str, ...]
    key: str
    row: dict[str, Any]
    created_at: str
    belief: Belief | None = None

    def value(self) -> dict[str, Any]:
        return _value(self.row["object"])

    def fields(self) -> dict[str, Any]:
        row = self.row
        provenance = Provenance(
            assertion_id=row["id"], agent_id=row["agent_id"],
            confidence=float(row["confidence"]), evidence=tuple(row.get("evidence") or ()),
            status=row["status"], lsn=int(row["lsn"]), supersedes=row.get("supersedes"),
            belief=self.belief,
        )  # fmt: skip
        return {
            "value": self.value(),
            "key": self.key,
            "namespace": self.namespace,
            "created_at": _time(self.created_at),
            "updated_at": _time(row["recorded_at"]),
            "stemedb": provenance,
        }


class StemeDBStore(BaseStore):
    """LangGraph store whose items are assertions signed with ``key``.

    ``predicate`` names what every item claims (one store's items are the assertions of
    this agent with this predicate); ``confidence`` and ``evidence`` go with every put.
    ``beliefs=False`` skips the per-item belief lookup (one request per item returned).
    ``on_quarantine="ignore"`` makes a put that content defense holds for review return
    quietly instead of raising :class:`WriteQuarantined`. ``token`` (else
    ``STEMEDB_TOKEN``) is the API token reads are sent with, needed when the server's
    reads need one (its namespaces then bound what the store sees). Other keyword
    arguments go to :class:`Client` and :class:`AsyncClient` (``timeout``,
    ``max_retries``, ...).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: AgentKey | str | Path | None = None,
        *,
        predicate: str = DEFAULT_PREDICATE,
        confidence: float = DEFAULT_CONFIDENCE,
        evidence: Iterable[str] | None = None,
        beliefs: bool = True,
        on_quarantine: Literal["raise", "ignore"] = "raise",
        token: str | None = None,
        **client_options: Any,
    ) -> None:
        if token is not None:
            client_options["token"] = token
        if key is None:
            raise ValueError("StemeDBStore needs the agent key that signs its writes")
        self.key = key if isinstance(key, AgentKey) else AgentKey.load(key)
        self.url = url
        self.predicate = predicate
        self.confidence = confidence
        self.evidence = list(evidence) if evidence is not None else None
        self.beliefs = beliefs
        self.on_quarantine = on_quarantine
        self._options = client_options
        self._client = Client(url, self.key, **client_options)
        # An httpx AsyncClient belongs to the event loop it first ran on.
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def agent_id(self) -> str:
        return self.key.agent_id

    # -- BaseStore ---------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order (a get after a put in the same batch sees the put)."""
        return [self._run(self._op(op)) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return [await self._arun(self._op(op)) for op in ops]

    # -- history -----------------------------------------------------------------------

    def history(self, namespace: tuple[str, ...], key: str) -> list[dict[str, Any]]:
        """Every assertion this agent made for the key, newest first, whatever its status
        (``active``, ``superseded``, ``retracted``, ``quarantined``, ``rejected``)."""
        return self._run(self._history(_context(namespace), str(key)))

    async def ahistory(self, namespace: tuple[str, ...], key: str) -> list[dict[str, Any]]:
        return await self._arun(self._history(_context(namespace), str(key)))

    # -- clients -----------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __enter__(self) -> StemeDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> StemeDBStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _run(self, step: Step[T]) -> T:
        client = self._client
        try:
            calls = next(step)
            while True:
                try:
                    answers = [getattr(client, name)(*args, **kw) for name, args, kw in calls]
                except ClientError as e:
                    calls = step.throw(e)
                else:
                    calls = step.send(answers)
        except StopIteration as done:
            return done.value

    async def _arun(self, step: Step[T]) -> T:
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = AsyncClient(self.url, self.key, **self._options)
        try:
            calls = next(step)
            while True:
                try:
                    answers = await asyncio.gather(
                        *(getattr(client, name)(*args, **kw) for name, args, kw in calls)
                    )
                except ClientError as e:
                    calls = step.throw(e)
                else:
                    calls = step.send(list(answers))
        except StopIteration as done:
            return done.value

    # -- operations (generators of SDK calls) --------------------------------------------

    def _op(self, op: Op) -> Step[Result]:
        if isinstance(op, GetOp):
            return (yield from self._get(op))
        if isinstance(op, SearchOp):
            return (yield from self._search(op))
        if isinstance(op, PutOp):
            yield from self._put(op)
            return None
        if isinstance(op, ListNamespacesOp):
            return (yield from self._list_namespaces(op))
        raise ValueError(f"unknown store operation: {type(op).__name__}")

    def _get(self, op: GetOp) -> Step[Item | None]:
        rows = yield from self._history(_context(op.namespace), str(op.key))
        entries = yield from self._with_beliefs(_entries(rows))
        return StemeDBItem(**entries[0].fields()) if entries else None

    def _put(self, op: PutOp) -> Step[None]:
        context, key = _context(op.namespace), str(op.key)
        for attempt in (1, 2):
            rows = yield from self._history(context, key)
            active = sorted((r for r in rows if r["status"] == "active"),
                            key=lambda r: r["lsn"], reverse=True)  # fmt: skip
            if op.value is None:
                if active:
                    yield [("retract", (r["id"], DELETE_REASON), {}) for r in active]
                return None
            value = dict(op.value)
            if active and active[0]["object"] == value:
                return None  # already the active value; a new assertion would be a Duplicate
            options = {"evidence": self.evidence, "context": context,
                       "supersedes": active[0]["id"] if active else None}  # fmt: skip
            try:
                [answer] = yield [("assert_", (key, self.predicate, value, self.confidence),
                                   options)]  # fmt: skip
            except ApiError as e:
                # 409: another writer of this key superseded or retracted the assertion
                # read above; read again and supersede the new one.
                if e.status == 409 and attempt == 1:
                    continue
                raise
            if answer.get("status") == "quarantined":
                if self.on_quarantine == "raise":
                    raise WriteQuarantined(answer)
                log.warning("%s", WriteQuarantined(answer))
            return None
        return None

    def _search(self, op: SearchOp) -> Step[list[SearchItem]]:
        if op.query:
            keys = yield from self._fulltext(op)
            window = keys[op.offset : op.offset + op.limit]
            pages = yield [self._history_call(ctx, key) for ctx, key in window]
            rows: list[dict[str, Any]] = []
            for (ctx, key), page in zip(window, pages, strict=True):
                rows += page.get("items", [])
                if page.get("next_cursor"):
                    rows += yield from self._history(ctx, key, page["next_cursor"])
            found = {(e.namespace, e.key): e for e in _entries(rows)}
            entries = [found[_ns(ctx), key] for ctx, key in window if (_ns(ctx), key) in found]
        else:
            rows = yield from self._pages(self._scan_call(True))
            entries = [
                e
                for e in _entries(rows)
                if _under(e.namespace, op.namespace_prefix) and _matches(e.value(), op.filter)
            ]
            entries = entries[op.offset : op.offset + op.limit]
        entries = yield from self._with_beliefs(entries)
        return [StemeDBSearchItem(**e.fields()) for e in entries]

    def _fulltext(self, op: SearchOp) -> Step[list[tuple[str | None, str]]]:
        """The keys whose active value matches ``op``, best full-text match first."""
        need = op.offset + op.limit
        keys: dict[tuple[str | None, str], None] = {}
        cursor = None
        for _ in range(MAX_SEARCH_PAGES):
            [page] = yield [("search", (op.query,), {"limit": SEARCH_PAGE, "cursor": cursor})]
            for row in page.get("items", []):
                if (
                    row["agent_id"] == self.agent_id
                    and row["predicate"] == self.predicate
                    and _under(_ns(row.get("context")), op.namespace_prefix)
                    and _matches(_value(row["object"]), op.filter)
                ):
                    keys[(row.get("context"), row["subject"])] = None
            cursor = page.get("next_cursor")
            if len(keys) >= need or not cursor:
                break
        return list(keys)

    def _list_namespaces(self, op: ListNamespacesOp) -> Step[list[tuple[str, ...]]]:
        rows = yield from self._pages(self._scan_call(False))
        found = set()
        for row in rows:
            ns = _ns(row.get("context"))
            if ns and all(_condition(c, ns) for c in op.match_conditions or ()):
                found.add(ns if op.max_depth is None else ns[: op.max_depth])
        return sorted(found)[op.offset : op.offset + op.limit]

    # -- building blocks ---------------------------------------------------------------

    def _history_call(self, context: str | None, key: str, cursor: str | None = None) -> Call:
        filters = {"subject": key, "predicate": self.predicate, "agent_id": self.agent_id,
                   "context": context, "include_inactive": True, "limit": PAGE,
                   "cursor": cursor}  # fmt: skip
        return ("query", (), filters)

    def _scan_call(self, include_inactive: bool) -> Call:
        filters = {"predicate": self.predicate, "agent_id": self.agent_id,
                   "include_inactive": include_inactive or None, "limit": PAGE}  # fmt: skip
        return ("query", (), filters)

    def _history(
        self, context: str | None, key: str, cursor: str | None = None
    ) -> Step[list[dict[str, Any]]]:
        rows = yield from self._pages(self._history_call(context, key), cursor)
        # Without a context filter the server answers every context; keep the key's own.
        return [r for r in rows if r.get("context") == context and r["subject"] == key]

    def _pages(self, call: Call, cursor: str | None = None) -> Step[list[dict[str, Any]]]:
        name, args, filters = call
        rows: list[dict[str, Any]] = []
        while True:
            [page] = yield [(name, args, {**filters, "cursor": cursor})]
            rows += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    def _with_beliefs(self, entries: list[_Entry]) -> Step[list[_Entry]]:
        if not self.beliefs or not entries:
            return entries
        # context '' asks for the claims made without one, as the item's key has.
        calls: list[Call] = [
            ("beliefs", (e.key,), {"predicate": self.predicate, "context": e.row["context"] or ""})
            for e in entries
        ]
        answers = yield calls
        return [
            replace(e, belief=_belief(a, e.row["object"]))
            for e, a in zip(entries, answers, strict=True)
        ]


# -- helpers -----------------------------------------------------------------------------


def _context(namespace: tuple[str, ...]) -> str | None:
    for label in namespace:
        if not isinstance(label, str) or not label or "/" in label:
            raise InvalidNamespaceError(
                f"namespace labels must be non-empty strings without '/' (it joins them "
                f"into the assertion's context): {namespace!r}"
            )
    return "/".join(namespace) if namespace else None


def _ns(context: str | None) -> tuple[str, ...]:
    return tuple(context.split("/")) if context else ()


def _under(namespace: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return namespace[: len(prefix)] == tuple(prefix)


def _condition(cond: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(cond.path)
    if len(namespace) < len(path):
        return False
    part = (
        namespace[: len(path)]
        if cond.match_type == "prefix"
        else namespace[len(namespace) - len(path) :]
    )
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))


_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _matches(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """LangGraph's filter: each field equal, or compared with ``$eq``, ``$ne``, ``$gt``,
    ``$gte``, ``$lt``, ``$lte``; a comparison between unlike types does not match."""
    for name, want in (flt or {}).items():
        have = value.get(name)
        if isinstance(want, dict) and want and all(k in _OPERATORS for k in want):
            try:
                if not all(_OPERATORS[k](have, v) for k, v in want.items()):
                    return False
            except TypeError:
                return False
        elif have != want:
            return False
    return True


def _entries(rows: Iterable[dict[str, Any]]) -> list[_Entry]:
    """Each key's active state, the most recently updated first."""
    by_key: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row.get("context"), row["subject"]), []).append(row)
    out = []
    for (context, key), group in by_key.items():
        active = [r for r in group if r["status"] == "active"]
        if not active:
            continue
        current = max(active, key=lambda r: r["lsn"])
        by_id = {r["id"]: r for r in group}
        first, seen = current, {current["id"]}
        while (prev := by_id.get(first.get("supersedes") or "")) and prev["id"] not in seen:
            seen.add(prev["id"])
            first = prev
        out.append(_Entry(_ns(context), key, current, first["recorded_at"]))
    out.sort(key=lambda e: e.row["lsn"], reverse=True)
    return out


def _belief(answer: Mapping[str, Any], obj: Any) -> Belief:
    candidates = answer.get("candidates") or []
    mine = next((c for c in candidates if c.get("object") == obj), None)
    return Belief(
        score=float(mine["score"]) if mine else 0.0,
        supporters=int(mine.get("agents", 0)) if mine else 0,
        rivals=len(candidates) - (1 if mine else 0),
        contested=bool(answer.get("contested")),
        contention=float(answer.get("contention") or 0.0),
    )


def _value(obj: Any) -> dict[str, Any]:
    # A value written by other means than this store may be a bare JSON value.
    return obj if isinstance(obj, dict) else {"value": obj}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
