"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ..auth import admin_token
from ..engine import Database
from ..metrics import Metrics
from ..ops.archive import watch_archive
from ..version import __version__
from . import openapi, problems
from .guard_middleware import AddressLimitMiddleware
from .metrics_middleware import MetricsMiddleware
from .middleware import RequestIdMiddleware
from .routes import admin, agents, beliefs, health, reads, writes
from .routes import metrics as metrics_routes


def create_app(database: Database, *, close_on_shutdown: bool = True,
               metrics: Metrics | None = None, with_metrics: bool = True) -> FastAPI:
    """Build the API app around an open Database (closed on shutdown unless told not to).
    Metrics live on their own registry per app (``app.state.metrics``); ``with_metrics=
    False`` leaves them out entirely (the benchmark's A/B of their cost)."""
    metrics = metrics if metrics is not None else Metrics()
    if with_metrics:
        metrics.bind(database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.start()
        b = database.settings.backup
        watch = None
        if b.target:  # the archive lag, for /metrics
            watch = asyncio.create_task(watch_archive(
                database.data_dir, b.target, b.s3_endpoint_url or None, b.archive_check_seconds,
                metrics.set_wal_archive_lag), name="stemedb-archive-lag")
        yield
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await database.stop()
        if with_metrics:
            metrics.unbind()
        if close_on_shutdown:
            database.close()

    # FastAPI's OpenTelemetry bridge is off: metrics are Prometheus (``Metrics``), and
    # asking OpenTelemetry whether it is configured costs ~10 µs on every request.
    app = FastAPI(title="StemeDB", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # openapi.install serves them offline
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.db = database
    app.state.metrics = metrics
    app.state.admin_token = admin_token(database.settings)
    problems.install(app)
    for module in (writes, reads, beliefs, agents, admin, health):
        app.include_router(module.router)
    # The hottest routes first, as plain Starlette routes (see routes/fast.py).
    app.router.routes[:0] = [*writes.fast_routes, *reads.fast_routes, *beliefs.fast_routes,
                             *health.fast_routes]
    if with_metrics:
        app.include_router(metrics_routes.router)
    openapi.install(app)  # /openapi.json, /docs, /redoc: last in the routing table
    app.add_middleware(AddressLimitMiddleware, database=database,
                       admin_token=app.state.admin_token)
    app.add_middleware(RequestIdMiddleware)  # every answer carries the id
    if with_metrics:
        app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    return app
