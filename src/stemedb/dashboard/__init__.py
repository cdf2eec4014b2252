"""The review dashboard: a small server-rendered web UI over the admin service.

Served by ``stemedb serve`` on ``--dashboard-port`` (default 18188) in the same process
and event loop as the API. See docs/dashboard.md.
"""

from .app import create_dashboard
from .sessions import SessionStore

__all__ = ["SessionStore", "create_dashboard"]
