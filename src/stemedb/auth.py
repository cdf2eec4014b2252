"""The admin token: from settings, else generated once into <data_dir>/admin.token (0600)."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from .settings import Settings

log = logging.getLogger("stemedb.auth")

TOKEN_FILE = "admin.token"


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE


def read_token_file(data_dir: Path) -> str | None:
    p = token_path(data_dir)
    try:
        token = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def admin_token(settings: Settings) -> str:
    """The configured token, else the one in the data directory, else a new one."""
    if settings.admin.token:
        return settings.admin.token
    existing = read_token_file(settings.data_dir)
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    path = token_path(settings.data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    log.warning("generated an admin token", extra={"token_file": str(path)})
    return token


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a presented bearer token."""
    if not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None
