"""An S3 target (boto3, any S3-compatible endpoint).

A PUT or a completed multipart upload is atomic; an interrupted multipart upload creates
no object. Each object carries its SHA-256 in the ``sha256`` user metadata (and a
``ChecksumSHA256`` the store checks on receipt); after every upload a HEAD checks size
and recorded digest.

The endpoint comes from ``endpoint_url`` (the ``--s3-endpoint-url`` flag), else the
usual AWS configuration (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, profiles);
credentials always come from the AWS chain (environment, ``~/.aws``, instance role).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import MissingObject, TargetError
from ..files import CHUNK, Tick
from .base import ObjectInfo, Target


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
