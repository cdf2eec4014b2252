"""Where backups and archived WAL go: a local directory or ``s3://bucket/prefix``.

A target is a flat key space (``backups/<id>/manifest.json``, ``wal/<segment>``). Every
write is all-or-nothing, so an interrupted upload never leaves an object that looks
complete:

- directory: the bytes go to ``<key>.partial``, which is fsynced, read back and
  checked, then renamed over ``<key>`` and the directory fsynced. Listings ignore
  ``*.partial`` files.
- S3 (boto3, any S3-compatible endpoint): a PUT or a completed multipart upload is
  atomic; an interrupted multipart upload creates no object. Each object carries its
  SHA-256 in the ``sha256`` user metadata (and a ``ChecksumSHA256`` the store checks
  on receipt); after every upload a HEAD checks size and recorded digest.

The S3 endpoint comes from ``endpoint_url`` (the ``--s3-endpoint-url`` flag), else the
usual AWS configuration (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, profiles);
credentials always come from the AWS chain (environment, ``~/.aws``, instance role).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from ..errors import StemeError

PARTIAL = ".partial"
CHUNK = 1 << 20
Tick = Callable[[int], None]  # called with a number of bytes just transferred


class OpsError(StemeError):
    """A backup, archive, restore or drill could not be done; ``detail`` says why."""

    type = "ops-error"
    title = "Operation failed"
    hint = "see docs/operations/backup-dr.md"


class TargetError(OpsError):
    """The target (directory or S3 bucket) could not be read or written."""

    type = "target-error"
    title = "Backup target error"
    hint = "check the target URL, the credentials (AWS_* environment) and the endpoint URL"


class MissingObject(TargetError):
    def __init__(self, url: str) -> None:
        super().__init__(f"{url}: missing")
        self.url = url


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the target's root
    size: int
    sha256: str | None = None  # as recorded at upload, when the listing carries it


def sha256_file(path: Path, tick: Tick | None = None) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if tick is not None:
                tick(len(chunk))
    return h.hexdigest(), size


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or its old content, never a mix (tmp + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PARTIAL)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def progress_bar(enabled: bool, *, bytes_: bool = True) -> Progress:
    """The one progress-bar style of the ops commands (off when not wanted or no TTY)."""
    columns: list[Any] = [TextColumn("[progress.description]{task.description}"), BarColumn()]
    columns.append(DownloadColumn() if bytes_ else TaskProgressColumn())
    columns.append(TimeRemainingColumn())
    return Progress(*columns, disable=not enabled, transient=True, console=Console(stderr=True))


class Target(ABC):
    """A place holding backups and archived segments, addressed by relative keys."""

    url: str

    def describe(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    @abstractmethod
    def put_file(self, key: str, path: Path, sha256: str, tick: Tick | None = None) -> None:
        """Uploads ``path`` (whose digest is ``sha256``) to ``key`` atomically, then checks
        what was stored; raises TargetError when the stored object does not match."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Writes a small object atomically."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Reads a whole object; MissingObject when absent."""

    @abstractmethod
    def download(self, key: str, dest: Path, tick: Tick | None = None) -> tuple[str, int]:
        """Copies ``key`` to ``dest``; returns (sha256, size) of the bytes written."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size (and recorded sha256, if any) of ``key``, or None when absent."""

    @abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every complete object whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Removes ``key`` if present."""

    def cleanup_partial(self, prefix: str, older_than_s: float) -> int:
        """Removes leftovers of interrupted uploads under ``prefix`` older than the age
        given; returns how many. Never touches complete objects."""
        return 0


class LocalTarget(Target):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise TargetError(f"bad key {key!r}")
        return self.root / key

    def describe(self, key: str) -> str:
        return str(self.path(key))

    def put_file(self, key: str, path: Path, sha256: str, tick: Tick | None = None) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + PARTIAL)
        try:
            with open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    if tick is not None:
                        tick(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            written, _ = sha256_file(tmp)
            if written != sha256:
                raise TargetError(
                    f"{dest}: copy does not match its source (sha256 {written}, "
                    f"expected {sha256}); the source changed or the disk is bad"
                )
            os.replace(tmp, dest)
            fsync_path(dest.parent)
        except OSError as e:
            raise TargetError(f"cannot write {dest}: {e}") from e

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            write_file_atomic(self.path(key), data)
        except OSError as e:
            raise TargetError(f"cannot write {self.path(key)}: {e}") from e

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise MissingObject(self.describe(key)) from None
        except OSError as e:
            raise TargetError(f"cannot read {self.path(key)}: {e}") from e

    def download(self, key: str, dest: Path, tick: Tick | None = None) -> tuple[str, int]:
        src = self.path(key)
        h = hashlib.sha256()
        size = 0
        try:
            with open(src, "rb") as f, open(dest, "wb") as out:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if tick is not None:
                        tick(len(chunk))
        except FileNotFoundError:
            raise MissingObject(self.describe(key)) from None
        except OSError as e:
            raise TargetError(f"cannot copy {src} to {dest}: {e}") from e
        return h.hexdigest(), size

    def head(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, self.path(key).stat().st_size)
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.path(prefix) if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return []
        out = []
        for dirpath, _, names in os.walk(start):
            for name in names:
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not name.endswith(PARTIAL):
                    try:
                        out.append(ObjectInfo(key, full.stat().st_size))
                    except FileNotFoundError:
                        continue
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def cleanup_partial(self, prefix: str, older_than_s: float) -> int:
        base = self.path(prefix) if prefix else self.root
        start = base if base.is_dir() else base.parent
        removed = 0
        cutoff = time.time() - older_than_s
        for p in start.rglob("*" + PARTIAL) if start.is_dir() else ():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class S3Target(Target):
    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise TargetError(f"{url}: expected s3://bucket/prefix")
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(
            retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=120
        )
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, config=config)
        self.transfer = TransferConfig(
            multipart_threshold=64 * 1024 * 1024,
            multipart_chunksize=16 * 1024 * 1024,
            max_concurrency=4,
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise MissingObject(self.describe(what)) from None
            raise TargetError(f"{self.describe(what)}: {e}") from e
        except BotoCoreError as e:
            raise TargetError(f"{self.describe(what)}: {e}") from e

    def put_file(self, key: str, path: Path, sha256: str, tick: Tick | None = None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        size = path.stat().st_size
        try:
            if size < self.transfer.multipart_threshold:
                # One PUT; the store checks the whole object's SHA-256 on receipt.
                with open(path, "rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self._key(key),
                        Body=body,
                        Metadata={"sha256": sha256},
                        ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                    )
                if tick is not None:
                    tick(size)
            else:
                # Multipart: each part's SHA-256 is checked on receipt; no object exists
                # until the upload completes.
                extra = {"Metadata": {"sha256": sha256}, "ChecksumAlgorithm": "SHA256"}
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    self._key(key),
                    ExtraArgs=extra,
                    Config=self.transfer,
                    Callback=tick,
                )
        except (ClientError, BotoCoreError, OSError) as e:
            raise TargetError(f"upload of {path} to {self.describe(key)} failed: {e}") from e
        self._check(key, size, sha256)

    def put_bytes(self, key: str, data: bytes) -> None:
        digest = hashlib.sha256(data).digest()
        self._call(
            key,
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            Metadata={"sha256": digest.hex()},
            ChecksumSHA256=base64.b64encode(digest).decode(),
        )
        self._check(key, len(data), digest.hex())

    def _check(self, key: str, size: int, sha256: str) -> None:
        info = self.head(key)
        if info is None or info.size != size or info.sha256 != sha256:
            got = "nothing" if info is None else f"{info.size} bytes, sha256 {info.sha256}"
            raise TargetError(
                f"{self.describe(key)}: after upload the store holds {got}; "
                f"expected {size} bytes, sha256 {sha256}"
            )

    def get_bytes(self, key: str) -> bytes:
        resp = self._call(key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        data: bytes = resp["Body"].read()
        return data

    def download(self, key: str, dest: Path, tick: Tick | None = None) -> tuple[str, int]:
        """One streamed GET, hashed on the way to ``dest``."""
        from botocore.exceptions import BotoCoreError

        resp = self._call(key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        h = hashlib.sha256()
        size = 0
        try:
            with open(dest, "wb") as out:
                for chunk in resp["Body"].iter_chunks(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if tick is not None:
                        tick(len(chunk))
        except BotoCoreError as e:
            raise TargetError(f"download of {self.describe(key)} failed: {e}") from e
        return h.hexdigest(), size

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self._call(key, self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except MissingObject:
            return None
        meta = resp.get("Metadata") or {}
        return ObjectInfo(key, int(resp["ContentLength"]), meta.get("sha256"))

    def list(self, prefix: str) -> list[ObjectInfo]:
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        full = self._key(prefix)
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    out.append(ObjectInfo(obj["Key"][len(self.prefix) :], int(obj["Size"])))
        except Exception as e:  # botocore errors; a listing failure is a target failure
            raise TargetError(f"cannot list {self.describe(prefix)}: {e}") from e
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        self._call(key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def cleanup_partial(self, prefix: str, older_than_s: float) -> int:
        """Aborts multipart uploads under ``prefix`` started more than the age given ago
        (a killed upload's parts; they never became an object)."""
        resp = self._call(
            prefix, self.client.list_multipart_uploads, Bucket=self.bucket, Prefix=self._key(prefix)
        )
        removed = 0
        cutoff = time.time() - older_than_s
        for upload in resp.get("Uploads", []) or []:
            if upload["Initiated"].timestamp() < cutoff:
                self._call(
                    upload["Key"],
                    self.client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
                removed += 1
        return removed


def open_target(url: str, endpoint_url: str | None = None) -> Target:
    """``s3://bucket/prefix`` or a directory path (``file://`` allowed)."""
    if url.startswith("s3://"):
        return S3Target(url, endpoint_url)
    if "://" in url and not url.startswith("file://"):
        raise TargetError(f"unsupported target {url!r}: use a directory or s3://bucket/prefix")
    return LocalTarget(Path(url.removeprefix("file://")).expanduser().absolute())


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
