"""The ceiling: a trivial FastAPI handler on the same uvicorn stack as ``stemedb serve``.

``POST /ceiling`` reads the body and answers a small JSON with 201 - what the HTTP stack
alone costs. The uvicorn options are those of ``stemedb.server.run``, so the ratio
``ingest_single.rate / ingest_single.ceiling_rate`` is the share of the stack's capacity
that StemeDB keeps while doing its own work (verify, journal, fsync, index).

Run: ``python -m bench.ceiling_app --port P``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # The same options as stemedb.server.run (loop and http protocol left to uvicorn's
    # "auto": uvloop and httptools when installed, as for the server).
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None,
                            access_log=False, server_header=False, lifespan="on",
                            timeout_graceful_shutdown=10)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
