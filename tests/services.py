"""Real PostgreSQL and Redis servers for the tests, started from the installed binaries.

No mocks and no containers: each test session (each xdist worker) starts one
``redis-server`` and one PostgreSQL cluster (``initdb`` + ``postgres``) on spare loopback
ports, in temporary directories, and stops them at the end. Tests may stop, kill and
restart them mid-test (a Redis killed under load, PostgreSQL restarted fast or
immediate); the function-scoped fixtures start them again for the next test.

Fixtures (a pytest plugin, registered in ``tests/conftest.py``):

- ``redis_server`` (session): a :class:`RedisServer`; ``.url`` is
  ``redis://127.0.0.1:PORT/0``; ``.stop()``, ``.kill()``, ``.start()``, ``.restart()``.
- ``redis_url`` (function): the URL of that server, running and emptied (``FLUSHALL``).
- ``postgres_server`` (session): a :class:`PostgresServer`; ``.url`` is
  ``postgresql://stemedb@127.0.0.1:PORT/stemedb`` (trust auth, superuser);
  ``.stop(mode)`` with mode ``smart``, ``fast`` or ``immediate``, ``.kill()`` (SIGKILL to
  every process of the cluster), ``.start()``, ``.restart(mode)``,
  ``.create_database()`` / ``.drop_database(name)``.
- ``postgres_url`` (function): a fresh empty database on that server, dropped after.

Binaries: ``redis-server`` on PATH; PostgreSQL's server binaries from
``STEMEDB_PG_BINDIR``, else the newest ``/usr/lib/postgresql/<version>/bin`` (Debian keeps
them off PATH), else ``pg_config --bindir``, else PATH. ``scripts/system-deps.sh``
installs Debian's ``redis-server`` and ``postgresql``. Without them the tests that use
these fixtures skip locally and fail in CI (``CI=true``).

PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user
(created by Debian's package), else ``nobody``, and owns its temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, require

PG_USER = "stemedb"  # the cluster's superuser, trusted from 127.0.0.1
PG_DATABASE = "stemedb"
# SIGTERM waits for clients to leave; SIGINT aborts them; SIGQUIT exits without a
# checkpoint, so the next start runs crash recovery.
PG_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
                   "immediate": signal.SIGQUIT}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


# -- tools ----------------------------------------------------------------------------


def redis_server_bin() -> str | None:
    return shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/sbin")


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def postgres_bindir() -> str | None:
    """The directory holding ``initdb`` and ``postgres``, or None."""
    candidates = [os.environ.get("STEMEDB_PG_BINDIR", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True,
                                             text=True, timeout=10).stdout.strip())
    postgres = shutil.which("postgres")
    if postgres:
        candidates.append(str(Path(postgres).parent))
    for d in candidates:
        if d and os.access(Path(d) / "postgres", os.X_OK) and os.access(Path(d) / "initdb",
                                                                        os.X_OK):
            return d
    return None


HOW_REDIS = "scripts/system-deps.sh installs Debian's redis-server"
HOW_POSTGRES = "scripts/system-deps.sh installs Debian's postgresql (/usr/lib/postgresql/*/bin)"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_gone(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Each server leads its own session: the whole group goes, children included.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(STOP_TIMEOUT)


class _Server:
    """A server process in its own session, stopped by a signal or killed with its
    children."""

    proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_stop(self, sig: signal.Signals) -> None:
        """Send ``sig`` and wait for the exit; SIGKILL if it takes too long."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            if not _wait_gone(self.proc, STOP_TIMEOUT):
                _kill_group(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL to the server and its children: a crashed node, connections break."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _kill_group(self.proc)
        self.proc = None


# -- Redis ----------------------------------------------------------------------------


class RedisServer(_Server):
    """One ``redis-server`` on a loopback port, without persistence (a restart empties
    it, as a replaced cache node would be)."""

    def __init__(self, binary: str, base: Path) -> None:
        self.binary = binary
        self.base = base
        self.port = free_port()
        self.log_path = base / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        if self.running:
            return self
        conf = self.base / "redis.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
            f'dir {self.base}\nsave ""\nappendonly no\nlogfile ""\n'
        )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, str(conf)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1,
                             socket_connect_timeout=1)
        try:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n"
                                       f"{_tail(self.log_path)}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not ready after {timeout} s:\n"
                                       f"{_tail(self.log_path)}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM)."""
        self._signal_stop(signal.SIGTERM)

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def flush(self) -> None:
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5) as client:
            client.flushall()


