"""Log output for the server entry point: JSON lines on stderr.

The library only uses named loggers (``stemedb.*``); only entry points call
``configure``. Fields are fixed names; secrets and bodies are never logged.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return orjson.dumps(out, default=str).decode()


class OnceFilter(logging.Filter):
    """Lets each of uvicorn's process-wide start-up and shut-down lines through once:
    the API and the dashboard are two uvicorn servers in one process, and each would
    announce the same process and the same application start."""

    ONCE = ("Started server process", "Waiting for application startup",
            "Application startup complete", "Waiting for application shutdown",
            "Application shutdown complete", "Finished server process")

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        key = next((k for k in self.ONCE if msg.startswith(k)), None)
        if key is None:
            return True
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    error = logging.getLogger("uvicorn.error")
    error.filters[:] = [f for f in error.filters if not isinstance(f, OnceFilter)]
    error.addFilter(OnceFilter())
    logging.getLogger("uvicorn.access").disabled = True
