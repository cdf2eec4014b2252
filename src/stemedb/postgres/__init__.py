"""The cluster backend: the journal and the derived state in PostgreSQL.

``PostgresStore`` implements ``store.Store`` over one database that any number of
stateless nodes share: the journal (``journal`` and its ``tip`` row), and the derived
tables mirroring the embedded index, written in the same transaction (``schema.py``,
``committer.py``, ``apply.py``), and read back with the embedded answers (``reads.py``).
``migrate`` and ``status`` serve the commands that manage a database (``db status``).
"""

from .schema import SCHEMA_VERSION, migrate, status
from .store import PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore", "migrate", "status"]
