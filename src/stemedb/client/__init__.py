"""HTTP SDK for StemeDB: :class:`Client` (sync) and :class:`AsyncClient` (async).

Both clients share one request layer (``_core``): it builds every request, decides
whether and how long to wait before a retry, and turns responses into dicts or
:class:`ApiError`. The two classes differ only in how they send and sleep. The admin API
is ``client.admin`` (``_admin``), built the same way.

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

from ._admin import Admin, AsyncAdmin, QuarantineFilters
from ._bodies import (
    AssertionOptions,
    BatchItem,
    BeliefOptions,
    DisputeOptions,
    QueryFilters,
    SearchOptions,
    WriteOptions,
    build_assertion,
    build_retraction,
    format_timestamp,
    new_nonce,
    sign_body,
)
from ._clients import AsyncClient, Client
from ._core import DEFAULT_URL
from ._errors import ApiError, ClientError, ConnectionFailed, parse_retry_after

__all__ = [
    "DEFAULT_URL",
    "Admin",
    "ApiError",
    "AssertionOptions",
    "AsyncAdmin",
    "AsyncClient",
    "BatchItem",
    "BeliefOptions",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "DisputeOptions",
    "QuarantineFilters",
    "QueryFilters",
    "SearchOptions",
    "WriteOptions",
    "build_assertion",
    "build_retraction",
    "format_timestamp",
    "new_nonce",
    "parse_retry_after",
    "sign_body",
]
