"""Point-in-time restore at 50 random targets (25 LSNs, 25 times) from two backups plus
archived WAL on a real S3-compatible server: each restore holds exactly the records at
or before its target, in a valid journal, with the index for exactly that point."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stemedb.datadir import INDEX_FILE, JOURNAL_DIR
from stemedb.errors import OpsError
from stemedb.index import IndexStore, entries_from
from stemedb.journal import Journal, scan
from stemedb.ops.archive import archive_once, load_state
from stemedb.ops.backup import create_backup, us_to_time
from stemedb.ops.restore import restore
from stemedb.ops.targets import open_target
from tests.ops.conftest import JournalBuilder, S3Server, Source


def _expected_digests(src: Source, lsns: list[int], scratch: Path) -> dict[int, str]:
    """Digest of the index at each LSN, from one incremental build of the source."""
    store = IndexStore(scratch / "reference.sqlite3", journal_dir=src.journal_dir)
    out: dict[int, str] = {}
    done = 0
    try:
        for lsn in sorted(set(lsns)):
            store.rebuild_from(entries_from(src.records[done:lsn]))
            done = lsn
            out[lsn] = store.digest()
    finally:
        store.close()
    return out


def test_pitr_at_50_random_targets(tmp_path: Path, s3_server: S3Server) -> None:
    rng = random.Random(20260211)
    builder = JournalBuilder(tmp_path / "src", seed=11)
    target = open_target(f"s3://{s3_server.new_bucket()}/pitr", s3_server.url)
    builder.add(700)
    first = create_backup(builder.source.data_dir, target)
    builder.add(700)
    second = create_backup(builder.source.data_dir, target)
    src = builder.add(700)
    report = archive_once(src.data_dir, target)
    assert len(report.archived) >= 10
    state = load_state(target)
    archived_to = max(s.last_lsn for s in state.segments.values())
    assert second.last_lsn < archived_to < src.last_lsn()  # the active segment is not archived

    lsn_targets = rng.sample(range(1, archived_to + 1), 22) + [1, first.last_lsn, archived_to]
    time_targets = []
    for _ in range(25):
        i = rng.randrange(archived_to)
        exact = rng.random() < 0.3  # exactly a record's time, or between two records
        t = src.ats[i] if exact else rng.randrange(src.ats[i], src.ats[i + 1])
        time_targets.append(t)
    ats = src.ats[:archived_to]
    expected_time = {t: max(j + 1 for j, a in enumerate(ats) if a <= t) for t in time_targets}
    digests = _expected_digests(src, lsn_targets + list(expected_time.values()), tmp_path)

    cases = [("lsn", n, n) for n in lsn_targets] + [
        ("time", t, expected_time[t]) for t in time_targets
    ]

    def check(i: int, kind: str, value: int, want: int) -> str:
        out = tmp_path / f"r{i}"
        r = (
            restore(target, out, to_lsn=value)
            if kind == "lsn"
            else restore(target, out, to_time_us=value)
        )
        assert r.lsn == want, (kind, value)
        got = list(scan(out / JOURNAL_DIR))
        assert len(got) == want and got[-1].hash == src.records[want - 1].hash
        if kind == "time":  # the last kept record is at or before T, the next one after it
            assert src.ats[want - 1] <= value and (want == len(src.ats) or src.ats[want] > value)
        store = IndexStore(out / INDEX_FILE)
        try:
            assert store.applied() == (want, src.records[want - 1].hash)
            assert store.digest() == digests[want], (kind, value)
        finally:
            store.close()
        if i % 10 == 0:  # the journal opens as is: nothing to cut, nothing corrupt
            with Journal(out / JOURNAL_DIR) as j:
                assert j.last_lsn == want and j.recovery.truncated_bytes == 0
        return r.backup_id

    # restores are independent: run four at a time (they mostly wait on the S3 server)
    with ThreadPoolExecutor(4) as pool:
        bases = set(pool.map(lambda c: check(c[0], *c[1]), enumerate(cases)))
    assert bases == {first.id, second.id}

    with pytest.raises(
        OpsError,
        match=f"latest restorable LSN is {archived_to} at time "
        f"{us_to_time(src.ats[archived_to - 1])}",
    ):
        restore(target, tmp_path / "beyond", to_lsn=archived_to + 1)
    with pytest.raises(OpsError, match=f"latest restorable LSN is {archived_to}"):
        restore(target, tmp_path / "beyond-t", to_time_us=src.ats[archived_to - 1] + 1)
    latest = restore(target, tmp_path / "latest")
    assert (latest.lsn, latest.backup_id) == (archived_to, second.id)
