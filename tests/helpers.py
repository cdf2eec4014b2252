"""Test helpers: a real server process, signed bodies, free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey

ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    """Under CI (``CI=true``) a missing tool fails its tests instead of skipping them."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(name: str, path: str | None, how: str) -> str:
    """``path``, or skip (fail in CI) saying how to get ``name``."""
    if path:
        return path
    if in_ci():
        pytest.fail(f"{name} is missing in CI: {how}", pytrace=False)
    pytest.skip(f"{name} is not installed: {how}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now_rfc3339(delta_s: float = 0) -> str:
    t = datetime.now(UTC) + timedelta(seconds=delta_s)
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


_counter = iter(range(10**12))


def assertion_body(key: AgentKey, **fields: Any) -> bytes:
    body: dict[str, Any] = {
        "subject": "paris",
        "predicate": "capital_of",
        "object": "france",
        "confidence": 0.9,
        "evidence": ["https://example.org/atlas#p12"],
        "agent_id": key.agent_id,
        "timestamp": now_rfc3339(),
        "nonce": f"n{os.getpid()}-{next(_counter):08d}-{time.monotonic_ns() % 10**6}",
    }
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def signed_headers(key: AgentKey, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Agent-Signature": key.sign_b64(body)}


class ServerProcess:
    """``stemedb serve`` in a child process on a free port, with its own data dir."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # Generous limits so tests that are not about limits never trip them; tests of
        # the limits pass their own values in ``env``.
        self.env = {**os.environ, "STEMEDB_LOG_LEVEL": "WARNING",
                    "STEMEDB_RATE_LIMIT_QUERY_RATE": "5000",
                    "STEMEDB_RATE_LIMIT_QUERY_BURST": "10000",
                    "STEMEDB_RATE_LIMIT_ASSERT_RATE": "2000",
                    "STEMEDB_RATE_LIMIT_ASSERT_BURST": "4000", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stemedb", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--dashboard-port", "0"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def sh_blocks(markdown: Path) -> list[str]:
    """The ```sh blocks of a document, in order (runbooks are tested by running them)."""
    import re

    return re.findall(r"```sh\n(.*?)```", markdown.read_text(), re.S)


def run_sh(script: str, *, port: int, env: dict[str, str], cwd: Path) -> str:
    """Run a documented shell block against a test server; returns stdout, fails loudly."""
    script = script.replace("localhost:18180", f"localhost:{port}")
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"block failed ({out.returncode}):\n{script}\n--- stderr:\n{out.stderr}")
    return out.stdout


def journaled_entries(journal_dir: Path, payloads: list[dict[str, Any]]) -> list[Any]:
    """``payloads`` (journal records as dicts) appended to a real journal at
    ``journal_dir``, as index entries: each with its chain hash and frame offset, so an
    index built from them reads their signed bodies back from that journal."""
    from stemedb.index import entries_from
    from stemedb.journal import Journal

    with Journal(journal_dir) as j:
        return list(entries_from(j.append([orjson.dumps(p) for p in payloads])))
