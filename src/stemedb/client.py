"""HTTP SDK for StemeDB: :class:`Client` (sync) and :class:`AsyncClient` (async).

Both clients share one request layer (:class:`_Core`): it builds every request, decides
whether and how long to wait before a retry, and turns responses into dicts or
:class:`ApiError`. The two classes differ only in how they send and sleep.

Writes are signed over the exact body bytes. A retry re-sends the *same* bytes and the
*same* signature, so the server recognises it as a replay and answers with the original
outcome instead of storing the write twice. That makes every signed write idempotent,
and it is why the client retries writes as freely as reads.

Client-side errors::

    ClientError
    ├── ApiError            the server answered with a non-2xx status (carries the problem)
    └── ConnectionFailed    the server could not be reached, after retries
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote

import httpx
import orjson

from .signing import SIGNATURE_HEADER, AgentKey

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AssertionOptions",
    "AsyncClient",
    "BatchItem",
    "BeliefOptions",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "DisputeOptions",
    "QueryFilters",
    "SearchOptions",
    "WriteOptions",
    "build_assertion",
    "build_retraction",
    "format_timestamp",
    "new_nonce",
    "sign_body",
]

DEFAULT_URL = "http://127.0.0.1:18180"
USER_AGENT = "stemedb-python"
RETRY_STATUSES = frozenset({429, 503})
BACKOFF_BASE = 0.1
BACKOFF_MAX = 10.0

log = logging.getLogger("stemedb.client")

Timestamp = datetime | str
SleepFn = Callable[[float], None]
AsyncSleepFn = Callable[[float], Awaitable[None]]


# -- errors ------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of the errors raised by the StemeDB client."""


class ApiError(ClientError):
    """The server answered with a non-2xx status.

    ``problem`` is the RFC 9457 body (``type``, ``title``, ``status``, ``detail``,
    ``instance`` and extensions such as ``errors``). A body that is not a problem (for
    example an HTML page from a proxy) is wrapped into one.
    """

    def __init__(
        self,
        status: int,
        problem: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem or {})
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        super().__init__(str(self))

    @property
    def type(self) -> str:
        return str(self.problem.get("type", "about:blank"))

    @property
    def title(self) -> str:
        return str(self.problem.get("title") or "")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return list(errors) if isinstance(errors, list) else []

    @property
    def request_id(self) -> str | None:
        rid = self.headers.get("x-request-id") or self.problem.get("instance")
        return str(rid) if rid else None

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))

    @property
    def circuit_breaker_open(self) -> bool:
        return self.headers.get("x-circuit-breaker-state", "").upper() == "OPEN"

    def __str__(self) -> str:
        text = f"{self.status} {self.title or 'error'}"
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.circuit_breaker_open:
            text += " (circuit breaker OPEN)"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, type={self.type!r}, detail={self.detail!r})"


class ConnectionFailed(ClientError):
    """The server could not be reached (connection refused, timeout, broken response)."""


# -- bodies and signatures ------------------------------------------------------------------


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
    include_inactive: bool | None
    limit: int | None
    cursor: str | None


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


