"""HTTP API: app factory, routes, problem+json handlers, middleware."""

from .app import create_app

__all__ = ["create_app"]
