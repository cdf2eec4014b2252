"""What the client raises: the server's problem answers and unreachable servers."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


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
