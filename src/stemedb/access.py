"""Who is asking, and which namespaces they may see or write.

A namespace is an assertion's ``context``, hierarchical with ``/``: the grant ``acme``
covers the contexts ``acme`` and ``acme/…`` (``acme/eu``, ``acme/eu/paris``), never
``acme-corp`` or ``beta/acme``. A grant of ``*`` covers every context, including
assertions written without one; those are covered by ``*`` only.

Everything here fails closed: an empty grant covers nothing.

The HTTP layer resolves each request's credential to a :class:`Principal` and puts it in
the ASGI scope under :data:`PRINCIPAL_KEY`; an anonymous request on a server whose reads
are open has no principal, and sees everything (:func:`visible_namespaces` ``None``).
An application that embeds the API or the dashboard behind its own authentication (an
outer ASGI layer in the same process; nothing a client sends can set a scope key) may put
the principal there first: the server's layers then leave it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALL = "*"
SCOPES = ("read", "review", "admin")  # each includes the ones before it
PRINCIPAL_KEY = "stemedb.principal"
MAX_NAMESPACE = 128  # an assertion's context is at most 128 characters


def normalize(namespace: str) -> str:
    """The canonical form of a granted namespace: ``*``, or segments joined by ``/``
    without a trailing one. Raises ``ValueError`` with the rule it breaks."""
    ns = namespace.strip()
    if ns == ALL:
        return ALL
    ns = ns.rstrip("/")
    if not ns:
        raise ValueError("a namespace may not be empty (use * to grant all)")
    if len(ns) > MAX_NAMESPACE:
        raise ValueError(f"a namespace is at most {MAX_NAMESPACE} characters")
    if any(not seg.strip() for seg in ns.split("/")):
        raise ValueError(f"namespace {ns!r} has an empty segment")
    if "*" in ns:
        raise ValueError(f"namespace {ns!r}: * stands alone, it is not a wildcard inside a name")
    return ns


def normalize_all(namespaces: Iterable[str]) -> tuple[str, ...]:
    """Sorted, de-duplicated canonical grants; ``("*",)`` when ``*`` is among them."""
    out = {normalize(ns) for ns in namespaces}
    return (ALL,) if ALL in out else tuple(sorted(out))


def covers(granted: Iterable[str], context: str | None) -> bool:
    """True when one of ``granted`` covers an assertion with this ``context``."""
    for ns in granted:
        if ns == ALL:
            return True
        if context is not None and (context == ns or context.startswith(ns + "/")):
            return True
    return False


def includes(granted: Iterable[str], namespace: str) -> bool:
    """True when ``granted`` covers all of ``namespace`` (a query's ``context`` filter or a
    narrower grant)."""
    return covers(granted, namespace) if namespace != ALL else ALL in tuple(granted)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a token's name, its scope and its namespaces."""

    name: str
    scope: str  # one of SCOPES
    namespaces: tuple[str, ...]  # canonical; ("*",) for all, () for none

    def allows(self, scope: str) -> bool:
        """True when this principal's scope includes ``scope``."""
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    def sees(self, context: str | None) -> bool:
        return covers(self.namespaces, context)


def principal_of(scope: Mapping[str, Any]) -> Principal | None:
    """The principal the HTTP layer resolved for this request (ASGI scope), if any."""
    p: Principal | None = scope.get(PRINCIPAL_KEY)
    return p


def visible_namespaces(principal: Principal | None) -> tuple[str, ...] | None:
    """What a read filters on: ``None`` for no restriction (anonymous on an open server,
    or a ``*`` grant), else the namespaces granted (possibly none: nothing is visible)."""
    if principal is None or ALL in principal.namespaces:
        return None
    return principal.namespaces
