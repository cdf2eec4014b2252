"""The ceiling: a trivial FastAPI handler on the same uvicorn stack as ``stemedb serve``.

``POST /ceiling`` reads the body and answers a small JSON with 201 - what the HTTP stack
alone costs. It is served the way ``stemedb.server.run`` serves the API: the server
module's own uvicorn config, socket binding and serve loop (``_config``, ``bind``,
``serve_all``), so loop, protocol and options follow any change there, and the ratio
``ingest_single.rate / ingest_single.ceiling_rate`` is the share of the stack's capacity
that StemeDB keeps while doing its own work (verify, checks, journal, fsync, index).

The server's event loop is read from ``stemedb.server.run`` (``server_loop``): today it
runs ``serve_all`` in an ``asyncio.Runner`` with uvicorn's loop factory (uvloop).

Run: ``python -m bench.ceiling_app --port P [--loop server|uvloop|asyncio]``; ``--loop``
other than ``server`` is for experiments (e.g. what uvloop would change).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import logging
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI(title="ceiling", docs_url=None, redoc_url=None, openapi_url=None)
_lsn = 0


@app.post("/ceiling", status_code=201)
async def ceiling(request: Request) -> Response:
    global _lsn
    body = await request.body()
    _lsn += 1
    answer = {"id": hashlib.sha256(body).hexdigest(), "status": "accepted", "lsn": _lsn}
    return Response(orjson.dumps(answer), status_code=201, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def serve_like_server(asgi: Any, host: str, port: int, loop: str) -> None:
    """Serve ``asgi`` as stemedb.server.run serves the API (or, failing that, as uvicorn's
    own ``Server.run`` would, with the options the server used to pass)."""
    try:
        from stemedb.server import _config, _Server, bind, serve_all
    except ImportError:
        logging.warning("stemedb.server has no _config/_Server/bind/serve_all; "
                        "using uvicorn.Server.run with the server's former options")
        config = uvicorn.Config(asgi, host=host, port=port, log_config=None, access_log=False,
                                server_header=False, lifespan="on",
                                timeout_graceful_shutdown=10)
        uvicorn.Server(config).run()
        return
    server: Any = _Server(_config(asgi, host, port))
    sock = bind(host, port, "ceiling")
    try:
        coro = serve_all([(server, sock)])
        chosen = server_loop() if loop == "server" else loop
        if chosen == "config":  # what stemedb.server.run does today
            with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
                runner.run(coro)
        elif chosen == "uvloop":
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    finally:
        sock.close()


def server_loop() -> str:
    """How stemedb.server.run picks its event loop, read from its code: "config" when it
    uses uvicorn's loop factory (``config.get_loop_factory()``: uvloop when installed),
    "uvloop" when it names uvloop itself, else "asyncio" (``asyncio.run``)."""
    import stemedb.server

    source = inspect.getsource(stemedb.server.run)
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())  # no comments
    if "get_loop_factory" in code:
        return "config"
    if "uvloop" in code:
        return "uvloop"
    return "asyncio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("server", "uvloop", "asyncio"), default="server")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    serve_like_server(app, args.host, args.port, args.loop)


if __name__ == "__main__":
    main()
