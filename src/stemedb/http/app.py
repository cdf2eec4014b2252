"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..auth import admin_token
from ..engine import Database
from ..metrics import Metrics
from . import problems
from .guard_middleware import AddressLimitMiddleware
from .metrics_middleware import MetricsMiddleware
from .middleware import RequestIdMiddleware
from .routes import admin, agents, beliefs, health, reads, writes
from .routes import metrics as metrics_routes


def create_app(database: Database, *, close_on_shutdown: bool = True,
               metrics: Metrics | None = None) -> FastAPI:
    """Build the API app around an open Database (closed on shutdown unless told not to).
    Metrics live on their own registry per app (``app.state.metrics``)."""
    metrics = metrics if metrics is not None else Metrics()
    metrics.bind(database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.start()
        yield
        await database.stop()
        metrics.unbind()
        if close_on_shutdown:
            database.close()

    app = FastAPI(title="StemeDB", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.db = database
    app.state.metrics = metrics
    app.state.admin_token = admin_token(database.settings)
    problems.install(app)
    for module in (writes, reads, beliefs, agents, admin, health, metrics_routes):
        app.include_router(module.router)
    app.add_middleware(AddressLimitMiddleware, database=database,
                       admin_token=app.state.admin_token)
    app.add_middleware(RequestIdMiddleware)  # every answer carries the id
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    return app
