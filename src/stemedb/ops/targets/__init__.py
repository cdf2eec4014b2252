"""Targets: where backups and archived WAL go (the interface in ``base``, one module per
implementation)."""

from __future__ import annotations

from pathlib import Path

from ...errors import TargetError
from .base import ObjectInfo, Target
from .local import LocalTarget
from .s3 import S3Target

__all__ = ["LocalTarget", "ObjectInfo", "S3Target", "Target", "open_target"]


def open_target(url: str, endpoint_url: str | None = None) -> Target:
    """``s3://bucket/prefix`` or a directory path (``file://`` allowed)."""
    if url.startswith("s3://"):
        return S3Target(url, endpoint_url)
    if "://" in url and not url.startswith("file://"):
        raise TargetError(f"unsupported target {url!r}: use a directory or s3://bucket/prefix")
    return LocalTarget(Path(url.removeprefix("file://")).expanduser().absolute())