# -- PostgreSQL -----------------------------------------------------------------------


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster: ``initdb`` into a temporary directory, then
    ``postgres`` on a loopback port with durable commits (``fsync`` and
    ``synchronous_commit`` on), so that crash tests mean what they say."""

    def __init__(self, bindir: str, base: Path, *, settings: dict[str, str] | None = None
                 ) -> None:
        self.bindir = Path(bindir)
        self.base = base
        self.data = base / "data"
        self.sockets = base / "sockets"
        self.log_path = base / "postgres.log"
        self.port = free_port()
        self.settings = {"fsync": "on", "synchronous_commit": "on", "max_connections": "200",
                         **(settings or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._owner = _unprivileged()

    @property
    def url(self) -> str:
        return self.url_for(PG_DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        kwargs: dict[str, Any] = {}
        if self._owner is not None:
            kwargs.update(user=self._owner[0], group=self._owner[1], extra_groups=[])
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.base, **kwargs)

    def init(self) -> None:
        """``initdb`` the cluster (once), owned by the unprivileged user when root."""
        self.sockets.mkdir(exist_ok=True)
        if self._owner is not None:
            for p in (self.base, self.sockets):
                os.chown(p, *self._owner)
        # --no-sync only skips initdb's own flush of the fresh files: the server itself
        # runs with fsync on.
        proc = self._spawn([str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER,
                            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        if proc.wait(120) != 0:
            raise RuntimeError(f"initdb failed ({proc.returncode}):\n{_tail(self.log_path)}")

    def start(self, timeout: float = START_TIMEOUT) -> PostgresServer:
        if self.running:
            return self
        if not (self.data / "PG_VERSION").exists():
            self.init()
            first = True
        else:
            first = False
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.sockets),
                "-p", str(self.port), "-h", "127.0.0.1"]
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        self.proc = self._spawn(argv)
        self._wait_ready(timeout)
        if first:
            self.execute(f'CREATE DATABASE "{PG_DATABASE}"', database="postgres")
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n"
                                   f"{_tail(self.log_path)}")
            try:
                with psycopg.connect(self.url_for("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:  # refused, or still starting / recovering
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after {timeout} s:\n"
                                   f"{_tail(self.log_path)}")
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Shut down: ``smart`` (wait for clients), ``fast`` (abort them, checkpoint) or
        ``immediate`` (no checkpoint: the next start recovers from the WAL)."""
        self._signal_stop(PG_STOP_SIGNALS[mode])

    def restart(self, mode: str = "fast") -> PostgresServer:
        self.stop(mode)
        return self.start()

    def execute(self, sql: str, *, database: str = PG_DATABASE) -> None:
        import psycopg

        with psycopg.connect(self.url_for(database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self.execute(f'CREATE DATABASE "{name}"', database="postgres")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")


# -- fixtures -------------------------------------------------------------------------


def _tempdir(prefix: str) -> Path:
    # Not under pytest's basetemp: that is private to the current user, and PostgreSQL
    # runs as another one.
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = require("redis-server", redis_server_bin(), HOW_REDIS)
    base = _tempdir("stemedb-redis-")
    server = RedisServer(binary, base)
    try:
        yield server.start()
    finally:
        server.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A running, empty Redis (started again if an earlier test left it stopped)."""
    redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = require("PostgreSQL (initdb, postgres)", postgres_bindir(), HOW_POSTGRES)
    base = _tempdir("stemedb-pg-")
    server = PostgresServer(bindir, base)
    try:
        yield server.start()
    finally:
        server.stop("fast")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database on the running server (started again if an earlier test
    left it stopped), dropped after the test."""
    postgres_server.start()
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):  # a test may leave the server stopped
            postgres_server.start()
            postgres_server.drop_database(url.rsplit("/", 1)[1])
