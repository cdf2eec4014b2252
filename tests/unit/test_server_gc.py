"""The server tunes the garbage collector and the GIL's switch interval when it starts
serving (``serve_all``): what is alive then is frozen, young collections are rarer, and a
thread waiting for the GIL gets it sooner. Checked in a child process, so this test
session's collector and interval stay as they are."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

CHILD = r"""
import asyncio, gc, json, socket, sys
from stemedb import server

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return

before = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
          "switch": sys.getswitchinterval()}
srv = server._Server(server._config(app, "127.0.0.1", 0))
sock = server.bind("127.0.0.1", 0, "test")

async def main():
    task = asyncio.create_task(server.serve_all([(srv, sock)]))
    while not srv.started:
        await asyncio.sleep(0.01)
    seen = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
            "switch": sys.getswitchinterval()}
    srv.should_exit = True
    await task
    return seen

print(json.dumps({"before": before, "serving": asyncio.run(main())}))
"""


def _serving() -> dict[str, dict[str, object]]:
    """The collector and switch interval in a child before and while it serves."""
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import orjson

    got: dict[str, dict[str, object]] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return got


def test_serving_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    from stemedb.server import GC_THRESHOLDS

    got = _serving()
    assert got["before"]["threshold"] == [700, 10, 10] and got["before"]["frozen"] == 0
    assert tuple(got["serving"]["threshold"]) == GC_THRESHOLDS  # type: ignore[arg-type]
    assert got["serving"]["frozen"] > 10_000  # type: ignore[operator]  # never walked again


def test_serving_shortens_the_switch_interval() -> None:
    from stemedb.server import SWITCH_INTERVAL

    got = _serving()
    assert got["before"]["switch"] == 0.005
    assert got["serving"]["switch"] == SWITCH_INTERVAL < 0.005
