"""Signed bodies: assertions and retractions as exact bytes, and their options."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypedDict

import orjson

from ..signing import AgentKey

Timestamp = datetime | str


class AssertionOptions(TypedDict, total=False):
    """Optional fields of an assertion (see :func:`build_assertion`)."""

    evidence: Iterable[str] | None
    context: str | None
    valid_from: Timestamp | None
    valid_until: Timestamp | None
    supersedes: str | None
    timestamp: Timestamp | None
    nonce: str | None


class QueryFilters(TypedDict, total=False):
    """Filters of ``GET /v1/assertions``; unset or None filters are not sent."""

    subject: str | None
    predicate: str | None
    object: Any
    agent_id: str | None
    context: str | None
    since: Timestamp | None
    until: Timestamp | None
    as_of: Timestamp | int | None
    valid_at: Timestamp | None
    include_inactive: bool | None
    limit: int | None
    cursor: str | None
    id_prefix: str | None  # 8 to 64 hex characters: ids that start with it


class WriteOptions(TypedDict, total=False):
    """Overrides of the generated fields of a signed write."""

    timestamp: Timestamp | None
    nonce: str | None


class SearchOptions(TypedDict, total=False):
    limit: int | None
    cursor: str | None
    as_of: Timestamp | int | None


class BeliefOptions(TypedDict, total=False):
    predicate: str | None
    context: str | None
    as_of: Timestamp | int | None
    valid_at: Timestamp | None
    limit: int | None
    cursor: str | None


class DisputeOptions(TypedDict, total=False):
    limit: int | None
    cursor: str | None
    as_of: Timestamp | int | None
    subject: str | None
    predicate: str | None


BatchItem = bytes | str | tuple[bytes | str, str]


def format_timestamp(value: Timestamp | None = None) -> str:
    """RFC 3339 UTC with microseconds, ``2026-02-11T10:23:45.000000Z``; default now.

    Strings pass through untouched (the server validates them). Naive datetimes are
    refused because their zone is a guess.
    """
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_nonce() -> str:
    """16 random hex characters."""
    return secrets.token_hex(8)


def build_assertion(
    key: AgentKey,
    subject: str,
    predicate: str,
    object: Any,
    confidence: float,
    *,
    evidence: Iterable[str] | None = None,
    context: str | None = None,
    valid_from: Timestamp | None = None,
    valid_until: Timestamp | None = None,
    supersedes: str | None = None,
    timestamp: Timestamp | None = None,
    nonce: str | None = None,
) -> bytes:
    """The exact body bytes of an assertion by ``key``: compact JSON, optional fields
    left out when None, ``timestamp`` defaulting to now and ``nonce`` to a random one."""
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise TypeError("confidence must be a number")
    if not math.isfinite(confidence):
        raise ValueError("confidence must be finite")
    body: dict[str, Any] = {
        "subject": subject,
        "predicate": predicate,
        "object": object,
        "confidence": confidence,
    }
    if evidence is not None:
        if isinstance(evidence, str):
            raise TypeError("evidence is a list of strings, not a string")
        body["evidence"] = list(evidence)
    if context is not None:
        body["context"] = context
    if valid_from is not None:
        body["valid_from"] = format_timestamp(valid_from)
    if valid_until is not None:
        body["valid_until"] = format_timestamp(valid_until)
    if supersedes is not None:
        body["supersedes"] = supersedes
    body["agent_id"] = key.agent_id
    body["timestamp"] = format_timestamp(timestamp)
    body["nonce"] = nonce if nonce is not None else new_nonce()
    return orjson.dumps(body)


def build_retraction(
    key: AgentKey,
    assertion_id: str,
    reason: str = "",
    *,
    timestamp: Timestamp | None = None,
    nonce: str | None = None,
) -> bytes:
    """The exact body bytes of a retraction of ``assertion_id`` by ``key``."""
    return orjson.dumps(
        {
            "retracts": assertion_id,
            "reason": reason,
            "agent_id": key.agent_id,
            "timestamp": format_timestamp(timestamp),
            "nonce": nonce if nonce is not None else new_nonce(),
        }
    )


def sign_body(key: AgentKey, body: bytes) -> tuple[bytes, str]:
    """``(body, signature)``: the body untouched and its base64 Ed25519 signature."""
    return body, key.sign_b64(body)
