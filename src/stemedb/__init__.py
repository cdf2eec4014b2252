"""StemeDB: an epistemic database for AI agents."""

from .signing import AgentKey

__version__ = "0.1.0"

__all__ = ["AgentKey", "__version__"]
