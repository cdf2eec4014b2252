"""Scoped API tokens: created, listed and revoked by admins, checked on every request
that presents one.

A token is a random secret (``stm_`` + 43 URL-safe characters) shown once, when it is
created. The journal and the derived state keep only its SHA-256: a ``token.create``
admin record ``{name, scope, namespaces, expires_at, expires_us, hash}`` and a
``token.revoke`` record ``{name, hash, reason}``. So restarts, ``reindex``, backups and
restores keep the tokens, and no copy of the journal holds a usable secret.

Checking a presented token is a SHA-256 and a dict lookup in an in-memory table of every
token (``Tokens.reload`` rebuilds it from the derived state: after this node's own
token decisions, and on a cluster node when the newest admin LSN moves). Expiry is
checked at use time. A token unknown, expired or revoked is refused (401).

"Last used" is kept in memory by the node that saw the use (not journaled: a read must
never cost a journal write); in cluster mode each node reports its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from . import records
from .access import SCOPES, Principal, normalize_all
from .errors import Conflict, NotFound, Unauthorized, ValidationFailed
from .journal import Record
from .model import parse_time, us_to_time
from .store import Reads

Append = Callable[[Sequence[bytes]], Awaitable[list[Record]]]

PREFIX = "stm_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
RESERVED_NAMES = frozenset({"admin", "dashboard", "config", "retention"})
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
REF_CHARS = 16  # a token's reference (dashboard sessions): the first hex digits of its hash


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) a token is kept and looked up by."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}])


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise _invalid("name", "1 to 64 letters, digits, '.', '_', '@' or '-', starting "
                               "with a letter or digit")
    if name.lower() in RESERVED_NAMES:
        raise _invalid("name", f"{name!r} is reserved; choose another name")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise _invalid("scope", f"must be one of {', '.join(SCOPES)}")
    return scope


def parse_expiry(value: str | None, now_us: int) -> int | None:
    """Unix microseconds of an expiry given as an RFC 3339 time or a duration from now
    (``90m``, ``12h``, ``30d``, ``2w``); None for none. Must lie in the future."""
    if value is None or not value.strip():
        return None
    m = _DURATION.match(value)
    if m:
        n = int(m.group(1)) * _UNITS[m.group(2)]
        if n <= 0:
            raise _invalid("expires", "must be a positive duration")
        return now_us + n * 1_000_000
    try:
        at = int(parse_time(value.strip()).timestamp() * 1_000_000)
    except ValueError:
        raise _invalid("expires", "must be an RFC 3339 time (2027-01-31T00:00:00Z) or a "
                                  "duration such as 90m, 12h, 30d") from None
    if at <= now_us:
        raise _invalid("expires", "must be in the future")
    return at


@dataclass(frozen=True, slots=True)
class Token:
    """One token as the derived state holds it (never the secret)."""

    hash: str
    name: str
    scope: str
    namespaces: tuple[str, ...]
    expires_us: int | None
    created_at: int
    created_by: str
    revoked_at: int | None
    revoked_by: str | None
    revoke_reason: str | None

    @property
    def ref(self) -> str:
        return self.hash[:REF_CHARS]

    def status(self, now_us: int) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_us is not None and self.expires_us <= now_us:
            return "expired"
        return "active"

    def principal(self) -> Principal:
        return Principal(name=self.name, scope=self.scope, namespaces=self.namespaces)


def _token(row: dict[str, Any]) -> Token:
    return Token(hash=row["hash"], name=row["name"], scope=row["scope"],
                 namespaces=tuple(orjson.loads(row["namespaces"])),
                 expires_us=row["expires_us"], created_at=row["created_at"],
                 created_by=row["created_by"], revoked_at=row["revoked_at"],
                 revoked_by=row["revoked_by"], revoke_reason=row["revoke_reason"])


class Tokens:
    """The token table in memory, and the token decisions (journaled through ``append``)."""

    def __init__(self, *, reads: Reads, append: Append,
                 clock: Callable[[], int] = records.now_us) -> None:
        self.reads = reads
        self.append = append
        self.clock = clock
        self._by_hash: dict[str, Token] = {}
        self._by_ref: dict[str, Token] = {}
        self._last_used: dict[str, int] = {}  # hash -> unix µs, this node only
        self._lock = asyncio.Lock()
        self._reload_lock = threading.Lock()

    # -- the table ------------------------------------------------------------------------

    def reload(self) -> None:
        """Rebuild the table from the derived state (replaced in one assignment, so a
        lookup sees the old table or the new one, never half of one)."""
        with self._reload_lock:
            tokens = [_token(r) for r in self.reads.tokens()]
            self._by_hash = {t.hash: t for t in tokens}
            self._by_ref = {t.ref: t for t in tokens}

    def check(self, secret: str) -> Principal:
        """The principal of a presented token; ``Unauthorized`` when it is unknown,
        expired or revoked. A hash and a dict lookup: the table holds hashes only, so
        nothing compares the secret itself."""
        t = self._by_hash.get(hash_secret(secret))
        if t is None:
            raise Unauthorized("the token is not valid; see docs/security.md#tokens")
        now = self.clock()
        status = t.status(now)
        if status != "active":
            raise Unauthorized(f"the token {t.name!r} is {status}")
        self._last_used[t.hash] = now
        return t.principal()

    def by_ref(self, ref: str) -> Principal | None:
        """The principal of a live token by its reference (a dashboard session's), else
        None (unknown, expired or revoked since)."""
        t = self._by_ref.get(ref)
        if t is None or t.status(self.clock()) != "active":
            return None
        return t.principal()

    @staticmethod
    def ref_of(secret: str) -> str:
        return hash_secret(secret)[:REF_CHARS]

    # -- decisions --------------------------------------------------------------------------

    def _live(self, name: str, now: int) -> Token | None:
        for t in self._by_hash.values():
            if t.name == name and t.status(now) == "active":
                return t
        return None

    async def create(self, name: str, scope: str, namespaces: Sequence[str] | None,
                     expires: str | None, by: str) -> dict[str, Any]:
        """A new token: its secret (shown this once) and what it may do. 409 when a live
        token has the name; 422 for a bad name, scope, namespace or expiry."""
        check_name(name)
        check_scope(scope)
        if not namespaces:
            # fail closed: no grant is ever implied; an empty one would make a dead token
            raise _invalid("namespaces", "give at least one namespace the token may read "
                                         "(* for all)")
        try:
            granted = normalize_all(namespaces)
        except ValueError as e:
            raise _invalid("namespaces", str(e)) from None
        now = self.clock()
        expires_us = parse_expiry(expires, now)
        expires_at = None if expires_us is None else us_to_time(expires_us)
        secret = new_secret()
        digest = hash_secret(secret)
        async with self._lock:
            await asyncio.to_thread(self.reload)
            if self._live(name, now) is not None:
                raise Conflict(f"a live token is named {name!r}; revoke it first or choose "
                               "another name")
            await self.append([records.admin_record(
                "token.create", by, name=name, scope=scope, namespaces=list(granted),
                expires_at=expires_at, expires_us=expires_us, hash=digest)])
            await asyncio.to_thread(self.reload)
        if digest not in self._by_hash:  # another node created one of that name first
            raise Conflict(f"a live token is named {name!r}; revoke it first or choose "
                           "another name")
        return {"name": name, "token": secret, "scope": scope, "namespaces": list(granted),
                "expires_at": expires_at, "created_by": by}

    async def revoke(self, name: str, reason: str, by: str) -> dict[str, Any]:
        """Revoke the live token of this name: 404 when there is none."""
        async with self._lock:
            await asyncio.to_thread(self.reload)
            now = self.clock()
            t = self._live(name, now)
            if t is None:
                known = [x for x in self._by_hash.values() if x.name == name]
                if known:
                    raise NotFound(f"token {name!r} is already "
                                   f"{known[-1].status(now)}")
                raise NotFound(f"no token is named {name!r}")
            await self.append([records.admin_record("token.revoke", by, name=name,
                                                     hash=t.hash, reason=reason)])
            await asyncio.to_thread(self.reload)
        return {"status": "revoked", "name": name, "reason": reason, "revoked_by": by}

    def listing(self) -> dict[str, Any]:
        """Every token, newest first: never the secret nor its hash."""
        now = self.clock()
        items = sorted(self._by_hash.values(), key=lambda t: t.created_at, reverse=True)
        return {"tokens": [self._view(t, now) for t in items]}

    def _view(self, t: Token, now: int) -> dict[str, Any]:
        used = self._last_used.get(t.hash)
        return {"name": t.name, "scope": t.scope, "namespaces": list(t.namespaces),
                "status": t.status(now),
                "expires_at": None if t.expires_us is None else us_to_time(t.expires_us),
                "created_at": us_to_time(t.created_at), "created_by": t.created_by,
                "last_used_at": None if used is None else us_to_time(used),
                "revoked_at": None if t.revoked_at is None else us_to_time(t.revoked_at),
                "revoked_by": t.revoked_by, "revoke_reason": t.revoke_reason}

