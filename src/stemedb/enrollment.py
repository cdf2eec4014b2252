"""Agent enrollment: which keys may write, and into which namespaces.

``[agents] enrollment`` is ``open`` (any key with a valid signature writes; the default)
or ``registered`` (only enrolled keys write). In every mode a revoked key is refused, and
an enrolled key writes only into its namespaces (an assertion's ``context``, see
``access.covers``). Refusals are 403 problems raised after the signature proved the key
and before content defense, so nothing is stored and the agent's breaker counts them.

Enrollments and revocations are admin records (``agent.enroll``, ``agent.revoke``) that
the index applies to its ``enrollments`` table. The write path never asks the index: it
holds every enrolled or revoked key in memory (one dictionary look-up per write) and
reloads them after this node journals an admin record, or when the engine sees another
node's admin record (cluster mode). Revocation is final for a key: the key's assertions
stay readable, marked ``revoked_key``, and leave beliefs and disputes answered at the
revocation's LSN or later; answers ``as_of`` an earlier point are unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from . import records
from .access import covers, normalize_all
from .errors import (
    AgentNotEnrolled,
    AgentRevoked,
    Conflict,
    NotFound,
    OutsideNamespace,
    ValidationFailed,
)
from .journal import Record
from .model import nfc, us_to_time
from .settings import AgentsSettings
from .store import Reads

Append = Callable[[Sequence[bytes]], Awaitable[list[Record]]]

ENROLLED, REVOKED, UNENROLLED = "enrolled", "revoked", "unenrolled"
MAX_NAMESPACES = 256


class KeyState(NamedTuple):
    """What the write path knows of an enrolled or revoked key."""

    namespaces: tuple[str, ...]
    revoked_lsn: int | None
    revoked_at: int | None
    reason: str | None


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}])


def _short(agent_id: str) -> str:
    return agent_id[:16]


class Enrollment:
    """The enrollment policy of the write path and the admin decisions that change it.
    ``reads``: the derived state; ``append``: journals admin records and returns once
    they are applied; ``config``: the ``[agents]`` settings."""

    def __init__(self, reads: Reads, config: AgentsSettings, append: Append) -> None:
        self.reads = reads
        self.mode = config.enrollment
        self.registered = config.enrollment == "registered"
        self.append = append
        self._keys: dict[str, KeyState] | None = None
        self._revoked: dict[str, KeyState] = {}
        # Keys whose revocation is being journaled: refused already, so no write of
        # theirs checked after the decision can land after the revocation's LSN.
        self._revoking: set[str] = set()
        self._lock = asyncio.Lock()

    # -- the write path -------------------------------------------------------------------

    @property
    def keys(self) -> dict[str, KeyState]:
        """Every enrolled or revoked key (cached until ``invalidate``)."""
        cached = self._keys
        return cached if cached is not None else self.refresh()

    def refresh(self) -> dict[str, KeyState]:
        """Reload the keys from the derived state (any thread)."""
        keys = {e["agent_id"]: KeyState(tuple(e["namespaces"]), e["revoked_lsn"],
                                        e["revoked_at"], e["reason"])
                for e in self.reads.enrollments()}
        self._revoked = {a: k for a, k in keys.items() if k.revoked_lsn is not None}
        self._keys = keys
        return keys

    def invalidate(self) -> None:
        """Forget the cached keys (an admin record was journaled here or elsewhere)."""
        self._keys = None

    def admit(self, agent_id: str, context: str | None, *, retraction: bool = False) -> None:
        """403 unless this key may write an assertion with ``context`` (a retraction:
        unless the key may write at all; its target's namespace is ``admit_target``'s)."""
        k = self.keys.get(agent_id)
        if agent_id in self._revoking or (k is not None and k.revoked_lsn is not None):
            raise AgentRevoked(f"agent key {_short(agent_id)} is revoked; it writes nothing "
                               "any more")
        if k is None:
            if self.registered:
                raise AgentNotEnrolled(f"agent key {_short(agent_id)} is not enrolled; this "
                                       "server takes writes from enrolled keys only")
            return
        if not retraction:
            self._held_to(agent_id, k, context)

    def admit_target(self, agent_id: str, context: str | None) -> None:
        """403 when an enrolled key retracts or supersedes an assertion outside its
        namespaces (its grant may have narrowed since it wrote it)."""
        k = self.keys.get(agent_id)
        if k is not None:
            self._held_to(agent_id, k, context)

    @staticmethod
    def _held_to(agent_id: str, k: KeyState, context: str | None) -> None:
        ctx = nfc(context) if context else None
        if not covers(k.namespaces, ctx):
            where = f"context {ctx!r}" if ctx is not None else "no context"
            raise OutsideNamespace(f"agent key {_short(agent_id)} may write only into "
                                   f"{', '.join(k.namespaces)}; this write has {where}")

    # -- answers ----------------------------------------------------------------------------

    def mark(self, items: Sequence[dict[str, Any]], as_of_lsn: int | None = None) -> None:
        """Adds ``revoked_key`` to each assertion (as answered) of a key revoked at or
        before ``as_of_lsn`` (None: now)."""
        self.keys  # noqa: B018 - loads the revoked keys when stale
        revoked = self._revoked
        if not revoked:
            return
        for item in items:
            k = revoked.get(item.get("agent_id", ""))
            if k is not None and k.revoked_lsn is not None and (
                    as_of_lsn is None or k.revoked_lsn <= as_of_lsn):
                item["revoked_key"] = {"revoked_lsn": k.revoked_lsn,
                                       "revoked_at": us_to_time(k.revoked_at or 0),
                                       "reason": k.reason}

    def describe(self, agent_id: str) -> dict[str, Any]:
        """``{"enrollment", "namespaces"}`` (and the revocation) of one key."""
        k = self.keys.get(agent_id)
        if k is None:
            return {"enrollment": UNENROLLED, "namespaces": []}
        if k.revoked_lsn is None:
            return {"enrollment": ENROLLED, "namespaces": list(k.namespaces)}
        return {"enrollment": REVOKED, "namespaces": list(k.namespaces),
                "revoked_lsn": k.revoked_lsn, "revoked_at": us_to_time(k.revoked_at or 0),
                "revocation_reason": k.reason}

    def listing(self) -> dict[str, Any]:
        """GET /v1/admin/agents: the mode and every enrolled or revoked key."""
        return {"enrollment": self.mode,
                "agents": [_entry(e) for e in self.reads.enrollments()]}

    def resolve(self, value: str) -> str:
        """A full agent id from an id or a unique prefix (≥ 8 hex) of a key that wrote or
        was enrolled or revoked."""
        v = value.strip().lower()
        if len(v) < 8 or len(v) > 64 or any(c not in "0123456789abcdef" for c in v):
            raise _invalid("agent_id", "must be an agent id or a prefix of at least 8 hex "
                                       "characters")
        if len(v) == 64:
            return v
        found = sorted({a for a in self.keys if a.startswith(v)}
                       | set(self.reads.agents_with_prefix(v)))
        if not found:
            raise NotFound(f"no agent id starts with {v}")
        if len(found) > 1:
            raise Conflict(f"prefix {v} matches several agents; give more characters")
        return found[0]

    # -- admin decisions --------------------------------------------------------------------

    async def enroll(self, agent: str, namespaces: Sequence[str] | None, note: str,
                     by: str) -> dict[str, Any]:
        """Enrolls a key (or replaces its namespaces and note): 422 without a namespace,
        409 for a revoked key."""
        agent_id = self.resolve(agent)
        if not namespaces:
            raise _invalid("namespaces", "give at least one namespace (* for all): an "
                                         "enrolled key writes only into its namespaces")
        if len(namespaces) > MAX_NAMESPACES:
            raise _invalid("namespaces", f"at most {MAX_NAMESPACES} namespaces")
        try:
            ns = normalize_all(nfc(n) for n in namespaces)
        except ValueError as e:
            raise _invalid("namespaces", str(e)) from None
        async with self._lock:
            k = self.keys.get(agent_id)
            if agent_id in self._revoking or (k is not None and k.revoked_lsn is not None):
                raise Conflict(f"agent key {_short(agent_id)} is revoked; revocation is final,"
                               " enroll a new key instead")
            at = records.now_us()
            (rec,) = await self.append([records.admin_record(
                "agent.enroll", by, at=at, agent_id=agent_id, namespaces=list(ns), note=note)])
            now = self.refresh().get(agent_id)
        if now is None or now.revoked_lsn is not None:  # another node revoked it first
            raise Conflict(f"agent key {_short(agent_id)} is revoked; revocation is final")
        return {"status": ENROLLED, "agent_id": agent_id, "namespaces": list(ns),
                "note": note, "enrolled_by": by, "enrolled_at": us_to_time(at),
                "lsn": rec.lsn, "replaced": k is not None}

    async def revoke(self, agent: str, reason: str, by: str) -> dict[str, Any]:
        """Revokes a key, enrolled or not, for good: 409 when it already is."""
        agent_id = self.resolve(agent)
        if not reason.strip():
            raise _invalid("reason", "say why the key is revoked")
        async with self._lock:
            k = self.keys.get(agent_id)
            if k is not None and k.revoked_lsn is not None:
                raise Conflict(f"agent key {_short(agent_id)} was already revoked at LSN "
                               f"{k.revoked_lsn}")
            self._revoking.add(agent_id)
            try:
                at = records.now_us()
                (rec,) = await self.append([records.admin_record(
                    "agent.revoke", by, at=at, agent_id=agent_id, reason=reason)])
            finally:
                self.invalidate()
                self._revoking.discard(agent_id)
            now = self.refresh().get(agent_id)
        if now is None or now.revoked_lsn != rec.lsn:  # another node revoked it first
            raise Conflict(f"agent key {_short(agent_id)} was already revoked at LSN "
                           f"{now.revoked_lsn if now else '?'}")
        return {"status": REVOKED, "agent_id": agent_id, "reason": reason, "revoked_by": by,
                "revoked_at": us_to_time(at), "revoked_lsn": rec.lsn}


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    revoked = e["revoked_lsn"] is not None

    def t(us: int | None) -> str | None:
        return None if us is None else us_to_time(us)

    return {"agent_id": e["agent_id"], "enrollment": REVOKED if revoked else ENROLLED,
            "namespaces": e["namespaces"], "note": e["note"],
            "enrolled_by": e["enrolled_by"], "enrolled_at": t(e["enrolled_at"]),
            "enrolled_lsn": e["enrolled_lsn"], "revoked_by": e["revoked_by"],
            "revoked_at": t(e["revoked_at"]), "revoked_lsn": e["revoked_lsn"],
            "reason": e["reason"]}

