"""The one exception tree of StemeDB.

Every error the library raises derives from :class:`StemeError`. Each class carries
the HTTP ``status`` it maps to, a problem ``type`` (a stable URI fragment used in
RFC 9457 bodies) and an operator ``hint``. The ops errors never travel over HTTP; their
status still says whose fault it is, like the others::

    StemeError
    ├── RequestError                      4xx: the caller can fix it
    │   ├── MalformedBody                 400  not JSON / not UTF-8
    │   ├── SignatureInvalid              401  missing or bad X-Agent-Signature
    │   ├── Unauthorized                  401  missing, unknown, expired or revoked token
    │   ├── Forbidden                     403  a token without the scope; another agent's assertion
    │   │   ├── AgentNotEnrolled          403  [agents] enrollment = "registered", key not enrolled
    │   │   ├── AgentRevoked              403  the key was revoked
    │   │   └── OutsideNamespace          403  an enrolled key writing outside its namespaces
    │   ├── NotFound                      404
    │   ├── Conflict                      409
    │   │   ├── NonceReused               409  nonce reused with a different body
    │   │   ├── AlreadyDecided            409  quarantine item no longer pending; carries ``current``
    │   │   └── AmbiguousId               409  an id prefix matches several; carries ``matches``
    │   ├── PayloadTooLarge               413
    │   ├── UnsupportedMediaType          415
    │   ├── ValidationFailed              422  carries ``errors=[{"field","message"}]``
    │   └── TooManyRequests               429  carries ``retry_after``
    │       ├── RateLimited               429  + RateLimit-Policy / RateLimit headers
    │       └── BreakerOpen               429  + x-circuit-breaker-state
    ├── Unavailable                       503  carries ``retry_after``
    │   └── JournalReadOnly               503  a failed fsync made the journal read-only
    ├── JournalError                      storage faults found on disk
    │   └── JournalCorrupt                bad checksum / broken chain; names file and offset
    ├── ConfigError                       bad settings file or environment value
    └── OpsError                          a backup, archive, restore or drill could not be done
        └── TargetError                   502  the target (directory or S3 bucket) failed
            └── MissingObject             404  an object the operation needs is not there
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://stemedb.dev/problems/"


class StemeError(Exception):
    """Base of every StemeDB error."""

    status: int = 500
    type: str = "internal"
    title: str = "Internal error"
    hint: str = ""

    def __init__(self, detail: str = "", *, hint: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if hint is not None:
            self.hint = hint

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.type

    def extra(self) -> dict[str, Any]:
        """Extension members added to the problem body."""
        return {}

    def headers(self) -> dict[str, str]:
        return {}


class RequestError(StemeError):
    status = 400
    type = "bad-request"
    title = "Bad request"


class MalformedBody(RequestError):
    status = 400
    type = "malformed-body"
    title = "Body is not valid UTF-8 JSON"


class SignatureInvalid(RequestError):
    status = 401
    type = "invalid-signature"
    title = "Missing or invalid signature"


class Unauthorized(RequestError):
    status = 401
    type = "unauthorized"
    title = "Missing or invalid token"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="stemedb"'}


class Forbidden(RequestError):
    status = 403
    type = "forbidden"
    title = "Forbidden"


class AgentNotEnrolled(Forbidden):
    type = "agent-not-enrolled"
    title = "Agent key not enrolled"
    hint = "an admin enrolls it: stemedb admin agent enroll AGENT_ID --namespace NS"


class AgentRevoked(Forbidden):
    type = "agent-revoked"
    title = "Agent key revoked"
    hint = "a revoked key never writes again: generate a new key and have it enrolled"


class OutsideNamespace(Forbidden):
    type = "outside-namespace"
    title = "Outside the agent's namespaces"
    hint = "write with a context inside the key's namespaces, or have an admin re-enroll it"


class NotFound(RequestError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(RequestError):
    status = 409
    type = "conflict"
    title = "Conflict"


class NonceReused(Conflict):
    type = "nonce-reused"
    title = "Nonce already used with a different body"


class AlreadyDecided(Conflict):
    type = "already-decided"
    title = "Quarantine item is already decided"

    def __init__(self, detail: str, current: dict[str, Any]) -> None:
        super().__init__(detail)
        self.current = current

    def extra(self) -> dict[str, Any]:
        return {"current": self.current}


class AmbiguousId(Conflict):
    """An id prefix that matches several: ``matches`` lists at most ``MAX_MATCHES`` of
    them, ``more`` says there are others."""

    type = "ambiguous-id"
    title = "Id prefix matches several"
    hint = "give more characters of the id"
    MAX_MATCHES = 10

    def __init__(self, what: str, prefix: str, found: list[str]) -> None:
        self.prefix = prefix
        self.matches = found[: self.MAX_MATCHES]
        self.more = len(found) > self.MAX_MATCHES
        count = f"more than {self.MAX_MATCHES}" if self.more else str(len(found))
        super().__init__(f"{what} prefix {prefix} is ambiguous: {count} matches")

    def extra(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "matches": self.matches, "more": self.more}


class PayloadTooLarge(RequestError):
    status = 413
    type = "payload-too-large"
    title = "Body too large"


class UnsupportedMediaType(RequestError):
    status = 415
    type = "unsupported-media-type"
    title = "Content-Type must be application/json"


class ValidationFailed(RequestError):
    status = 422
    type = "validation-failed"
    title = "Request failed validation"

    def __init__(self, errors: list[dict[str, str]], detail: str = "") -> None:
        self.errors = errors
        if not detail:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        super().__init__(detail)

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


class TooManyRequests(RequestError):
    status = 429
    type = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(TooManyRequests):
    type = "rate-limited"
    title = "Rate limit exceeded"

    def __init__(self, detail: str, *, retry_after: int, limit_headers: dict[str, str]) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.limit_headers = limit_headers

    def headers(self) -> dict[str, str]:
        return {**self.limit_headers, **super().headers()}


class BreakerOpen(TooManyRequests):
    type = "circuit-breaker-open"
    title = "Circuit breaker is open for this agent"

    def __init__(self, detail: str, *, retry_after: int, state: str = "OPEN") -> None:
        super().__init__(detail, retry_after=retry_after)
        self.state = state

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "x-circuit-breaker-state": self.state}


class Unavailable(StemeError):
    status = 503
    type = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = 30, hint: str | None = None) -> None:
        super().__init__(detail, hint=hint)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class JournalReadOnly(Unavailable):
    type = "journal-read-only"
    title = "Journal is read-only"
    hint = "a write or fsync failed; see docs/runbooks/server-wont-start.md#fsync-failure"


class JournalError(StemeError):
    type = "journal-error"
    title = "Journal error"


class JournalCorrupt(JournalError):
    """Damage in the journal that is not a torn tail: start-up must stop."""

    type = "journal-corrupt"
    title = "Journal is corrupt"
    hint = (
        "the journal is damaged before its last record; do not delete files. "
        "Restore from backup or see docs/runbooks/server-wont-start.md#corruption"
    )

    def __init__(self, file: str, offset: int, what: str) -> None:
        self.file = file
        self.offset = offset
        self.what = what
        super().__init__(f"{what} in {file} at offset {offset}")


class ConfigError(StemeError):
    type = "config-error"
    title = "Invalid configuration"


class OpsError(StemeError):
    """A backup, archive, restore or drill could not be done; ``detail`` says why."""

    type = "ops-error"
    title = "Operation failed"
    hint = "see docs/operations/backup-dr.md"


class TargetError(OpsError):
    """The target (directory or S3 bucket) could not be read or written."""

    status = 502
    type = "target-error"
    title = "Backup target error"
    hint = "check the target URL, the credentials (AWS_* environment) and the endpoint URL"


class MissingObject(TargetError):
    """An object the operation needs is not in the target."""

    status = 404
    type = "missing-object"
    title = "Object missing from the target"

    def __init__(self, url: str) -> None:
        super().__init__(f"{url}: missing")
        self.url = url
