"""The request layer both clients share: it builds every request, decides whether and how
long to wait before a retry, and turns responses into dicts or :class:`ApiError`."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from ..signing import SIGNATURE_HEADER, AgentKey
from ._bodies import BatchItem, QueryFilters, build_retraction, format_timestamp
from ._errors import ApiError, ClientError, ConnectionFailed, parse_retry_after

DEFAULT_URL = "http://127.0.0.1:18180"
TOKEN_ENV = "STEMEDB_TOKEN"
USER_AGENT = "stemedb-python"
RETRY_STATUSES = frozenset({429, 503})
BACKOFF_BASE = 0.1
BACKOFF_MAX = 10.0

log = logging.getLogger("stemedb.client")


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
        token: str | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.admin_token = admin_token
        self.token = token
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
        """The call's headers and its bearer token: the admin token (else the scoped
        token) on admin paths, the scoped token on everything but signed writes (the
        signature proves the agent)."""
        headers = dict(call.headers)
        if call.path.startswith("/v1/admin"):
            token = self.admin_token or self.token
        elif call.method == "POST" and call.path.startswith("/v1/"):
            token = None
        else:
            token = self.token
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
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
