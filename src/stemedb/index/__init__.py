"""Derived state: the SQLite index built from the journal."""

from .query import AssertionFilter, list_assertions, row_to_assertion, search
from .store import Entry, IndexStore, entries_from

__all__ = ["AssertionFilter", "Entry", "IndexStore", "entries_from", "list_assertions", "row_to_assertion", "search"]
