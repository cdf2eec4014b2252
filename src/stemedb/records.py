"""What the journal records: the payload of every journal record.

A payload is one JSON object (orjson) with a type tag ``t`` and the unix-microsecond
time ``at`` at which the server recorded it:

- ``{"t": "assert", "at", "body", "sig"}`` — a signed assertion. ``body`` is the exact
  signed body text, ``sig`` the base64 signature. The assertion id is the SHA-256 of
  ``body``'s UTF-8 bytes.
- ``{"t": "retract", "at", "body", "sig"}`` — a signed retraction.
- ``{"t": "assert", ..., "v": {"reason", "score", "signals", ...}}`` — a signed assertion
  that content defense quarantined; ``v`` is the verdict as decided at write time (replay
  never re-decides, so changing thresholds later does not rewrite history).
- ``{"t": "admin", "at", "by", "action", ...}`` — an admin decision (who, when, why):
  ``quarantine.approve`` ``{id, note}``, ``quarantine.reject`` ``{id, reason}``,
  ``quarantine.note`` ``{id, note}``, ``quarantine.purge`` ``{before}``,
  ``allowlist.add`` ``{agent_id, expires_at, reason}``, ``allowlist.remove``
  ``{agent_id, reason}``, ``thresholds.set`` ``{values, source}``, ``breaker.open``
  ``{agent_id, reason, duration_seconds}``, ``breaker.reset`` ``{agent_id, reason}``,
  ``agent.enroll`` ``{agent_id, namespaces, note}``, ``agent.revoke``
  ``{agent_id, reason}``.
  ``token.create`` ``{name, scope, namespaces, expires_at, expires_us, hash}``,
  ``token.revoke`` ``{name, hash, reason}`` (``hash``: the SHA-256 of the token's
  secret, which is never journaled).

Every derived state is a deterministic function of these payloads in LSN order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

ASSERT = "assert"
RETRACT = "retract"
ADMIN = "admin"
SIGNED_KINDS = (ASSERT, RETRACT)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class SignedWrite:
    """A signed write as journaled: kind, exact body, signature, recorded time."""

    kind: str
    body: bytes
    signature: str
    at: int
    verdict: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The payload as ``decode`` gives it back."""
        data: dict[str, Any] = {"t": self.kind, "at": self.at, "body": self.body.decode("utf-8"),
                                "sig": self.signature}
        if self.verdict is not None:
            data["v"] = self.verdict
        return data

    def encode(self) -> bytes:
        return orjson.dumps(self.to_dict())


def admin_record(action: str, by: str, at: int | None = None, **fields: Any) -> bytes:
    return orjson.dumps({"t": ADMIN, "at": now_us() if at is None else at, "by": by,
                         "action": action, **fields})


def decode(payload: bytes) -> dict[str, Any]:
    data = orjson.loads(payload)
    if not isinstance(data, dict) or "t" not in data or "at" not in data:
        raise ValueError("journal payload is not a StemeDB record")
    return data


def signed_write(data: dict[str, Any]) -> SignedWrite:
    return SignedWrite(data["t"], data["body"].encode("utf-8"), data["sig"], int(data["at"]),
                       data.get("v"))
