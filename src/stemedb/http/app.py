"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..engine import Database
from . import problems
from .middleware import RequestIdMiddleware
from .routes import health, reads, writes


def create_app(database: Database, *, close_on_shutdown: bool = True) -> FastAPI:
    """Build the API app around an open Database (closed on shutdown unless told not to)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_on_shutdown:
            database.close()

    app = FastAPI(title="StemeDB", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.db = database
    problems.install(app)
    for module in (writes, reads, health):
        app.include_router(module.router)
    app.add_middleware(RequestIdMiddleware)
    return app
