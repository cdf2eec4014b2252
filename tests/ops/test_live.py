"""Against a real server taking writes: backups stay consistent, and the DR drill
restores, serves and checks the latest backup plus archived WAL."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from stemedb.cli import main
from stemedb.datadir import JOURNAL_DIR
from stemedb.journal import scan
from stemedb.ops.archive import archive_once
from stemedb.ops.backup import create_backup
from stemedb.ops.restore import restore
from stemedb.ops.targets import open_target
from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body
from tests.ops.conftest import S3Server, Source, index_digest, reference_digest

pytestmark = pytest.mark.integration


class Writer(threading.Thread):
    """Posts batches of signed assertions until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, AgentKey.generate()
        self.stop = threading.Event()
        self.accepted = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as c:
                i = 0
                while not self.stop.is_set():
                    items = []
                    for _ in range(20):
                        i += 1
                        body = assertion_body(
                            self.key, subject=f"sensor {i}", object=f"reading {i % 97}"
                        )
                        items.append({"body": body.decode(), "signature": self.key.sign_b64(body)})
                    r = c.post("/v1/assert/batch", json={"items": items})
                    r.raise_for_status()
                    self.accepted += sum(
                        1 for x in r.json()["results"] if x.get("http_status") == 201
                    )
        except BaseException as e:  # surfaced by the test
            self.error = e

    def wait_for(self, n: int) -> None:
        while self.accepted < n and self.is_alive():
            self.stop.wait(0.02)


def test_backups_under_concurrent_writes_and_dr_drill(tmp_path: Path, s3_server: S3Server) -> None:
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_SEGMENT_BYTES": "65536"}).start()
    url = f"s3://{s3_server.new_bucket()}/live"
    target = open_target(url, s3_server.url)
    writer = Writer(srv.url)
    manifests = []
    try:
        writer.start()
        for n in (300, 700, 1100):
            writer.wait_for(n)
            manifests.append(create_backup(srv.data_dir, target))
            archive_once(srv.data_dir, target)
        writer.wait_for(1500)
        writer.stop.set()
        writer.join(30)
        assert writer.error is None, writer.error
        archive_once(srv.data_dir, target)

        res = CliRunner().invoke(
            main,
            [
                "dr-drill",
                "--from",
                url,
                "--s3-endpoint-url",
                s3_server.url,
                "--source-url",
                srv.url,
                "--max-rto",
                "120",
                "--max-rpo",
                "3600",
                "--sample",
                "30",
                "--json",
            ],
        )
        drill = json.loads(res.stdout)
        assert res.exit_code == 0 and drill["ok"], res.output
        assert drill["backup_id"] == manifests[-1].id and drill["archived_segments"] >= 1
        assert 0 < drill["rto_seconds"] < 120 and 0 <= drill["rpo_seconds"] < 3600
        assert drill["rto_seconds"] >= drill["restore_seconds"]
        assert drill["sampled"] == 30
        checks = {c["name"]: c["ok"] for c in drill["checks"]}
        assert checks == {
            "restore": True,
            "server ready": True,
            "record count": True,
            "assertion sample": True,
            "source LSN": True,
            "source sample": True,
            "RTO": True,
            "RPO": True,
        }

        res = CliRunner().invoke(
            main,
            [
                "dr-drill",
                "--from",
                url,
                "--s3-endpoint-url",
                s3_server.url,
                "--max-rpo",
                "0",
                "--sample",
                "5",
            ],
        )
        assert res.exit_code == 1 and "RPO" in res.stdout and "FAIL" in res.stdout
    finally:
        writer.stop.set()
        srv.stop()

    src = Source(srv.data_dir, records=list(scan(srv.data_dir / JOURNAL_DIR)))
    assert len(src.records) >= 1500
    for i, m in enumerate(manifests):
        assert m.source["live"] is True
        assert m.last_hash == src.records[m.last_lsn - 1].hash.hex()  # a prefix of the source
        assert m.index_digest == reference_digest(src, m.last_lsn, tmp_path)
        out = tmp_path / f"restored-{i}"
        r = restore(target, out, backup_id=m.id, to_lsn=m.last_lsn)
        assert (r.lsn, r.index_from) == (m.last_lsn, m.last_lsn)
        assert index_digest(out) == m.index_digest
    # the latest restore holds everything archived, and the restored server starts on it
    out = tmp_path / "latest"
    r = restore(target, out)
    assert r.lsn > manifests[-1].last_lsn
    assert index_digest(out) == reference_digest(src, r.lsn, tmp_path)
    again = ServerProcess(out).start()
    try:
        assert httpx.get(again.url + "/readyz").json()["applied_lsn"] == r.lsn
    finally:
        again.stop()
