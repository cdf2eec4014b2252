"""Derived state: the SQLite index built from the journal."""

from ..answers import row_to_assertion
from ..store import AssertionFilter
from .query import list_assertions, search
from .store import Entry, IndexStore, build_index, entries_from

__all__ = ["AssertionFilter", "Entry", "IndexStore", "build_index", "entries_from", "list_assertions", "row_to_assertion", "search"]
