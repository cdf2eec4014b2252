"""One node's connection to the Redis that shares its guards, and whether it is usable.

While Redis answers, ``shared`` is true and the guards ask it. The first error (refused,
timed out, any Redis error) turns ``shared`` off: the guards decide with this node's
in-process limiters and breakers, one warning is logged and ``fallbacks`` counts it. A
background thread then probes Redis at most once per ``probe_seconds``; when a probe
succeeds (scripts loaded, the recovery hooks run) ``shared`` is on again and one line
says so. Requests never wait for a probe, and never fail because of Redis.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

__all__ = ["RedisLink", "redacted"]

log = logging.getLogger("stemedb.guards")

# A guard check is on every request's path: an unreachable Redis must cost one short
# wait, once, not a request's worth of latency.
DEFAULT_TIMEOUT = 0.1
DEFAULT_PROBE_SECONDS = 1.0


def redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisLink:
    """A Redis client with short timeouts, and the shared/fallback switch."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 probe_seconds: float = DEFAULT_PROBE_SECONDS) -> None:
        self.url = url
        self.probe_seconds = probe_seconds
        # One immediate retry on a broken connection (a pooled socket that Redis closed
        # while restarting); none on a timeout, which would only double the wait.
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            client_name="stemedb-guards")
        self.shared = True
        self.fallbacks = 0
        #: Run by the probe before sharing again; raising a RedisError keeps the fallback.
        self.on_recover: list[Callable[[], None]] = []
        self._scripts: list[Script] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._prober: threading.Thread | None = None
        self._workers: list[threading.Thread] = []  # spawned for callers; joined by close
        log.info("guards shared through Redis", extra={"redis": redacted(url)})

    def script(self, source: str) -> Script:
        """Register a Lua script once; calls go by EVALSHA."""
        s = self.client.register_script(source)
        self._scripts.append(s)
        return s

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's answer, or None when Redis failed (and the node falls back)."""
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as e:
            self.lost(e)
            return None

    def call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` (plain Redis commands), or None when Redis failed."""
        try:
            return fn()
        except redis.RedisError as e:
            self.lost(e)
            return None

    def lost(self, error: BaseException) -> None:
        """Redis failed: fall back to the in-process guards until a probe succeeds."""
        with self._lock:
            if not self.shared or self._closed.is_set():
                return
            self.shared = False
            self.fallbacks += 1
            self._prober = threading.Thread(target=self._probe, name="stemedb-guards-probe",
                                            daemon=True)
            self._prober.start()
        log.warning("Redis unreachable: guards fall back to this node's in-process limits "
                    "and breakers until it answers again",
                    extra={"redis": redacted(self.url),
                           "error": f"{type(error).__name__}: {error}"})

    def spawn(self, target: Callable[[], None], name: str) -> None:
        """Runs ``target`` on a thread of its own that ``close`` waits for before it closes
        the client, so no Redis call is cut off mid-read by the shutdown."""
        with self._lock:
            if self._closed.is_set():
                return
            self._workers = [t for t in self._workers if t.is_alive()]
            worker = threading.Thread(target=target, name=name, daemon=True)
            self._workers.append(worker)
            worker.start()

    def _probe(self) -> None:
        while not self._closed.wait(self.probe_seconds):
            try:
                self.client.ping()
                for s in self._scripts:  # a restarted Redis has lost them
                    s.sha = self.client.script_load(s.script)
                for hook in self.on_recover:
                    hook()
            except redis.RedisError:
                continue
            with self._lock:
                self.shared = True
                self._prober = None
            log.info("Redis reachable again: guards are shared again",
                     extra={"redis": redacted(self.url)})
            return

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            waiting = [t for t in (self._prober, *self._workers) if t is not None]
        for thread in waiting:
            thread.join(timeout=5)
        self.client.close()
