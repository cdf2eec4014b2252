"""kill -9 the server while 32 writers are running; every acknowledged write survives.

STEMEDB_SOAK_CYCLES raises the cycle count (``make soak``)."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.crash

CYCLES = int(os.environ.get("STEMEDB_SOAK_CYCLES", "20"))
WRITERS = 32


def _writer(url: str, key: AgentKey, stop: threading.Event, acked: dict[str, bytes],
            lock: threading.Lock, n: int) -> None:
    with httpx.Client(timeout=5.0) as c:
        i = 0
        while not stop.is_set():
            i += 1
            body = assertion_body(key, subject=f"crash-{n}", object={"i": i, "w": n})
            try:
                r = c.post(url, content=body, headers=signed_headers(key, body))
            except httpx.HTTPError:
                return  # the server is gone
            if r.status_code in (200, 201):
                with lock:
                    acked[r.json()["id"]] = body


# A cycle takes 1-2 s (start-up, writes, kill, joins): the suite's default timeout fits
# the 20 of ``make test``; ``make soak``'s 200 get time in proportion.
@pytest.mark.timeout(max(300, 4 * CYCLES))
def test_every_acknowledged_write_survives_kill9(tmp_path: Path) -> None:
    rng = random.Random(1234)
    srv = ServerProcess(tmp_path / "data")
    keys = [AgentKey.generate() for _ in range(WRITERS)]
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    try:
        for _cycle in range(CYCLES):
            srv.start()
            stop = threading.Event()
            threads = [threading.Thread(target=_writer, args=(srv.url + "/v1/assert", keys[n],
                                                               stop, acked, lock, n))
                       for n in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 0.8))
            srv.kill9()
            stop.set()
            for t in threads:
                t.join(10)
        srv.start()
        assert acked, "no write was acknowledged"
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for aid, body in acked.items():
                r = c.get(f"/v1/assertions/{aid}")
                assert r.status_code == 200, f"acknowledged write {aid} lost"
                assert r.json()["body"].encode() == body
        verify = __import__("subprocess").run(
            [__import__("sys").executable, "-m", "stemedb", "verify", "--data-dir",
             str(srv.data_dir), "--json"], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        srv.stop()
