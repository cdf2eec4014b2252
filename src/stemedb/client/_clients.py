"""The synchronous and asynchronous clients: the same calls, sent and slept differently."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ..signing import AgentKey
from ._admin import Admin, AsyncAdmin
from ._bodies import (
    AssertionOptions,
    BatchItem,
    BeliefOptions,
    DisputeOptions,
    QueryFilters,
    SearchOptions,
    WriteOptions,
    build_assertion,
)
from ._core import DEFAULT_URL, TOKEN_ENV, USER_AGENT, _Call, _Core, _seg

if TYPE_CHECKING:
    from typing_extensions import Unpack

SleepFn = Callable[[float], None]
AsyncSleepFn = Callable[[float], Awaitable[None]]


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
        token: str | None = None,
    ) -> dict[str, Any]:
        from ..version import __version__

        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        self._core = _Core(base_url, key, admin_token, max_retries, max_retry_after, token)
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

    ``key`` signs writes; ``token`` (else ``$STEMEDB_TOKEN``), a scoped API token, is
    sent as a bearer token on reads (a server with ``[auth] read = "token"`` needs one
    with the read scope) and on admin calls when there is no ``admin_token``;
    ``admin_token`` is sent as a bearer token to ``/v1/admin`` paths only, and
    :attr:`admin` calls them (``admin_actor`` names who decides, for the
    audit log). Requests answered 429 or 503 (and requests that failed to connect) are
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
        admin_actor: str | None = None,
        token: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 5,
        max_retry_after: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: SleepFn = time.sleep,
    ) -> None:
        options = self._setup(base_url, key, admin_token, max_retries, max_retry_after, timeout,
                              token)
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, **options)
        self.admin = Admin(self._run, admin_actor)

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
        """One page: ``{"items": [...], "next_cursor": str | None}``, newest first.
        ``as_of`` (a time, or an LSN as an int) answers as the database stood then;
        ``valid_at`` (a time) keeps the claims that hold then in the world."""
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
        """Trust-weighted candidates for ``subject`` (one ``predicate``, or all of them);
        ``valid_at`` counts only the claims that hold at that time in the world."""
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
        """Any other endpoint, with the same retries and errors (the admin API has its own
        methods under :attr:`admin`)."""
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
        admin_actor: str | None = None,
        token: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 5,
        max_retry_after: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: AsyncSleepFn = asyncio.sleep,
    ) -> None:
        options = self._setup(base_url, key, admin_token, max_retries, max_retry_after, timeout,
                              token)
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, **options)
        self.admin = AsyncAdmin(self._run, admin_actor)

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
