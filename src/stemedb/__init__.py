"""StemeDB: an epistemic database for AI agents."""

from .client import AsyncClient, Client
from .signing import AgentKey
from .version import __version__

__all__ = ["AgentKey", "AsyncClient", "Client", "__version__"]
