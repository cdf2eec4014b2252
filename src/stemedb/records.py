"""What the journal records: the payload of every journal record.

A payload is one JSON object (orjson) with a type tag ``t`` and the unix-microsecond
time ``at`` at which the server recorded it:

- ``{"t": "assert", "at", "body", "sig"}`` — a signed assertion. ``body`` is the exact
  signed body text, ``sig`` the base64 signature. The assertion id is the SHA-256 of
  ``body``'s UTF-8 bytes.
- ``{"t": "retract", "at", "body", "sig"}`` — a signed retraction.

Every derived state is a deterministic function of these payloads in LSN order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

ASSERT = "assert"
RETRACT = "retract"
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

    def encode(self) -> bytes:
        return orjson.dumps(
            {"t": self.kind, "at": self.at, "body": self.body.decode("utf-8"), "sig": self.signature}
        )


def decode(payload: bytes) -> dict[str, Any]:
    data = orjson.loads(payload)
    if not isinstance(data, dict) or "t" not in data or "at" not in data:
        raise ValueError("journal payload is not a StemeDB record")
    return data


def signed_write(data: dict[str, Any]) -> SignedWrite:
    return SignedWrite(data["t"], data["body"].encode("utf-8"), data["sig"], int(data["at"]))
