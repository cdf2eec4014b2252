"""The cluster backend: the journal and the derived state in PostgreSQL.

``PostgresStore`` implements ``store.Store`` over one database that any number of
stateless nodes share: the journal (``journal`` and its ``tip`` row), and the derived
tables mirroring the embedded index, written in the same transaction (``schema.py``,
``committer.py``, ``apply.py``), and read back with the embedded answers (``reads.py``).
``migrate`` and ``status`` serve the commands that manage a database (``db status``).
"""

from .schema import SCHEMA_VERSION, migrate, status
from .store import PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore", "database_status", "migrate", "status"]


def database_status(url: str) -> dict[str, int]:
    """Schema version (0: none yet), the version this StemeDB writes, and the tip LSN;
    ``Unavailable`` when the database cannot be reached."""
    import psycopg

    from ..errors import Unavailable
    from .connection import connect, describe

    try:
        with connect(url, name="stemedb-status") as conn:
            found = status(conn)
    except psycopg.OperationalError as e:
        raise Unavailable(f"database unreachable: {describe(e)}") from None
    return {"schema_version": found["schema_version"], "supported_version": SCHEMA_VERSION,
            "tip_lsn": found["tip_lsn"]}
