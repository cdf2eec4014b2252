"""The shapes of the API's bodies, as JSON Schema (OpenAPI 3.1): the shared components of
``/openapi.json``.

Data only: ``openapi.install`` puts every entry of ``SCHEMAS`` under
``components/schemas``, and routes name them in ``openapi.api(answer="Assertion")``.
Answers allow members they do not list (a later version may add some); request bodies do
not (the server refuses unknown fields).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

HEX64 = "^[0-9a-f]{64}$"
HEX_PREFIX = "^[0-9a-fA-F]{8,64}$"


def ref(name: str) -> Schema:
    """A reference to the component ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None,
        *, closed: bool = False, description: str = "") -> Schema:
    """An object with ``required`` and ``optional`` members; ``closed`` refuses others."""
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})},
                   "required": list(required)}
    if closed:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "description": "RFC 3339 time"}
ANY: Schema = {"description": "any JSON value"}
CURSOR: Schema = nullable({"type": "string", "description": "pass as `cursor` for the next page"})
STR_OR_NULL = nullable(STR)
TIME_OR_NULL = nullable(TIME)
FRACTION: Schema = {"type": "number", "minimum": 0, "maximum": 1}


def _array(item: Schema) -> Schema:
    return {"type": "array", "items": item}


_ASSERTION_FIELDS: dict[str, Schema] = {
    "subject": {"type": "string", "minLength": 1, "maxLength": 512},
    "predicate": {"type": "string", "minLength": 1, "maxLength": 256},
    "object": {"not": {"type": "null"},
               "description": "any JSON value except null, at most 16 KiB serialized"},
    "confidence": FRACTION,
    "agent_id": {"type": "string", "pattern": HEX64,
                 "description": "lowercase hex of the agent's 32-byte Ed25519 public key"},
    "timestamp": {"type": "string", "format": "date-time",
                  "description": "RFC 3339 with zone, within max_clock_skew_seconds of server time"},
    "nonce": {"type": "string", "minLength": 8, "maxLength": 128,
              "description": "unique per agent"},
}

_EXAMPLE_AGENT = "ce8342f9" * 8
_STATUS = {"type": "string", "enum": ["active", "retracted", "superseded", "quarantined",
                                      "rejected"]}

