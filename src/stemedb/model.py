"""Value types of the write path: assertions and retractions, their limits and ids.

A write is parsed from the exact signed body bytes. The id of a write is the lowercase
hex SHA-256 of those bytes. Strings are NFC-normalised for indexing; the signed bytes are
kept untouched for re-verification.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import MalformedBody, ValidationFailed

HEX64 = r"^[0-9a-f]{64}$"
MAX_OBJECT_BYTES = 16 * 1024

AgentId = Annotated[str, Field(pattern=HEX64)]
WriteId = Annotated[str, Field(pattern=HEX64)]
_C0 = re.compile(r"[\x00-\x1f]")


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def instant_us(value: str | None) -> int | None:
    """An RFC 3339 time (as ``parse_time`` reads it) as unix microseconds, exactly (no
    float rounding, even for year 1); None stays None (an open end of valid time)."""
    if value is None:
        return None
    return (parse_time(value) - _EPOCH) // _MICROSECOND


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


# The fields that name and file a claim refuse NUL and the other C0 control characters
# (inside ``object`` they stay data): they hide text from people and cut it short in
# C-string tools. Checked on every body that arrives (``parse_write``); the value types
# themselves take any text, so content defense can still be tested on such claims.
_TEXT_FIELDS = ("subject", "predicate", "context", "nonce", "reason")


def _control_characters(data: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    fields = [(f, data.get(f)) for f in _TEXT_FIELDS]
    evidence = data.get("evidence")
    if isinstance(evidence, list):
        fields += [(f"evidence.{i}", e) for i, e in enumerate(evidence)]
    for name, value in fields:
        if isinstance(value, str) and (m := _C0.search(value)) is not None:
            errors.append({"field": name, "message": "must not contain control characters "
                           f"(U+{ord(m.group()):04X} at position {m.start()})"})
    return errors


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


# -- strict JSON: one reading only ----------------------------------------------------
#
# A signed body must mean one thing to every JSON parser. Bodies are refused (400) when
# parsers could disagree on them: a key repeated in one object (some keep the first, some
# the last), a number that overflows to infinity, an integer beyond 64 bits (some read
# it exactly, some round it), a lone UTF-16 surrogate, or nesting deeper than MAX_DEPTH.


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _RepeatedKey(k)
            seen.add(k)
    return d


def _finite(text: str) -> float:
    f = float(text)
    if not math.isfinite(f):
        raise MalformedBody(f"the number {text[:32]} overflows to infinity")
    return f


def _no_constant(name: str) -> Any:
    raise MalformedBody(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_float=_finite,
                            parse_constant=_no_constant)
MAX_DEPTH = 64  # arrays and objects nested in one another, the body's own object included
_INT_RANGE = (-(2**63), 2**64 - 1)
_LONG_DIGITS = re.compile(r"\d{19}")


def _check_tree(value: Any, depth: int = 1) -> None:
    """Depth, integer range and surrogates of a parsed document (only walked when a
    cheap look at the text says one of them may be off)."""
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            raise MalformedBody(f"the body nests arrays and objects deeper than {MAX_DEPTH}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if isinstance(k, str):
                _check_tree(k, depth)
            _check_tree(v, depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBody("the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
                                ) from None
    elif type(value) is int and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise MalformedBody("the body holds an integer beyond 64 bits")


def load_json(body: bytes) -> Any:
    """The one reading of a JSON body, or 400 (see the rules above)."""
    try:
        text = body.decode("utf-8")
        data = _DECODER.decode(text)
    except _RepeatedKey as e:
        raise MalformedBody(f"the key {e.key!r} appears more than once in one object") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedBody("the body is not valid UTF-8 JSON") from None
    except RecursionError:
        raise MalformedBody(f"the body nests arrays and objects deeper than {MAX_DEPTH}"
                            ) from None
    if ("\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH
            or _LONG_DIGITS.search(text)):
        _check_tree(data)
    return data


def parse_write(body: bytes, kind: type[_Write]) -> Any:
    """Parse a signed body into ``kind`` (Assertion or Retraction); 400/422 on failure."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
    try:
        parsed = kind.model_validate(data)
    except ValidationError as e:
        raise ValidationFailed(_field_errors(e)) from None
    refused = _control_characters(data)
    if refused:
        raise ValidationFailed(refused)
    return parsed


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
