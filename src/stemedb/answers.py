"""Answers in the API's shapes, from stored rows and computed beliefs.

Pure functions shared by every storage backend: a row is anything read by column name
(``row["agent_id"]``: a ``sqlite3.Row``, a dict), so the embedded index and a cluster
backend give the same JSON for the same records. Cursors are opaque to clients: a
base64url JSON object of non-negative integers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .beliefs import DIGITS, Belief, Candidate
from .errors import ValidationFailed
from .model import us_to_time

Row = Any  # read by column name


def encode_cursor(data: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        if not isinstance(data, dict) or not all(
            isinstance(v, int) and v >= 0 for v in data.values()
        ):
            raise ValueError
        return data
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise ValidationFailed([{"field": "cursor", "message": "is not a cursor this server issued"}]) from None


def row_to_assertion(row: Row, status: str | None = None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": status or row["status"],
        "lsn": row["lsn"],
        "recorded_at": us_to_time(row["recorded_at"]),
        "agent_id": row["agent_id"],
        "subject": row["subject"],
        "predicate": row["predicate"],
        "object": orjson.loads(row["object_raw"]),
        "confidence": row["confidence"],
        "evidence": orjson.loads(row["evidence"]),
        "context": row["context"] or None,
        "valid_from": row["valid_from"],
        "valid_until": row["valid_until"],
        "supersedes": row["supersedes"],
        "ended_by": row["ended_by"],
        "timestamp": row["timestamp"],
        "nonce": row["nonce"],
        "signature": row["signature"],
        "body": row["body"],
    }


def quarantine_item(row: Row) -> dict[str, Any]:
    verdict = orjson.loads(row["verdict"])
    return {
        "id": row["qid"],
        "assertion_id": row["assertion_id"],
        "agent_id": row["agent_id"],
        "reason": row["reason"],
        "score": row["score"],
        "signals": verdict.get("signals", []),
        "severity": row["severity"],
        "top_signal": row["top_signal"],
        "breakdown": verdict,
        "status": row["qstatus"],
        "created_at": us_to_time(row["created_at"]),
        "decided_at": us_to_time(row["decided_at"]) if row["decided_at"] else None,
        "decided_by": row["decided_by"],
        "decision_reason": row["decision_reason"],
        "notes": orjson.loads(row["notes"]),
        "assertion": row_to_assertion(row),
    }


def rounded(x: float) -> float:
    return round(x, DIGITS)


def candidate_dict(c: Candidate, with_support: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": orjson.loads(c.object_json),
        "score": rounded(c.score),
        "strength": rounded(c.strength),
        "agents": c.agents,
    }
    if with_support:
        out["groups"] = [
            {"kind": g.kind, "strength": rounded(g.strength), "agents": g.agents} for g in c.groups
        ]
        out["support"] = [
            {
                "id": s.claim.id,
                "agent_id": s.claim.agent_id,
                "confidence": s.claim.confidence,
                "evidence": list(s.claim.evidence),
                "context": s.claim.context or None,
                "recorded_at": us_to_time(s.claim.recorded_at_us),
                "lsn": s.claim.lsn,
                "trust": s.standing.trust,
                "trusted": s.standing.trusted,
                "weight": rounded(s.weight),
                "group": s.group,
            }
            for s in c.support
        ]
    return out


def belief_dict(b: Belief) -> dict[str, Any]:
    return {
        "candidates": [candidate_dict(c) for c in b.candidates],
        "contested": b.contested,
        "contention": rounded(b.contention),
    }
