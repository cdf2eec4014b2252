"""The naive peer: the service a user would write instead of running StemeDB.

FastAPI + PyNaCl + SQLite, written the plain way: ``POST /v1/assert`` takes the same
signed body and ``X-Agent-Signature`` header as StemeDB, verifies the Ed25519 signature,
checks the fields, and inserts one row in SQLite (WAL, ``synchronous=FULL``), one
durable commit per request, answering ``201 {"id", "status", "lsn"}`` (``200`` with the
stored row for a body it already has). The handler is ``async`` and commits on the event
loop with one connection, as the short version of such a service does: each request's
commit (and its fsync) runs while the others wait.

It has none of StemeDB's journal, hash chain, replay window, content defense, guards,
metrics or index: ``ingest_single.naive_ratio`` (StemeDB ÷ this, same bodies, same wrk
run length and connections) is what those cost against the obvious alternative.

It is served exactly as the ceiling is (``ceiling_app.serve_like_server``: the server
module's uvicorn config, socket and loop), so the comparison is of the handlers alone.

Run: ``python -m bench.naive_peer --port P --db PATH``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import sqlite3
import time
from typing import Any

import orjson
from fastapi import FastAPI, Header, Request
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from starlette.responses import Response

from .ceiling_app import serve_like_server

SCHEMA = """
CREATE TABLE IF NOT EXISTS assertions (
    lsn         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    agent_id    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    predicate   TEXT NOT NULL,
    object      TEXT NOT NULL,
    confidence  REAL NOT NULL,
    context     TEXT,
    recorded_at REAL NOT NULL,
    body        BLOB NOT NULL,
    signature   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assertions_subject ON assertions (subject, predicate);
"""

app = FastAPI(title="naive peer", docs_url=None, redoc_url=None, openapi_url=None)
_db: list[sqlite3.Connection] = []


def _conn() -> sqlite3.Connection:
    if not _db:
        raise RuntimeError("the database is not open")
    return _db[0]


def open_db(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    _db[:] = [conn]


def _problem(status: int, title: str, detail: str) -> Response:
    return Response(orjson.dumps({"type": "about:blank", "title": title, "status": status,
                                  "detail": detail}),
                    status_code=status, media_type="application/problem+json")


@app.post("/v1/assert", status_code=201)
async def assert_one(request: Request,
                     x_agent_signature: str | None = Header(default=None)) -> Response:
    raw = await request.body()
    try:
        sig = base64.b64decode(x_agent_signature or "", validate=True)
        doc: dict[str, Any] = orjson.loads(raw)
        agent = bytes.fromhex(doc["agent_id"])
        VerifyKey(agent).verify(raw, sig)
        subject, predicate = str(doc["subject"]), str(doc["predicate"])
        confidence = float(doc["confidence"])
        if not (subject and predicate and 0.0 <= confidence <= 1.0):
            return _problem(422, "Unprocessable Content", "bad subject, predicate or confidence")
    except (binascii.Error, ValueError, KeyError, TypeError, BadSignatureError):
        return _problem(400, "Bad Request", "bad body or signature")
    aid = hashlib.sha256(raw).hexdigest()
    conn = _conn()
    try:
        cur = conn.execute(
            "INSERT INTO assertions (id, agent_id, subject, predicate, object, confidence,"
            " context, recorded_at, body, signature) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (aid, doc["agent_id"], subject, predicate, orjson.dumps(doc["object"]).decode(),
             confidence, doc.get("context"), time.time(), raw, x_agent_signature))
        lsn, status = cur.lastrowid, 201
    except sqlite3.IntegrityError:
        row = conn.execute("SELECT lsn FROM assertions WHERE id = ?", (aid,)).fetchone()
        lsn, status = row[0], 200
    return Response(orjson.dumps({"id": aid, "status": "accepted", "lsn": lsn}),
                    status_code=status, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    args = p.parse_args()
    open_db(args.db)
    serve_like_server(app, args.host, args.port, "server")


if __name__ == "__main__":
    main()