SCHEMAS: dict[str, Schema] = {
    # -- errors -----------------------------------------------------------------------------
    "FieldError": obj({"field": STR, "message": STR}),
    "Problem": obj(
        {"type": {"type": "string", "format": "uri"}, "title": STR, "status": INT,
         "detail": STR},
        {"instance": {"type": "string", "description": "the request id (x-request-id)"},
         "errors": {**_array(ref("FieldError")), "description": "on 422: each field refused"},
         "current": {"type": "object", "description": "on already-decided: the item's state"}},
        description="RFC 9457 problem details; never a stack trace or a path."),
    # -- writes -----------------------------------------------------------------------------
    "AssertionBody": {**obj(
        _ASSERTION_FIELDS,
        {"evidence": {**_array({"type": "string", "maxLength": 2048}), "maxItems": 32},
         "context": {"type": "string", "maxLength": 128, "description": "a namespace"},
         "valid_from": TIME_OR_NULL, "valid_until": TIME_OR_NULL,
         "supersedes": nullable({"type": "string", "pattern": HEX64})},
        closed=True,
        description="One assertion, signed over its exact bytes (X-Agent-Signature)."),
        "examples": [{
            "subject": "paris", "predicate": "capital_of", "object": "france",
            "confidence": 0.92, "evidence": ["https://example.org/atlas#p12"], "context": "geo",
            "valid_from": "1870-01-01T00:00:00Z", "valid_until": None, "supersedes": None,
            "agent_id": _EXAMPLE_AGENT, "timestamp": "2026-02-11T10:23:45Z",
            "nonce": "7f1c2a9e4b"}]},
    "RetractionBody": {**obj(
        {"retracts": {"type": "string", "pattern": HEX64},
         **{k: _ASSERTION_FIELDS[k] for k in ("agent_id", "timestamp", "nonce")}},
        {"reason": {"type": "string", "maxLength": 1024}},
        closed=True, description="A retraction of one of the signing agent's assertions."),
        "examples": [{
            "retracts": "5b250cf0" * 8, "reason": "superseded by a better source",
            "agent_id": _EXAMPLE_AGENT, "timestamp": "2026-02-11T10:25:00Z",
            "nonce": "0c9d8e7f6a"}]},
    "BatchBody": obj(
        {"items": {**_array(obj(
            {"body": {"type": "string", "description": "the exact JSON text of one assertion"},
             "signature": {"type": "string",
                           "description": "padded standard base64 of the Ed25519 signature"}},
            closed=True)), "minItems": 1, "maxItems": 1000}},
        closed=True),
    "WriteOutcome": obj(
        {"id": {"type": "string", "pattern": HEX64},
         "status": {"type": "string", "enum": ["accepted", "quarantined", "retracted"]},
         "lsn": INT},
        {"quarantine_id": STR, "reason": STR, "retracts": STR}),
    "BatchResults": obj({"results": _array({"anyOf": [
        obj({"index": INT, "status": {"type": "string", "enum": ["error"]},
             "error": ref("Problem")}),
        obj({"index": INT, "id": STR, "status": STR, "lsn": INT,
             "http_status": {"type": "integer", "enum": [200, 201, 202]}},
            {"quarantine_id": STR, "reason": STR}),
    ]})}),
    # -- reads ------------------------------------------------------------------------------
    "Assertion": obj({
        "id": STR, "status": _STATUS, "lsn": INT, "recorded_at": TIME, "agent_id": STR,
        "subject": STR, "predicate": STR, "object": ANY, "confidence": NUM,
        "evidence": _array(STR), "context": STR_OR_NULL, "valid_from": STR_OR_NULL,
        "valid_until": STR_OR_NULL, "supersedes": STR_OR_NULL, "ended_by": STR_OR_NULL,
        "timestamp": STR, "nonce": STR,
        "signature": {"type": "string", "description": "base64, as sent"},
        "body": {"type": "string", "description": "the exact signed body"},
    }),
    "AssertionPage": obj({"items": _array(ref("Assertion")), "next_cursor": CURSOR,
                          "as_of_lsn": INT}),
    "Support": obj({
        "id": STR, "agent_id": STR, "confidence": NUM, "evidence": _array(STR),
        "context": STR_OR_NULL, "recorded_at": TIME, "lsn": INT, "trust": NUM,
        "trusted": BOOL, "weight": NUM, "group": INT}),
    "Candidate": obj(
        {"object": ANY, "score": NUM, "strength": NUM, "agents": INT},
        {"groups": _array(obj({"kind": STR, "strength": NUM, "agents": INT})),
         "support": _array(ref("Support"))}),
    "Belief": obj({
        "subject": STR, "predicate": STR, "context": STR_OR_NULL, "as_of_lsn": INT,
        "candidates": _array(ref("Candidate")), "contested": BOOL, "contention": NUM},
        description="One subject and predicate: each distinct object with its score."),
    "SubjectBeliefs": obj({
        "subject": STR, "context": STR_OR_NULL, "as_of_lsn": INT,
        "beliefs": _array(obj({"predicate": STR, "candidates": _array(ref("Candidate")),
                               "contested": BOOL, "contention": NUM})),
        "next_cursor": CURSOR},
        description="Every predicate of a subject (no `predicate` given), one page."),
    "DisputePage": obj({
        "items": _array(obj({
            "subject": STR, "predicate": STR, "context": STR_OR_NULL, "contention": NUM,
            "candidates": _array(ref("Candidate")),
            "open_since_lsn": nullable(INT), "open_since": TIME_OR_NULL,
            "open_for_seconds": nullable(NUM)})),
        "total": INT, "as_of_lsn": INT, "next_cursor": CURSOR}),
    "Breaker": obj({
        "agent_id": STR,
        "state": {"type": "string", "enum": ["CLOSED", "OPEN", "HALF_OPEN"]},
        "failure_rate": NUM, "requests": INT, "reason": STR_OR_NULL, "opened_at": TIME_OR_NULL,
        "until": TIME_OR_NULL, "manual": BOOL}),
    "Agent": obj({
        "agent_id": STR, "trust": NUM, "trusted": BOOL,
        "counts": obj({k: INT for k in ("accepted", "quarantined", "approved", "rejected",
                                        "retracted")}),
        "quarantine_pending": INT, "first_seen": TIME_OR_NULL, "last_seen": TIME_OR_NULL,
        "allowlisted": BOOL, "circuit_breaker": ref("Breaker")}),
    # -- health -----------------------------------------------------------------------------
    "Health": obj({"status": {"type": "string", "enum": ["ok"]}}),
    "Readiness": obj({
        "status": {"type": "string", "enum": ["ready", "not_ready"]}, "reason": STR,
        "applied_lsn": nullable(INT), "journal_lsn": INT}),
    # -- admin ------------------------------------------------------------------------------
    "Note": obj({"note": STR, "by": STR, "at": TIME}),
    "QuarantineItem": obj({
        "id": STR, "assertion_id": STR, "agent_id": STR,
        "reason": {"type": "string", "enum": ["Duplicate", "LowQuality",
                                              "UntrustedHighConfidence"]},
        "score": NUM, "signals": _array(obj({"name": STR, "amount": NUM}, {"detail": STR})),
        "breakdown": {"type": "object", "description": "the verdict: quality, signals, trust"},
        "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
        "created_at": TIME, "decided_at": TIME_OR_NULL, "decided_by": STR_OR_NULL,
        "decision_reason": STR_OR_NULL, "notes": _array(ref("Note")),
        "assertion": ref("Assertion")}),
    "QuarantinePage": obj({"items": _array(ref("QuarantineItem")), "total": INT,
                           "next_cursor": CURSOR}),
    "BatchDecision": obj({
        "action": STR, "status": STR, "processed": INT, "ids": _array(STR),
        "skipped": _array(obj({"id": STR, "status": STR}))}),
    "Token": obj({
        "name": STR, "token": {"type": "string", "description": "the secret, shown this once"},
        "scope": {"type": "string", "enum": ["read", "review", "admin"]},
        "namespaces": _array(STR), "expires_at": TIME_OR_NULL, "created_by": STR}),
    "TokenList": obj({"tokens": _array(obj({
        "name": STR, "scope": {"type": "string", "enum": ["read", "review", "admin"]},
        "namespaces": _array(STR),
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
        "expires_at": TIME_OR_NULL, "created_at": TIME, "created_by": STR,
        "last_used_at": TIME_OR_NULL}))}),
    "TokenRevoked": obj({"status": {"type": "string", "enum": ["revoked"]}, "name": STR}),
    "Enrollment": obj({"agent_id": STR, "namespaces": _array(STR)}),
    "EnrollmentList": obj({"enrollment": {"type": "string", "enum": ["open", "registered"]},
                           "agents": _array(obj({"agent_id": STR, "namespaces": _array(STR)}))}),
    "AgentRevoked": obj({"status": {"type": "string", "enum": ["revoked"]}, "agent_id": STR,
                         "revoked_lsn": INT}),
    "AdminRetraction": obj({
        "status": {"type": "string", "enum": ["retracted"]}, "id": STR, "agent_id": STR,
        "lsn": INT, "reason": STR, "by": STR}),
    "BreakerList": obj({"circuit_breakers": _array(ref("Breaker"))}),
    "BreakerOpened": obj({
        "status": {"type": "string", "enum": ["opened"]}, "agent_id": STR,
        "state": {"type": "string", "enum": ["OPEN", "CLOSED", "HALF_OPEN"],
                  "description": "OPEN, unless the ban was over before it was recorded"},
        "until": TIME, "reason": STR}),
    "BreakerReset": obj({
        "status": {"type": "string", "enum": ["reset"]}, "agent_id": STR,
        "state": {"type": "string", "enum": ["CLOSED"]}}),
    "Thresholds": obj({k: NUM for k in ("quality_threshold", "confidence_threshold",
                                        "duplicate_lookback_hours",
                                        "untrusted_confidence_threshold")}),
    "AllowlistEntry": obj({"agent_id": STR, "expires_at": TIME, "reason": STR,
                           "added_by": STR}, {"added_at": TIME, "active": BOOL}),
    "ThresholdsChange": {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {"quality_threshold": FRACTION, "confidence_threshold": FRACTION,
                       "duplicate_lookback_hours": {"type": "number", "exclusiveMinimum": 0,
                                                    "maximum": 8760},
                       "untrusted_confidence_threshold": FRACTION},
        "description": "Any non-empty subset of the four thresholds."},
    "QuarantineBatch": {
        **obj({"action": {"type": "string", "enum": ["approve", "reject"]}},
              {"ids": {**_array({"type": "string", "maxLength": 64}), "maxItems": 100_000},
               "agent_id": {"type": "string", "pattern": HEX_PREFIX},
               "reason": {"type": "string", "maxLength": 4096,
                          "description": "with reject"},
               "note": {"type": "string", "maxLength": 4096, "description": "with approve"}},
              closed=True,
              description="Exactly one of `ids` or `agent_id` (every pending item of it)."),
        "oneOf": [{"required": ["ids"]}, {"required": ["agent_id"]}]},
    "AllowlistAdd": obj(
        {"agent_id": {"type": "string", "pattern": HEX_PREFIX},
         "expires_at": {"type": "string", "format": "date-time",
                        "description": "RFC 3339, in the future"},
         "reason": {"type": "string", "minLength": 1, "maxLength": 1024}},
        closed=True),
    "Allowlist": obj({"allowlist": _array(ref("AllowlistEntry"))}),
    "AllowlistRemoved": obj({"status": {"type": "string", "enum": ["removed"]},
                             "agent_id": STR}),
    "Audit": obj({"items": _array(obj({
        "lsn": INT, "at": TIME, "by": STR, "action": STR, "target": STR_OR_NULL,
        "detail": {"type": "object"}}))}),
}