# -- retry policy ------------------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class _Call:
    """One logical request; retries re-send exactly these bytes and headers."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True
    retry: bool = True
    ok: frozenset[int] = frozenset()  # non-2xx statuses that are answers, not errors
    text_ok: bool = False  # a plain-text body is an answer (health checks behind proxies)
    shape: Callable[[httpx.Response, Any], Any] | None = None


class _Core:
    """Everything but the transport: request building, retry decisions, parsing."""

    def __init__(
        self,
        base_url: str,
        key: AgentKey | None,
        admin_token: str | None,
        max_retries: int,
        max_retry_after: float,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.admin_token = admin_token
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self._rng = random.Random()

    # requests ------------------------------------------------------------------------

    def need_key(self) -> AgentKey:
        if self.key is None:
            raise ClientError("signing a write needs a key: Client(key=AgentKey.load(path))")
        return self.key

    def signed(self, path: str, body: bytes | str, signature: str | None) -> _Call:
        if isinstance(body, str):
            body = body.encode("utf-8")
        if signature is None:
            signature = self.need_key().sign_b64(body)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        return _Call("POST", path, content=body, headers=headers)

    def retract(self, assertion_id: str, reason: str, **kw: Any) -> _Call:
        body = build_retraction(self.need_key(), assertion_id, reason, **kw)
        return self.signed("/v1/retract", body, None)

    def batch(self, items: Iterable[BatchItem]) -> _Call:
        out = []
        for item in items:
            body, signature = item if isinstance(item, tuple) else (item, None)
            if isinstance(body, str):
                body = body.encode("utf-8")
            if signature is None:
                signature = self.need_key().sign_b64(body)
            out.append({"body": body.decode("utf-8"), "signature": signature})
        # Each item is a signed write, so re-sending the whole batch is safe.
        headers = {"Content-Type": "application/json"}
        return _Call(
            "POST", "/v1/assert/batch", content=orjson.dumps({"items": out}), headers=headers,
            shape=lambda _, data: list(data.get("results", [])),
        )  # fmt: skip

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> _Call:
        return _Call("GET", path, params=_params(params or {}), **kw)

    def query(self, filters: Mapping[str, Any]) -> _Call:
        unknown = set(filters) - set(QueryFilters.__annotations__)
        if unknown:
            raise TypeError(f"unknown query filter(s): {', '.join(sorted(unknown))}")
        return self.get("/v1/assertions", filters)

    def ready(self) -> _Call:
        return self.get("/readyz", retry=False, ok=frozenset({503}), text_ok=True, shape=_ready)

    def generic(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> _Call:
        method = method.upper()
        hdrs = dict(headers or {})
        content = None
        if json is not None:
            content = orjson.dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        idempotent = method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
        return _Call(
            method, path, params=_params(params or {}), content=content, headers=hdrs,
            idempotent=idempotent,
        )  # fmt: skip

    def request_headers(self, call: _Call) -> dict[str, str]:
        headers = dict(call.headers)
        if self.admin_token and call.path.startswith("/v1/admin"):
            headers.setdefault("Authorization", f"Bearer {self.admin_token}")
        return headers

    # retries -------------------------------------------------------------------------

    def next_delay(
        self,
        call: _Call,
        attempt: int,
        resp: httpx.Response | None,
        exc: httpx.TransportError | None,
    ) -> float | None:
        """Seconds to wait before re-sending ``call``, or None when ``resp`` is the answer.

        Raises :class:`ConnectionFailed` when a transport error is not retried.
        """
        if resp is None:
            assert exc is not None
            # A request that may have reached the server is re-sent only when that is safe.
            safe = call.idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            if not (call.retry and safe and attempt < self.max_retries):
                reason = str(exc) or type(exc).__name__
                raise ConnectionFailed(
                    f"{call.method} {self.base_url}{call.path}: {reason}"
                ) from exc
            delay = self.backoff(attempt)
            log.debug("retrying %s %s after %r in %.2fs", call.method, call.path, exc, delay)
            return delay
        if not call.retry or resp.status_code not in RETRY_STATUSES:
            return None
        if attempt >= self.max_retries:
            return None
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        if retry_after is not None and retry_after > self.max_retry_after:
            # Retrying sooner than asked would only be refused again, and waiting that long
            # would hang the caller: hand the error back with its retry_after instead.
            return None
        delay = self.backoff(attempt) if retry_after is None else retry_after
        log.debug(
            "retrying %s %s after %d in %.2fs", call.method, call.path, resp.status_code, delay
        )
        return delay

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random."""
        ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    # responses -----------------------------------------------------------------------

    def answer(self, call: _Call, resp: httpx.Response) -> Any:
        if not (resp.is_success or resp.status_code in call.ok):
            raise api_error(resp)
        data: Any = {}
        if resp.content.strip():
            try:
                data = orjson.loads(resp.content)
            except orjson.JSONDecodeError:
                if not call.text_ok:
                    ctype = resp.headers.get("content-type")
                    raise ClientError(
                        f"{call.method} {call.path}: expected JSON, got {ctype!r}"
                        f" (is {self.base_url} a StemeDB server?)"
                    ) from None
                data = {"detail": resp.text}
        return call.shape(resp, data) if call.shape else data


def api_error(resp: httpx.Response) -> ApiError:
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        problem = data
    else:
        problem = {"title": resp.reason_phrase or "HTTP error", "status": resp.status_code}
        if resp.content.strip():
            problem["detail"] = resp.text[:500]
    return ApiError(resp.status_code, problem, headers=resp.headers)


