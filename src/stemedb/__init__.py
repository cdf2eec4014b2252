"""StemeDB: an epistemic database for AI agents."""

from .client import AsyncClient, Client
from .signing import AgentKey

__version__ = "0.1.0"

__all__ = ["AgentKey", "AsyncClient", "Client", "__version__"]
