"""deploy/systemd/: every unit passes ``systemd-analyze verify`` without a warning.

``verify`` checks that ExecStart's binary exists, so the units are copied and their
``/opt/stemedb/.venv/bin/stemedb`` pointed at this checkout's ``stemedb``. A template unit
(``stemedb-api@.service``) is verified as it stands (systemd instantiates it) and as an
instance named by its port. In CI (``CI=true``) a missing systemd-analyze fails the test
instead of skipping it.
"""

from __future__ import annotations

import configparser
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT

UNITS = ROOT / "deploy" / "systemd"
TEMPLATE = UNITS / "stemedb-api@.service"
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
        "stemedb-api@.service",
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
        copies.append(copy)
    out = _verify(exe, copies)
    assert out.returncode == 0 and not out.complaints, out.text


@dataclass
class Verified:
    returncode: int
    text: str
    complaints: list[str]


def _verify(exe: str, copies: list[Path]) -> Verified:
    """``systemd-analyze verify`` on unit files; the lines that name one of them (a
    template is named by its instances too: ``stemedb-api@i.service``)."""
    out = subprocess.run(
        [exe, "verify", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    names = {c.name for c in copies} | {c.name.split("@")[0] + "@" for c in copies if "@" in c.name}
    text = out.stdout + out.stderr
    complaints = [
        line
        for line in text.splitlines()
        if any(name in line for name in names) or str(copies[0].parent) in line
    ]
    return Verified(out.returncode, text, complaints)


def _template_copy(directory: Path, name: str, edit: Callable[[str], str] = str) -> Path:
    """``stemedb-api@.service`` copied as ``name`` with the checkout's ``stemedb``."""
    stemedb = Path(sys.executable).with_name("stemedb")
    directory.mkdir(exist_ok=True)
    copy = directory / name
    copy.write_text(edit(TEMPLATE.read_text().replace(INSTALLED, str(stemedb))))
    return copy


def test_api_template_verifies_as_an_instance(tmp_path: Path) -> None:
    exe = _systemd_analyze()
    for name in ("stemedb-api@.service", "stemedb-api@18181.service"):
        out = _verify(exe, [_template_copy(tmp_path / name, name)])
        assert out.returncode == 0 and not out.complaints, (name, out.text)


def test_api_template_check_fails_on_a_broken_copy(tmp_path: Path) -> None:
    """The check really reads the template: a missing binary fails it, a misspelt key or
    a bad directory is reported."""
    exe = _systemd_analyze()
    name = "stemedb-api@18181.service"
    stemedb = str(Path(sys.executable).with_name("stemedb"))
    missing = _template_copy(tmp_path / "a", name,
                             lambda t: t.replace(stemedb, str(tmp_path / "no-such-stemedb")))
    out = _verify(exe, [missing])
    assert out.returncode != 0 and "no-such-stemedb" in out.text, out.text
    misspelt = _template_copy(tmp_path / "b", name,
                              lambda t: t.replace("StateDirectoryMode=", "StateDirectoryMod="))
    out = _verify(exe, [misspelt])
    assert any("StateDirectoryMod" in line for line in out.complaints), out.text
    absolute = _template_copy(tmp_path / "c", name, lambda t: t.replace(
        "StateDirectory=stemedb/node-%i", "StateDirectory=/var/lib/stemedb/node-%i"))
    out = _verify(exe, [absolute])
    assert any("StateDirectory" in line for line in out.complaints), out.text


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


def test_api_template_runs_one_node_per_port() -> None:
    """Several nodes on one host: the instance is the API port, each node has its own
    data directory and env file (its dashboard port), and the same hardening and shared
    settings as the single-node unit."""
    single = _unit(UNITS / "stemedb-api.service")["Service"]
    template = _unit(TEMPLATE)
    service = template["Service"]
    assert service["ExecStart"] == (
        f"{INSTALLED} serve --config /etc/stemedb/config.toml --port %i "
        "--data-dir /var/lib/stemedb/node-%i")
    assert service["StateDirectory"] == "stemedb/node-%i"
    assert service["WorkingDirectory"] == "/var/lib/stemedb/node-%i"
    # configparser keeps the last of a repeated key: read both EnvironmentFile lines.
    env_files = [line.split("=", 1)[1] for line in TEMPLATE.read_text().splitlines()
                 if line.startswith("EnvironmentFile=")]
    assert env_files == ["/etc/stemedb/stemedb.env", "/etc/stemedb/node-%i.env"]
    assert "%i" in template["Unit"]["Description"]
    assert template["Install"]["WantedBy"] == "multi-user.target"
    shared = {k: v for k, v in single.items()
              if k not in ("ExecStart", "WorkingDirectory", "ReadWritePaths", "EnvironmentFile")}
    assert {k: service.get(k) for k in shared} == shared
    assert "ReadWritePaths" not in service  # StateDirectory= makes the node's own writable

    from click.testing import CliRunner

    from stemedb.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for opt in ("--config", "--port", "--data-dir"):
        assert opt in result.output, opt
    # The per-node env file sets the dashboard port: the variable exists.
    from stemedb.settings import all_settings

    assert "STEMEDB_DASHBOARD_PORT" in {info.env for info in all_settings()}
    assert "STEMEDB_DASHBOARD_PORT=" in TEMPLATE.read_text()


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
