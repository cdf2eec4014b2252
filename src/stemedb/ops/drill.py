"""``stemedb dr-drill``: prove that the backups restore, and measure RPO and RTO.

Restores the latest backup plus archived WAL into scratch space, starts a real server
on it (spare loopback port, no dashboard), waits for ``/readyz``, then checks it:
record counts against the restored journal, and a random sample of assertions read back
over HTTP (exact body, signature re-verified, id = SHA-256 of the body), optionally
against a live source server too. RTO is the wall time from the start of the restore to
ready; RPO is now minus the recorded time of the last restorable record.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from .. import records, signing
from ..datadir import JOURNAL_DIR
from ..errors import JournalError, OpsError, StemeError
from ..journal import scan
from ..model import write_id
from .files import remove_tree
from .progress import Progress
from .restore import restore
from .targets import Target


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DrillReport:
    target: str
    ok: bool = False
    backup_id: str | None = None
    lsn: int = 0
    last_time: str | None = None
    archived_segments: int = 0
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    restore_seconds: float | None = None
    startup_seconds: float | None = None
    max_rto_seconds: float | None = None
    max_rpo_seconds: float | None = None
    sampled: int = 0
    source_url: str | None = None
    scratch: str | None = None  # kept with --keep
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sample(journal_dir: Path, last_lsn: int, k: int, rng: random.Random) -> list[dict[str, Any]]:
    """Up to ``k`` assertion records (reservoir sample), always including the last one."""
    chosen: list[dict[str, Any]] = []
    seen = 0
    last: dict[str, Any] | None = None
    for r in scan(journal_dir, to_lsn=last_lsn):
        data = records.decode(r.payload)
        if data["t"] != records.ASSERT:
            continue
        item = {
            "lsn": r.lsn,
            "body": data["body"],
            "sig": data["sig"],
            "id": write_id(data["body"].encode("utf-8")),
        }
        last = item
        seen += 1
        if len(chosen) < k:
            chosen.append(item)
        else:
            j = rng.randrange(seen)
            if j < k:
                chosen[j] = item
    if last is not None and last not in chosen:
        if len(chosen) >= k and chosen:
            chosen[-1] = last
        else:
            chosen.append(last)
    return chosen


def _compare(client: httpx.Client, base: str, item: dict[str, Any]) -> str | None:
    """None when the server answers the assertion exactly as journaled and signed."""
    try:
        resp = client.get(f"{base}/v1/assertions/{item['id']}")
    except httpx.HTTPError as e:
        return f"{item['id']}: {e}"
    if resp.status_code != 200:
        return f"{item['id']} (LSN {item['lsn']}): HTTP {resp.status_code}"
    got = resp.json()
    body = str(got.get("body", "")).encode("utf-8")
    if got.get("body") != item["body"] or got.get("signature") != item["sig"]:
        return f"{item['id']} (LSN {item['lsn']}): body or signature differs from the journal"
    if hashlib.sha256(body).hexdigest() != item["id"]:
        return f"{item['id']}: the id is not the SHA-256 of the body"
    try:
        sig = base64.b64decode(got["signature"], validate=True)
        agent = orjson.loads(body)["agent_id"]
    except (ValueError, KeyError, TypeError):
        return f"{item['id']}: unreadable body or signature"
    if not signing.verify(agent, body, sig):
        return f"{item['id']} (LSN {item['lsn']}): the signature does not verify"
    return None


def _wait_ready(
    url: str, proc: subprocess.Popen[bytes], timeout: float
) -> tuple[bool, dict[str, Any] | str]:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False, f"the server exited with status {proc.returncode}"
        try:
            resp = httpx.get(url + "/readyz", timeout=2.0)
            if resp.status_code == 200:
                return True, resp.json()
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except httpx.HTTPError as e:
            last = str(e) or type(e).__name__
        time.sleep(0.05)
    return False, f"not ready after {timeout:.0f} s ({last})"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run_drill(
    target: Target,
    *,
    max_rto: float | None = None,
    max_rpo: float | None = None,
    source_url: str | None = None,
    database_url: str | None = None,
    sample: int = 50,
    keep: bool = False,
    scratch_dir: Path | None = None,
    progress: Progress | None = None,
    ready_timeout: float = 900.0,
    seed: int | None = None,
) -> DrillReport:
    report = DrillReport(
        target.url, max_rto_seconds=max_rto, max_rpo_seconds=max_rpo, source_url=source_url
    )
    scratch = Path(tempfile.mkdtemp(prefix="stemedb-drill-", dir=scratch_dir))
    data = scratch / "data"
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        try:
            restored = restore(target, data, progress=progress)
        except OpsError as e:
            report.add("restore", False, e.detail)
            return report
        report.restore_seconds = round(time.monotonic() - started, 3)
        report.backup_id, report.lsn = restored.backup_id, restored.lsn
        report.last_time, report.archived_segments = (
            restored.last_time,
            len(restored.archived_segments),
        )
        report.add(
            "restore",
            True,
            f"backup {restored.backup_id} + "
            f"{len(restored.archived_segments)} archived segments: LSN {restored.lsn} "
            f"({restored.last_time})",
        )
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "STEMEDB_LOG_LEVEL": os.environ.get("STEMEDB_LOG_LEVEL", "WARNING")}
        with open(scratch / "server.log", "wb") as server_log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stemedb",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dashboard-port",
                    "0",
                    "--data-dir",
                    str(data),
                ],
                env=env,
                stdout=server_log,
                stderr=subprocess.STDOUT,
                cwd=scratch,
            )
        t_start = time.monotonic()
        ready, info = _wait_ready(url, proc, ready_timeout)
        now = time.monotonic()
        report.startup_seconds = round(now - t_start, 3)
        report.rto_seconds = round(now - started, 3)
        report.rpo_seconds = round(max(0.0, time.time() - restored.last_at / 1e6), 3)
        if not report.add(
            "server ready",
            ready,
            f"/readyz 200 on port {port}"
            if ready
            else f"{info}; log: " + (scratch / "server.log").read_text(errors="replace")[-2000:],
        ):
            return report
        assert isinstance(info, dict)
        report.add(
            "record count",
            info.get("journal_lsn") == restored.lsn == info.get("applied_lsn"),
            f"journal LSN {info.get('journal_lsn')}, applied LSN "
            f"{info.get('applied_lsn')}, restored {restored.lsn}",
        )
        rng = random.Random(seed)
        try:
            items = _sample(data / JOURNAL_DIR, restored.lsn, sample, rng)
        except JournalError as e:
            report.add("assertion sample", False, f"cannot read the restored journal: {e}")
            items = []
        report.sampled = len(items)
        with httpx.Client(timeout=10.0) as client:
            bad = [f for f in (_compare(client, url, it) for it in items) if f]
            report.add(
                "assertion sample",
                not bad,
                f"{len(items)} assertions: exact bodies, ids and signatures"
                if not bad
                else f"{len(bad)} of {len(items)} differ: " + "; ".join(bad[:5]),
            )
            if source_url:
                _check_source(report, client, source_url.rstrip("/"), restored.lsn, items)
        if database_url:
            _check_database(report, database_url, data / JOURNAL_DIR, restored.lsn)
        if max_rto is not None:
            report.add(
                "RTO",
                report.rto_seconds <= max_rto,
                f"{report.rto_seconds:.1f} s (max {max_rto:g} s)",
            )
        if max_rpo is not None:
            report.add(
                "RPO",
                report.rpo_seconds <= max_rpo,
                f"{report.rpo_seconds:.1f} s (max {max_rpo:g} s)",
            )
        return report
    finally:
        if proc is not None:
            _stop(proc)
        report.ok = bool(report.checks) and all(c.ok for c in report.checks)
        if keep:
            report.scratch = str(scratch)
        else:
            remove_tree(scratch)


def _check_database(report: DrillReport, database_url: str, journal: Path, lsn: int) -> None:
    """The restored journal must be a prefix of the cluster's: its last record is the
    database's record at that LSN (same chain hash, so every record before it too)."""
    from ..backends import open_location

    try:
        mine = next(iter(scan(journal, from_lsn=lsn, to_lsn=lsn)), None) if lsn else None
        store = open_location(database_url)
        try:
            tip = store.last_lsn
            theirs = next(iter(store.records(lsn, lsn)), None) if lsn else None
        finally:
            store.close()
    except StemeError as e:
        report.add("database", False, e.detail)
        return
    same = (mine is None and theirs is None) or (
        mine is not None and theirs is not None and mine.hash == theirs.hash)
    report.add("database", same,
               f"restored LSN {lsn} is the database's (tip {tip}, {tip - lsn} records not yet "
               "in the archive)" if same else
               f"the database's record at LSN {lsn} differs from the restored one")


def _check_source(
    report: DrillReport, client: httpx.Client, source: str, lsn: int, items: list[dict[str, Any]]
) -> None:
    try:
        ready = client.get(source + "/readyz").json()
        src_lsn = int(ready.get("journal_lsn", 0))
    except (httpx.HTTPError, ValueError) as e:
        report.add("source", False, f"{source}/readyz: {e}")
        return
    report.add(
        "source LSN",
        src_lsn >= lsn,
        f"source at LSN {src_lsn}, restored {lsn} ({src_lsn - lsn} records not yet in the archive)",
    )
    bad = [f for f in (_compare(client, source, it) for it in items) if f]
    report.add(
        "source sample",
        not bad,
        f"{len(items)} assertions identical on the source"
        if not bad
        else f"{len(bad)} of {len(items)} differ on the source: " + "; ".join(bad[:5]),
    )
