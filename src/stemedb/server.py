"""The server entry point: configures logging, opens the database, runs the API and the
review dashboard.

Both apps share one Database and run as two ``uvicorn.Server`` instances in the same
process and event loop (the admin service's decision lock is an asyncio lock, so every
decision, from the API or the dashboard, is serialised by it). Their sockets are bound
before the loop starts, so a port in use fails the start with a clear error. SIGTERM and
SIGINT stop both servers; the database is closed once, after both have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from . import logs
from .engine import Database
from .errors import Unavailable
from .events import NO_EVENTS
from .http import create_app
from .http.transport import JoinedWritesProtocol
from .metrics import Metrics
from .settings import Settings, config_error, is_loopback, read_mode

log = logging.getLogger("stemedb.server")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve_all`` (uvicorn's own
    handler would only stop the server that installed it last)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket, or a clear error naming the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise Unavailable(
            f"cannot listen on {host}:{port} for the {what}: {e.strerror or e}",
            hint=f"another process uses port {port}, or the address is wrong; "
            "choose another port (--port / --dashboard-port, 0 disables "
            "the dashboard)",
        ) from None
    # Answers go out at once whatever the event loop (no Nagle wait on delayed ACKs).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    # X-Forwarded-For is believed only from [rate_limit] trusted_proxies (see guards).
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        http=JoinedWritesProtocol,  # every answer in one send (http/transport.py)
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )


# The collector's thresholds while serving (the defaults are 700, 10, 10): the youngest
# generation is collected after 10,000 net allocations, the middle one after 50 of those,
# the oldest after 100 middle ones.
GC_THRESHOLDS = (10_000, 50, 100)
SWITCH_INTERVAL = 0.0005  # seconds (Python's default: 0.005)


def tune_gc() -> None:
    """Set the cyclic garbage collector up for serving.

    What is alive when serving starts (modules, the apps, settings, the open database)
    lives as long as the process: frozen, the collector never walks it again. A write
    allocates thousands of short-lived objects, so with the default thresholds every few
    requests paid a young collection and every few thousand a full one, which walked the
    whole heap (~80 ms each). Measured on single writes in process: collections cost
    ~117 µs per write with the defaults, ~3 µs after this (1,151 → 955 µs of CPU per
    write)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def tune_threads() -> None:
    """Shorten how long the event loop may keep the GIL from a thread waiting for it.

    The journal's commit thread applies every batch to the index in a few dozen SQLite
    calls, and each gives the GIL up while SQLite works. Under load the event loop takes
    it meanwhile, and a thread asking for it back waits until the holder has run for the
    switch interval: 5 ms by default, so a batch could wait tens of milliseconds for the
    GIL alone, and every write in it with it. Measured under the soak's load (607 writes/s
    and 304 reads/s, 4 minutes; one run each): the index's apply took 0.41-0.56 ms per
    batch at the median with the default, 0.26-0.37 ms at 0.5 ms; the server's CPU was
    the same (0.98-1.02 and 0.89-1.01 cores)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


async def serve_all(servers: list[tuple[uvicorn.Server, socket.socket]]) -> None:
    """Run the servers until a signal (or one of them stopping) stops them all."""
    loop = asyncio.get_running_loop()
    tune_gc()
    tune_threads()

    def stop(sig: signal.Signals) -> None:
        log.info("stopping", extra={"signal": sig.name})
        for srv, _ in servers:
            if srv.should_exit and sig == signal.SIGINT:
                srv.force_exit = True  # a second Ctrl-C: do not wait for connections
            srv.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    tasks = [asyncio.create_task(srv.serve(sockets=[sock])) for srv, sock in servers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for srv, _ in servers:  # one stopped (signal or failure): stop the others too
            srv.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    for r in results:
        if isinstance(r, BaseException):
            raise r


def check_startup(settings: Settings) -> None:
    """What only serving needs of the settings, as a :class:`ConfigError` line naming
    the setting and its source (``load_settings`` has checked everything else)."""
    if settings.storage.database_url and not settings.admin.token:
        raise config_error(
            "admin.token", settings.source("admin.token"),
            "must be set, the same on every node, when storage.database_url (from "
            f"{settings.source('storage.database_url')}) runs the node in cluster mode: "
            "a token generated into one node's data directory would differ from the others'")
    if not settings.storage.database_url:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise config_error("server.data_dir", settings.source("server.data_dir"),
                               f"cannot create the directory {settings.data_dir}: "
                               f"{e.strerror or e}") from None


def warn_open_reads(settings: Settings) -> None:
    """One warning when reads are open on an address other machines may reach: the
    operator opted out of read authentication, and the log says so."""
    if read_mode(settings) == "open" and not is_loopback(settings.server.host):
        log.warning("reads are open to anonymous clients on a non-loopback address",
                    extra={"host": settings.server.host,
                           "setting": f"auth.read from {settings.source('auth.read')}",
                           "hint": "set [auth] read = \"token\" unless a proxy in front "
                                   "authenticates readers"})


def run(settings: Settings, *, open_database: Callable[..., Database] = Database,
        with_metrics: bool = True) -> None:
    """Serve until a signal. ``open_database(settings, events=...)`` opens the engine and
    ``with_metrics=False`` leaves metrics out (benchmark variants pass both)."""
    check_startup(settings)
    logs.configure(settings.server.log_level)
    s = settings.server
    metrics = Metrics()
    database = open_database(settings, events=metrics if with_metrics else NO_EVENTS)
    try:
        log.info(
            "journal open",
            extra={
                "data_dir": str(settings.data_dir),
                "last_lsn": database.store.last_lsn,
                "config": settings.config_path,
            },
        )
        # The API app starts and stops the database's background work; the database
        # itself is closed here, once, after both servers have finished.
        app = create_app(database, close_on_shutdown=False, metrics=metrics,
                         with_metrics=with_metrics)
        servers: list[tuple[uvicorn.Server, socket.socket]] = []
        try:
            servers.append((_Server(_config(app, s.host, s.port)), bind(s.host, s.port, "API")))
            log.info("listening", extra={"host": s.host, "port": s.port,
                                         "reads": read_mode(settings)})
            warn_open_reads(settings)
            if s.dashboard_port:
                from .dashboard import create_dashboard

                dash = create_dashboard(database)
                servers.append(
                    (
                        _Server(_config(dash, s.host, s.dashboard_port)),
                        bind(s.host, s.dashboard_port, "dashboard"),
                    )
                )
                log.info(
                    "dashboard listening",
                    extra={
                        "host": s.host,
                        "port": s.dashboard_port,
                        "url": f"http://{s.host}:{s.dashboard_port}/quarantine",
                    },
                )
            # The event loop uvicorn.run would use (uvloop when installed).
            factory = servers[0][0].config.get_loop_factory()
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(serve_all(servers))
        finally:
            for _, sock in servers:
                sock.close()
    finally:
        database.close()
