"""Read filters in SQL, shared by both backends: namespaces and valid time.

**Namespaces.** A reader restricted to some namespaces (``access.visible_namespaces``)
sees an assertion only when one of them covers its ``context`` (``access.covers``): the
grant ``acme`` covers ``acme`` and ``acme/…``. In SQL that is ``context = 'acme' OR
substr(context, 1, 5) = 'acme/'``: the prefix is compared with ``substr``, not ``LIKE``,
so ``%`` and ``_`` in a name are plain characters. ``substr`` counts characters on SQLite
and on PostgreSQL, as ``len`` does here. An assertion written without a context is
stored with ``''``, which no grant covers (only ``*``, which is no restriction at all).
No grant at all covers nothing: the condition is false.

**Valid time.** ``valid_at = T`` keeps claims whose ``valid_from <= T < valid_until``,
either end open; both bounds are compared as instants (``valid_from_us``,
``valid_until_us``: unix microseconds, filled in when the record is applied), never as
the texts as signed, whose offsets may differ.

Each helper appends its values to ``params`` and returns the condition; ``mark`` turns
a parameter name into its placeholder (``:name`` for SQLite, ``%(name)s`` for psycopg).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..access import ALL
from ..model import nfc

Mark = Callable[[str], str]


def sqlite_mark(name: str) -> str:
    return ":" + name


def psycopg_mark(name: str) -> str:
    return f"%({name})s"


def restriction(namespaces: Iterable[str] | None) -> tuple[str, ...] | None:
    """None when nothing is hidden (no restriction, or ``*`` granted), else the grants in
    the stored (NFC) form, possibly none."""
    if namespaces is None:
        return None
    grants = tuple(dict.fromkeys(nfc(ns) for ns in namespaces))
    return None if ALL in grants else grants


def named(namespaces: tuple[str, ...], params: dict[str, Any], mark: Mark,
          column: str = "context") -> str:
    """The condition that ``column`` is covered by one of ``namespaces``."""
    if not namespaces:
        return "1 = 0"
    parts = []
    for i, ns in enumerate(namespaces):
        eq, pre = f"ns{i}", f"ns{i}p"
        params[eq], params[pre] = ns, ns + "/"
        parts.append(f"{column} = {mark(eq)} OR substr({column}, 1, {len(ns) + 1})"
                     f" = {mark(pre)}")
    return "(" + " OR ".join(parts) + ")"


def positional(namespaces: tuple[str, ...], params: list[Any], column: str = "a.context"
               ) -> str:
    """``named`` with ``?`` placeholders (the portable admin and dashboard queries)."""
    if not namespaces:
        return "1 = 0"
    parts = []
    for ns in namespaces:
        params += [ns, ns + "/"]
        parts.append(f"{column} = ? OR substr({column}, 1, {len(ns) + 1}) = ?")
    return "(" + " OR ".join(parts) + ")"


def valid_at(at_us: int, params: dict[str, Any], mark: Mark, prefix: str = "") -> str:
    """The condition that a row's valid time holds the instant ``at_us``."""
    params["valid_at"] = at_us
    t = mark("valid_at")
    return (f"({prefix}valid_from_us IS NULL OR {prefix}valid_from_us <= {t})"
            f" AND ({prefix}valid_until_us IS NULL OR {prefix}valid_until_us > {t})")
