"""Golden journals in tests/testdata/journals: committed bytes, documented outcomes."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from stemedb.errors import JournalCorrupt
from stemedb.journal import Journal, scan

GOLDEN = Path(__file__).resolve().parents[1] / "testdata" / "journals"
EXPECTED: dict[str, dict[str, Any]] = json.loads((GOLDEN / "expected.json").read_text())


def test_every_case_is_present() -> None:
    assert set(EXPECTED) == {
        "clean",
        "torn_tail",
        "torn_header",
        "flipped_byte_mid",
        "flipped_byte_sealed",
        "broken_chain",
        "missing_segment",
        "bad_header",
    }
    for name in EXPECTED:
        assert list((GOLDEN / name).glob("*.wal"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_open(name: str, tmp_path: Path) -> None:
    expected = EXPECTED[name]
    case = tmp_path / name
    shutil.copytree(GOLDEN / name, case)
    if expected["open"] == "corrupt":
        with pytest.raises(JournalCorrupt) as raised:
            Journal(case)
        assert raised.value.file == str(case / expected["file"])
        assert raised.value.offset == expected["offset"]
        assert expected["what"] in raised.value.what
        assert f"{expected['file']} at offset {expected['offset']}" in str(raised.value)
        return
    with Journal(case) as journal:
        assert journal.last_lsn == expected["last_lsn"]
        report = journal.recovery
        if expected["open"] == "ok":
            assert (report.truncated_bytes, report.broken_copy) == (0, None)
        else:
            assert report.truncated_bytes == expected["truncated_bytes"]
            assert report.broken_copy is not None
            assert Path(report.broken_copy).stat().st_size == expected["truncated_bytes"]
        journal.append([b"after recovery"])
    assert [r.lsn for r in scan(case)] == list(range(1, expected["last_lsn"] + 2))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scan(name: str) -> None:
    if EXPECTED[name]["scan"] == "ok":
        assert len(list(scan(GOLDEN / name))) == EXPECTED[name]["last_lsn"]
    else:
        with pytest.raises(JournalCorrupt):
            list(scan(GOLDEN / name))


def test_make_golden_reproduces_the_committed_bytes(tmp_path: Path) -> None:
    """Guards the on-disk format: any change to it changes these bytes."""
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp_path)
    committed = {p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file()}
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert generated == committed - {Path("make_golden.py")}
    for relative in generated:
        assert (tmp_path / relative).read_bytes() == (GOLDEN / relative).read_bytes(), relative
