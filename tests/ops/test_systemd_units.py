"""deploy/systemd/: every unit passes ``systemd-analyze verify`` without a warning.

``verify`` checks that ExecStart's binary exists, so the units are copied and their
``/opt/stemedb/.venv/bin/stemedb`` pointed at this checkout's ``stemedb``. In CI
(``CI=true``) a missing systemd-analyze fails the test instead of skipping it.
"""

from __future__ import annotations

import configparser
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/stemedb/.venv/bin/stemedb"


def _systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("systemd-analyze is missing (install it: scripts/system-deps.sh)")
        pytest.skip("systemd-analyze is not installed")
    return exe


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_every_unit_verifies_without_warnings(tmp_path: Path) -> None:
    exe = _systemd_analyze()
    stemedb = Path(sys.executable).with_name("stemedb")
    assert stemedb.exists(), stemedb
    units = sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))
    assert {p.name for p in units} >= {
        "stemedb-api.service",
        "stemedb-backup.service",
        "stemedb-backup.timer",
        "stemedb-wal-archive.service",
        "stemedb-wal-archive.timer",
        "stemedb-verify.service",
        "stemedb-verify.timer",
    }
    copies = []
    for unit in units:
        text = unit.read_text()
        if unit.suffix == ".service":
            assert INSTALLED in text, f"{unit.name}: ExecStart should use {INSTALLED}"
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED, str(stemedb)))
        copies.append(str(copy))
    out = subprocess.run(
        [exe, "verify", *copies],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    ours = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if any(Path(c).name in line for c in copies) or str(tmp_path) in line
    ]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr


def test_api_unit_is_hardened() -> None:
    service = _unit(UNITS / "stemedb-api.service")["Service"]
    expected = {
        "User": "stemedb",
        "DynamicUser": "no",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/stemedb",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "Restart": "on-failure",
        "ExecStart": f"{INSTALLED} serve --config /etc/stemedb/config.toml",
    }
    for key, value in expected.items():
        assert service.get(key) == value, key
    assert service.get("Type") in ("exec", "simple")
    assert int(service["LimitNOFILE"]) >= 65536
    assert service.get("TimeoutStopSec")


def test_every_service_has_a_timer_and_the_commands_exist() -> None:
    from click.testing import CliRunner

    from stemedb.cli import main

    for name in ("stemedb-backup", "stemedb-wal-archive", "stemedb-verify", "stemedb-dr-drill"):
        timer = _unit(UNITS / f"{name}.timer")
        assert timer["Timer"]["Unit"] == f"{name}.service"
        assert timer["Install"]["WantedBy"] == "timers.target"
        service = (UNITS / f"{name}.service").read_text()
        for line in service.splitlines():
            if line.startswith("ExecStart="):
                argv = line.split("=", 1)[1].split()[1:]
                words = list(itertools.takewhile(lambda a: not a.startswith("-"), argv))
                result = CliRunner().invoke(main, [*words, "--help"])
                assert result.exit_code == 0, (line, result.output)
                for opt in (a.split("=")[0] for a in argv if a.startswith("--")):
                    assert opt in result.output, (line, opt)