def _params(filters: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[name] = format_timestamp(value)
        elif name == "as_of" and isinstance(value, int):
            out[name] = f"lsn:{value}"
        elif name == "object" and not isinstance(value, str):
            # A non-string object is matched by its JSON text, keys sorted.
            out[name] = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        else:
            out[name] = str(value)
    return out


def _ready(resp: httpx.Response, data: Any) -> dict[str, Any]:
    out = dict(data) if isinstance(data, dict) else {"detail": data}
    out["status_code"] = resp.status_code
    out["ready"] = resp.is_success
    return out


def _seg(value: str) -> str:
    """One URL path segment, so an id can never walk to another route."""
    return quote(value, safe="")


class _BaseClient:
    """What the sync and async clients share besides the request layer."""

    _core: _Core

    def _setup(
        self,
        base_url: str,
        key: AgentKey | None,
        admin_token: str | None,
        max_retries: int,
        max_retry_after: float,
        timeout: float | httpx.Timeout,
    ) -> dict[str, Any]:
        from .version import __version__

        self._core = _Core(base_url, key, admin_token, max_retries, max_retry_after)
        return {
            "base_url": self._core.base_url,
            "timeout": timeout,
            "headers": {"User-Agent": f"{USER_AGENT}/{__version__}", "Accept": "application/json"},
        }

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def key(self) -> AgentKey | None:
        return self._core.key

    def build_assertion(
        self,
        subject: str,
        predicate: str,
        object: Any,
        confidence: float,
        **options: Unpack[AssertionOptions],
    ) -> bytes:
        """Exact body bytes of an assertion by this client's key (see :func:`build_assertion`)."""
        key = self._core.need_key()
        return build_assertion(key, subject, predicate, object, confidence, **options)


# -- sync client ---------------------------------------------------------------------------


class Client(_BaseClient):
    """Synchronous StemeDB client.

    ``key`` signs writes; ``admin_token`` is sent as a bearer token to ``/v1/admin``
    paths only. Requests answered 429 or 503 (and requests that failed to connect) are
    retried up to ``max_retries`` times, waiting ``Retry-After`` seconds when the server
    says so (a wait longer than ``max_retry_after`` raises instead) or else exponential
    backoff with jitter. ``sleep`` and ``transport`` are injectable for tests.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: AgentKey | None = None,
        *,
        admin_token: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 5,
        max_retry_after: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: SleepFn = time.sleep,
    ) -> None:
        options = self._setup(base_url, key, admin_token, max_retries, max_retry_after, timeout)
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: _Call) -> Any:
        headers = self._core.request_headers(call)
        attempt = 0
        while True:
            resp, exc = None, None
            try:
                resp = self._http.request(
                    call.method, call.path, params=call.params, content=call.content, headers=headers
                )  # fmt: skip
            except httpx.TransportError as e:
                exc = e
            delay = self._core.next_delay(call, attempt, resp, exc)
            if delay is None:
                assert resp is not None
                return self._core.answer(call, resp)
            self._sleep(delay)
            attempt += 1

    # writes ----------------------------------------------------------------------------

    def assert_(
        self,
        subject: str,
        predicate: str,
        object: Any,
        confidence: float,
        **options: Unpack[AssertionOptions],
    ) -> dict[str, Any]:
        """Sign and post an assertion; ``{"id", "status", "lsn"}`` or the quarantined shape."""
        body = self.build_assertion(subject, predicate, object, confidence, **options)
        return self.post_signed(body)

    def post_signed(
        self, body: bytes | str, signature_b64: str | None = None, *, path: str = "/v1/assert"
    ) -> dict[str, Any]:
        """Post exact body bytes; signs them with the client's key unless a signature is given."""
        return self._run(self._core.signed(path, body, signature_b64))

    def assert_batch(self, bodies: Iterable[BatchItem]) -> list[dict[str, Any]]:
        """Post many bodies at once; ``(body, signature)`` pairs are sent as already signed."""
        return self._run(self._core.batch(bodies))

    def retract(
        self, assertion_id: str, reason: str = "", **options: Unpack[WriteOptions]
    ) -> dict[str, Any]:
        return self._run(self._core.retract(assertion_id, reason, **options))

    # reads -----------------------------------------------------------------------------

    def get(self, assertion_id: str) -> dict[str, Any]:
        return self._run(self._core.get(f"/v1/assertions/{_seg(assertion_id)}"))

    def query(self, **filters: Unpack[QueryFilters]) -> dict[str, Any]:
        """One page: ``{"items": [...], "next_cursor": str | None}``, newest first."""
        return self._run(self._core.query(filters))

    def iter_query(self, **filters: Unpack[QueryFilters]) -> Iterator[dict[str, Any]]:
        """Every matching item, following ``next_cursor`` page after page."""
        while True:
            page = self.query(**filters)
            yield from page.get("items", [])
            if not page.get("next_cursor"):
                return
            filters["cursor"] = page["next_cursor"]

    def search(self, q: str, **options: Unpack[SearchOptions]) -> dict[str, Any]:
        """Full-text search over subject, predicate and object; a page like :meth:`query`."""
        return self._run(self._core.get("/v1/search", {"q": q, **options}))

    def beliefs(self, subject: str, **options: Unpack[BeliefOptions]) -> dict[str, Any]:
        """Trust-weighted candidates for ``subject`` (one ``predicate``, or all of them)."""
        return self._run(self._core.get("/v1/beliefs", {"subject": subject, **options}))

    def disputes(self, **options: Unpack[DisputeOptions]) -> dict[str, Any]:
        """Contested keys, most contested first: ``{"items": [...], "next_cursor"}``."""
        return self._run(self._core.get("/v1/disputes", options))

    def agent(self, agent_id: str) -> dict[str, Any]:
        return self._run(self._core.get(f"/v1/agents/{_seg(agent_id)}"))

    def health(self) -> dict[str, Any]:
        return self._run(self._core.get("/healthz", text_ok=True))

    def ready(self) -> dict[str, Any]:
        """``/readyz`` with ``status_code`` and ``ready`` added; a 503 answers, not raises."""
        return self._run(self._core.ready())

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Any other endpoint (e.g. the admin API), with the same retries and errors."""
        return self._run(self._core.generic(method, path, params, json, headers))


# -- async client ------------------------------------------------------------------------


class AsyncClient(_BaseClient):
    """Asynchronous StemeDB client: the API of :class:`Client`, awaitable."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: AgentKey | None = None,
        *,
        admin_token: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 5,
        max_retry_after: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: AsyncSleepFn = asyncio.sleep,
    ) -> None:
        options = self._setup(base_url, key, admin_token, max_retries, max_retry_after, timeout)
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, **options)

    async def aclose(self) -> None:
        await self._http.aclose()

    close = aclose

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, call: _Call) -> Any:
        headers = self._core.request_headers(call)
        attempt = 0
        while True:
            resp, exc = None, None
            try:
                resp = await self._http.request(
                    call.method, call.path, params=call.params, content=call.content, headers=headers
                )  # fmt: skip
            except httpx.TransportError as e:
                exc = e
            delay = self._core.next_delay(call, attempt, resp, exc)
            if delay is None:
                assert resp is not None
                return self._core.answer(call, resp)
            await self._sleep(delay)
            attempt += 1

    # writes ----------------------------------------------------------------------------

    async def assert_(
        self,
        subject: str,
        predicate: str,
        object: Any,
        confidence: float,
        **options: Unpack[AssertionOptions],
    ) -> dict[str, Any]:
        body = self.build_assertion(subject, predicate, object, confidence, **options)
        return await self.post_signed(body)

    async def post_signed(
        self, body: bytes | str, signature_b64: str | None = None, *, path: str = "/v1/assert"
    ) -> dict[str, Any]:
        return await self._run(self._core.signed(path, body, signature_b64))

    async def assert_batch(self, bodies: Iterable[BatchItem]) -> list[dict[str, Any]]:
        return await self._run(self._core.batch(bodies))

    async def retract(
        self, assertion_id: str, reason: str = "", **options: Unpack[WriteOptions]
    ) -> dict[str, Any]:
        return await self._run(self._core.retract(assertion_id, reason, **options))

    # reads -----------------------------------------------------------------------------

    async def get(self, assertion_id: str) -> dict[str, Any]:
        return await self._run(self._core.get(f"/v1/assertions/{_seg(assertion_id)}"))

    async def query(self, **filters: Unpack[QueryFilters]) -> dict[str, Any]:
        return await self._run(self._core.query(filters))

    async def iter_query(self, **filters: Unpack[QueryFilters]) -> AsyncIterator[dict[str, Any]]:
        while True:
            page = await self.query(**filters)
            for item in page.get("items", []):
                yield item
            if not page.get("next_cursor"):
                return
            filters["cursor"] = page["next_cursor"]

    async def search(self, q: str, **options: Unpack[SearchOptions]) -> dict[str, Any]:
        return await self._run(self._core.get("/v1/search", {"q": q, **options}))

    async def beliefs(self, subject: str, **options: Unpack[BeliefOptions]) -> dict[str, Any]:
        return await self._run(self._core.get("/v1/beliefs", {"subject": subject, **options}))

    async def disputes(self, **options: Unpack[DisputeOptions]) -> dict[str, Any]:
        return await self._run(self._core.get("/v1/disputes", options))

    async def agent(self, agent_id: str) -> dict[str, Any]:
        return await self._run(self._core.get(f"/v1/agents/{_seg(agent_id)}"))

    async def health(self) -> dict[str, Any]:
        return await self._run(self._core.get("/healthz", text_ok=True))

    async def ready(self) -> dict[str, Any]:
        return await self._run(self._core.ready())

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return await self._run(self._core.generic(method, path, params, json, headers))
