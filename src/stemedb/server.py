"""The server entry point: configures logging, opens the database, runs uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from . import logs
from .engine import Database
from .http import create_app
from .settings import Settings

log = logging.getLogger("stemedb.server")


def run(settings: Settings) -> None:
    logs.configure(settings.server.log_level)
    s = settings.server
    database = Database(settings)
    rec = database.journal.recovery
    if rec.truncated_bytes:
        log.warning("cut a torn tail of %d bytes off the journal; the cut bytes are kept in %s",
                    rec.truncated_bytes, rec.broken_copy)
    log.info("journal open", extra={"data_dir": str(settings.data_dir),
                                    "last_lsn": database.journal.last_lsn,
                                    "config": settings.config_path})
    app = create_app(database)
    config = uvicorn.Config(app, host=s.host, port=s.port, log_config=None, access_log=False,
                            server_header=False, lifespan="on", timeout_graceful_shutdown=10,
                            proxy_headers=False)  # X-Forwarded-For: see [rate_limit] trusted_proxies
    log.info("listening", extra={"host": s.host, "port": s.port})
    uvicorn.Server(config).run()
