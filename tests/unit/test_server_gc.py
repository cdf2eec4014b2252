"""The server tunes the garbage collector when it starts serving (``serve_all``): what
is alive then is frozen and young collections are rarer. Checked in a child process, so
this test session's collector stays as it is."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

CHILD = r"""
import asyncio, gc, json, socket
from stemedb import server

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return

before = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
srv = server._Server(server._config(app, "127.0.0.1", 0))
sock = server.bind("127.0.0.1", 0, "test")

async def main():
    task = asyncio.create_task(server.serve_all([(srv, sock)]))
    while not srv.started:
        await asyncio.sleep(0.01)
    seen = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    srv.should_exit = True
    await task
    return seen

print(json.dumps({"before": before, "serving": asyncio.run(main())}))
"""


def test_serving_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import orjson

    got = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"]["threshold"] == [700, 10, 10] and got["before"]["frozen"] == 0
    from stemedb.server import GC_THRESHOLDS

    assert tuple(got["serving"]["threshold"]) == GC_THRESHOLDS
    assert got["serving"]["frozen"] > 10_000  # modules, apps, settings: never walked again
