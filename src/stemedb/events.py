"""What the engine and its services report as they work: the ``WriteEvents`` protocol.

The engine calls these as things happen (on the event loop, except ``observe_commit``,
which the storage backend's commit thread calls once per group commit). ``Metrics``
implements them; ``NO_EVENTS`` is the default that observes nothing. Implementations must
be cheap and must not raise: they sit on the write path.
"""

from __future__ import annotations

from typing import Protocol


class WriteEvents(Protocol):
    def observe_write(self, kind: str, outcome: str) -> None:
        """A write ended: ``outcome`` is accepted, quarantined, replayed, or a problem type."""

    def observe_quarantine(self, agent_id: str, reason: str) -> None:
        """A new write was quarantined for ``reason``."""

    def observe_rate_limited(self, endpoint_class: str) -> None:
        """A request of ``endpoint_class`` (assert, query, admin) was refused with 429."""

    def observe_breaker_open(self, trigger: str) -> None:
        """An agent's breaker opened: ``automatic`` or ``manual``."""

    def observe_decision(self, approved: bool) -> None:
        """A quarantine item was approved (True) or rejected (False); one call per item."""

    def observe_commit(self, records: int, fsync_seconds: float, nbytes: int) -> None:
        """A group commit made ``records`` records (``nbytes`` bytes) durable."""


class NoEvents:
    """Observes nothing."""

    def observe_write(self, kind: str, outcome: str) -> None:
        pass

    def observe_quarantine(self, agent_id: str, reason: str) -> None:
        pass

    def observe_rate_limited(self, endpoint_class: str) -> None:
        pass

    def observe_breaker_open(self, trigger: str) -> None:
        pass

    def observe_decision(self, approved: bool) -> None:
        pass

    def observe_commit(self, records: int, fsync_seconds: float, nbytes: int) -> None:
        pass


NO_EVENTS: WriteEvents = NoEvents()
