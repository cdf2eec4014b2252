"""Value types of the write path: assertions and retractions, their limits and ids.

A write is parsed from the exact signed body bytes. The id of a write is the lowercase
hex SHA-256 of those bytes. Strings are NFC-normalised for indexing; the signed bytes are
kept untouched for re-verification.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import MalformedBody, ValidationFailed

HEX64 = r"^[0-9a-f]{64}$"
MAX_OBJECT_BYTES = 16 * 1024

AgentId = Annotated[str, Field(pattern=HEX64)]
WriteId = Annotated[str, Field(pattern=HEX64)]
Nonce = Annotated[str, Field(min_length=8, max_length=128)]


def write_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def quarantine_id(assertion_id: str) -> str:
    """The id of a quarantine item: derived from its assertion, so replay reproduces it."""
    return hashlib.sha256(b"quarantine:" + assertion_id.encode()).hexdigest()[:32]


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with a zone; returns an aware UTC datetime."""
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt ":
        raise ValueError("must be an RFC 3339 timestamp such as 2026-02-11T10:23:45Z")
    try:
        dt = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError("must be an RFC 3339 timestamp such as 2026-02-11T10:23:45Z") from None
    if dt.tzinfo is None:
        raise ValueError("must carry a time zone (Z or ±hh:mm)")
    return dt.astimezone(UTC)


def format_time(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def us_to_time(us: int) -> str:
    """RFC 3339 with microseconds (``format_time``) of unix microseconds, without a
    datetime per call: answers list hundreds of times, most of them in few seconds."""
    if type(us) is not int or us < 0:
        return format_time(datetime.fromtimestamp(us / 1e6, tz=UTC))
    sec, frac = divmod(us, 1_000_000)
    return f"{_second(sec)}.{frac:06d}Z"


@functools.lru_cache(maxsize=4096)
def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def canonical_json(value: Any) -> str:
    """Canonical text of a JSON value: sorted keys, NFC strings, no whitespace."""
    return orjson.dumps(_nfc_deep(value), option=orjson.OPT_SORT_KEYS).decode()


def _nfc_deep(value: Any) -> Any:
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list):
        return [_nfc_deep(v) for v in value]
    if isinstance(value, dict):
        return {nfc(k): _nfc_deep(v) for k, v in value.items()}
    return value


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    agent_id: AgentId
    timestamp: str
    nonce: Nonce

    @field_validator("timestamp")
    @classmethod
    def _check_timestamp(cls, v: str) -> str:
        parse_time(v)
        return v

    @property
    def timestamp_dt(self) -> datetime:
        return parse_time(self.timestamp)


class Assertion(_Write):
    subject: str
    predicate: str
    object: Any
    confidence: float
    evidence: Annotated[list[Annotated[str, Field(max_length=2048)]], Field(max_length=32)] = []
    context: Annotated[str, Field(max_length=128)] | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    supersedes: WriteId | None = None

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        n = len(v.strip())
        if not 1 <= n <= 512:
            raise ValueError("must be 1 to 512 characters after trimming")
        return v

    @field_validator("predicate")
    @classmethod
    def _predicate(cls, v: str) -> str:
        n = len(v.strip())
        if not 1 <= n <= 256:
            raise ValueError("must be 1 to 256 characters after trimming")
        return v

    @field_validator("object", mode="before")
    @classmethod
    def _object(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("is required and may not be null")
        if len(orjson.dumps(v)) > MAX_OBJECT_BYTES:
            raise ValueError(f"serialises to more than {MAX_OBJECT_BYTES} bytes")
        return v

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError("must be a number")
        v = float(v)
        if not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ValueError("must be a finite number between 0 and 1")
        return v

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _valid_time(cls, v: str | None) -> str | None:
        if v is not None:
            parse_time(v)
        return v

    @model_validator(mode="after")
    def _valid_range(self) -> Assertion:
        if self.valid_from and self.valid_until and (
            parse_time(self.valid_from) > parse_time(self.valid_until)
        ):
            raise ValueError("valid_from must not be after valid_until")
        return self

    # Derived, index-ready views ----------------------------------------------------

    @property
    def subject_key(self) -> str:
        return nfc(self.subject.strip())

    @property
    def predicate_key(self) -> str:
        return nfc(self.predicate.strip())

    @property
    def context_key(self) -> str:
        return nfc(self.context) if self.context is not None else ""

    @property
    def object_json(self) -> str:
        return canonical_json(self.object)

    @property
    def object_text(self) -> str:
        return nfc(self.object) if isinstance(self.object, str) else self.object_json


class Retraction(_Write):
    retracts: WriteId
    reason: Annotated[str, Field(max_length=1024)] = ""


def _field_errors(e: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in e.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append({"field": loc, "message": msg})
    return out


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedBody("the body is not valid UTF-8 JSON") from None


def parse_write(body: bytes, kind: type[_Write]) -> Any:
    """Parse a signed body into ``kind`` (Assertion or Retraction); 400/422 on failure."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        raise ValidationFailed(_field_errors(e)) from None


def parse_assertion(body: bytes) -> Assertion:
    result: Assertion = parse_write(body, Assertion)
    return result


def trusted_assertion(body: bytes) -> Assertion:
    """An assertion from a journal record, without re-validating it: it was validated
    before it was journaled, and the record's checksum and chain prove it unchanged.
    (Replay speed: reindex and catch-up parse every record.)"""
    return Assertion.model_construct(**orjson.loads(body))


def trusted_retraction(body: bytes) -> Retraction:
    return Retraction.model_construct(**orjson.loads(body))


def parse_retraction(body: bytes) -> Retraction:
    result: Retraction = parse_write(body, Retraction)
    return result
