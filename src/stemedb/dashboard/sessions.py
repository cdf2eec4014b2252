"""Dashboard sign-in state: sessions, signed cookies, CSRF tokens.

Two kinds of store:

- **Local** (``SessionStore()``, a random key per process): a session lives only in this
  process's memory. The cookie carries the session id and an HMAC-SHA256 of it, so a
  forged or truncated cookie is refused before any lookup, and a restart signs everyone
  out.
- **Shared** (``SessionStore(secret=..., shared=True)``, the key the same on every node):
  the cookie itself carries the session (id, sign-in time, last-seen time, which token
  signed in) under the HMAC, so any node behind a load balancer recognises it and a reviewer is not signed
  out when requests change nodes. The CSRF token is derived from the session id with the
  same key, so every node expects the same one. The last-seen time is refreshed by
  re-issuing the cookie (``Session.refresh``) at most once a minute. Signing out removes
  the cookie from the browser and refuses the session on the node that signed it out;
  a copy of the cookie taken before stays valid on other nodes until it expires.

Each session remembers which token signed in (``Session.ref``: ``admin`` for the
bootstrap admin token, else the scoped token's reference), so the dashboard can check
on every request that the token is still live and record its name on each decision.

Each session has its own CSRF token (the synchronizer token pattern): every
state-changing request must echo it in the ``csrf_token`` form field or the
``X-CSRF-Token`` header, compared in constant time.

Sessions expire after ``idle_seconds`` without a request and at the latest
``max_age_seconds`` after sign-in; the table is bounded (the least recently used session
is dropped first).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

SESSION_COOKIE = "stemedb_session"
LOGIN_COOKIE = "stemedb_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

IDLE_SECONDS = 8 * 3600.0
MAX_AGE_SECONDS = 24 * 3600.0
MAX_SESSIONS = 1000
REFRESH_SECONDS = 60.0  # a shared session's cookie is re-issued this often while in use
BOOTSTRAP_REF = "admin"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def tokens_equal(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a secret with what the client sent."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


@dataclass
class Session:
    sid: str
    csrf: str
    created: float
    last_seen: float
    address: str
    ref: str = BOOTSTRAP_REF  # which token signed in (see the module's docstring)
    flashes: list[tuple[str, str]] = field(default_factory=list)
    refresh: str | None = None  # a re-issued cookie value the answer should carry

    def flash(self, kind: str, message: str) -> None:
        """Queue a message for the next page shown (``kind``: ok, error, info)."""
        self.flashes.append((kind, message))
        del self.flashes[:-5]

    def pop_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        return out


class SessionStore:
    """The in-memory session table. Thread-safe."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        shared: bool = False,
        idle_seconds: float = IDLE_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if shared and not secret:
            raise ValueError("a shared session store needs the shared secret")
        self._key = secret or secrets.token_bytes(32)
        self.shared = shared
        # Shared cookies carry times other nodes read: wall-clock seconds.
        clock = clock or (time.time if shared else time.monotonic)
        self._revoked: OrderedDict[str, float] = OrderedDict()
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    # -- cookie values ------------------------------------------------------------------

    def _sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode("ascii"), hashlib.sha256).digest()
        return _b64(mac)

    def cookie_value(self, session: Session) -> str:
        if self.shared:
            # a scoped token's reference follows the times (none: the bootstrap token)
            value = f"v1.{session.sid}.{int(session.created)}.{int(session.last_seen)}"
            if session.ref != BOOTSTRAP_REF:
                value += f".{session.ref}"
            return f"{value}.{self._sign(value)}"
        return f"{session.sid}.{self._sign(session.sid)}"

    def _csrf(self, sid: str) -> str:
        return self._sign("csrf:" + sid) if self.shared else secrets.token_urlsafe(32)

    def _from_cookie(self, cookie: str | None, now: float) -> Session | None:
        """A shared session from its cookie: signature, then its own times."""
        if not cookie or len(cookie) > 300 or not cookie.isascii():
            return None
        value, dot, mac = cookie.rpartition(".")
        parts = value.split(".")
        if (not dot or len(parts) not in (4, 5) or parts[0] != "v1" or not parts[2].isdigit()
                or not parts[3].isdigit() or not parts[-1].isalnum()
                or not hmac.compare_digest(self._sign(value).encode(), mac.encode())):
            return None
        sid, created, seen = parts[1], float(parts[2]), float(parts[3])
        ref = parts[4] if len(parts) == 5 else BOOTSTRAP_REF
        s = Session(sid=sid, csrf=self._csrf(sid), created=created, last_seen=seen,
                    address="", ref=ref)
        return None if self._expired(s, now) or sid in self._revoked else s

    def _unsign(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 200:
            return None
        sid, dot, mac = cookie.partition(".")
        if not dot or not sid.isascii() or not mac.isascii():
            return None
        if not hmac.compare_digest(self._sign(sid).encode(), mac.encode()):
            return None
        return sid

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, address: str, ref: str = BOOTSTRAP_REF) -> Session:
        """A new session signed in by the token ``ref`` names."""
        now = self._clock()
        sid = secrets.token_urlsafe(32)
        s = Session(sid=sid, csrf=self._csrf(sid), created=now, last_seen=now,
                    address=address, ref=ref)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
            self._sessions[s.sid] = s
        return s

    def get(self, cookie: str | None) -> Session | None:
        """The live session named by a cookie value (touching it), else None."""
        if self.shared:
            return self._get_shared(cookie)
        sid = self._unsign(cookie)
        if sid is None:
            return None
        now = self._clock()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if self._expired(s, now):
                del self._sessions[sid]
                return None
            s.last_seen = now
            self._sessions.move_to_end(sid)
            return s

    def _get_shared(self, cookie: str | None) -> Session | None:
        """A shared session: the cookie decides; the local table only keeps what this
        node adds to it (flashes), and its last-seen time when newer than the cookie's."""
        now = self._clock()
        found = self._from_cookie(cookie, now)
        if found is None:
            return None
        with self._lock:
            s = self._sessions.get(found.sid)
            if s is None or s.created != found.created:
                s = self._sessions[found.sid] = found
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            s.last_seen = max(s.last_seen, found.last_seen)
            if now - found.last_seen >= REFRESH_SECONDS:
                s.last_seen = now
                s.refresh = self.cookie_value(s)
            self._sessions.move_to_end(found.sid)
            return s

    def destroy(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.sid, None)
            if self.shared:
                self._revoked[session.sid] = session.created
                while len(self._revoked) > self.max_sessions:
                    self._revoked.popitem(last=False)

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen > self.idle_seconds or now - s.created > self.max_age_seconds

    def _expire(self, now: float) -> None:
        # Oldest-used first: stop at the first live one.
        for sid in list(self._sessions):
            if not self._expired(self._sessions[sid], now):
                break
            del self._sessions[sid]

    # -- login-form token (before a session exists) ---------------------------------------

    def login_token(self) -> str:
        """A fresh token for the sign-in form, stored in a cookie and a hidden field
        (double submit): a cross-site page cannot sign a browser in to our dashboard."""
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign('login:' + nonce)}"

    def login_token_valid(self, cookie: str | None, presented: str | None) -> bool:
        if not cookie or not tokens_equal(cookie, presented):
            return False
        nonce, dot, mac = cookie.partition(".")
        return (
            bool(dot)
            and nonce.isascii()
            and mac.isascii()
            and hmac.compare_digest(self._sign("login:" + nonce).encode(), mac.encode())
        )
