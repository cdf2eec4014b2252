"""A bad setting stops every command the same way, through the real ``stemedb`` in a
child process: exit code 2 and one line on stderr naming the setting, where its value
came from (the config file, the environment variable or the flag) and the rule; never a
traceback, and a server never starts listening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.integration


def stemedb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    return subprocess.run([sys.executable, "-m", "stemedb", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**clean, **(env or {})})


def assert_config_error(out: subprocess.CompletedProcess[str], expected: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("error: " + expected), out.stderr
    assert "Traceback" not in out.stderr + out.stdout


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A free port: were the config accepted by mistake, the server would start and the
    # test would time out instead of passing.
    return stemedb("serve", "--port", str(free_port()), "--dashboard-port", "0", *args, env=env)


def test_serve_refuses_a_cross_field_violation(cfg: Path, tmp_path: Path) -> None:
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
                   "[circuit_breaker]\nmin_requests = 10000\n")
    assert_config_error(serve("--config", str(cfg)),
                        f"circuit_breaker.min_requests from {cfg}: must be at most "
                        "circuit_breaker.window_size (100, the default), got 10000")
    assert not (tmp_path / "data").exists()


def test_serve_refuses_an_unknown_section(cfg: Path) -> None:
    cfg.write_text("[contnt_defense]\nquality_threshold = 0.9\n")
    assert_config_error(serve("--config", str(cfg)), f"[contnt_defense] from {cfg}: unknown "
                        "section; did you mean [content_defense]?")


@pytest.mark.parametrize("args, env, expected", [
    ([], {"STEMEDB_PORT": "abc"}, "server.port from STEMEDB_PORT: expected int, got 'abc'"),
    ([], {"STEMEDB_BREAKER_WINDOW_SIZE": "5"},
     "circuit_breaker.window_size from STEMEDB_BREAKER_WINDOW_SIZE: must be at least "
     "circuit_breaker.min_requests (20, the default), got 5"),
    ([], {"STEMEDB_LOG_LEVEL": "verbose"}, "server.log_level from STEMEDB_LOG_LEVEL: must be"),
    ([], {"STEMEDB_TRUSTED_PROXIES": "10.0.0.0/8,lb"},
     "rate_limit.trusted_proxies from STEMEDB_TRUSTED_PROXIES: 'lb' is not an IP address"),
    ([], {"STEMEDB_RATE_LIMIT_ASSERT_RATE": "inf"},
     "rate_limit.assert_rate from STEMEDB_RATE_LIMIT_ASSERT_RATE: must be a finite number"),
    (["--host", "a..b"], {}, "server.host from --host: must be an IP address or a host name"),
    (["--redis-url", "redis://h:port"], {}, "guards.redis_url from --redis-url: is not a valid"),
    (["--database-url", "mysql://h/db"], {}, "storage.database_url from --database-url: must be"),
    (["--database-url", "postgresql://h/db"], {},
     "admin.token from default: must be set, the same on every node, when "
     "storage.database_url (from --database-url) runs the node in cluster mode"),
    (["--config", "/nonexistent/stemedb.toml"], {},
     "config file /nonexistent/stemedb.toml from --config: does not exist"),
    ([], {"STEMEDB_CONFIG": "/nonexistent/stemedb.toml"},
     "config file /nonexistent/stemedb.toml from STEMEDB_CONFIG: does not exist"),
])
def test_serve_names_the_env_variable_or_flag(args: list[str], env: dict[str, str],
                                              expected: str) -> None:
    assert_config_error(serve(*args, env=env), expected)


def test_serve_port_flags_are_checked_like_settings() -> None:
    assert_config_error(stemedb("serve", "--port", "http"),
                        "server.port from --port: expected int, got 'http'")
    assert_config_error(stemedb("serve", "--port", "70000"),
                        "server.port from --port: must be <= 65535, got 70000")
    assert_config_error(stemedb("serve", "--port", "18188"),
                        "server.port from --port: must differ from server.dashboard_port "
                        "(18188, the default), got 18188")


def test_serve_refuses_a_data_dir_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert_config_error(serve("--data-dir", str(tmp_path / "file" / "data")),
                        f"server.data_dir from --data-dir: cannot create the directory "
                        f"{tmp_path / 'file' / 'data'}: Not a directory")


@pytest.mark.parametrize("argv", [
    ["verify"], ["reindex"], ["backup", "create", "--to", "/tmp/x"],
    ["backup", "list", "--from", "/tmp/x"], ["backup", "verify", "--from", "/tmp/x"],
    ["wal", "archive", "--to", "/tmp/x"], ["wal", "status", "--to", "/tmp/x"],
    ["restore", "--from", "/tmp/x", "--data-dir", "/tmp/never"],
    ["dr-drill", "--from", "/tmp/x"],
])
def test_every_command_that_reads_settings_refuses_them_alike(cfg: Path, argv: list[str]
                                                              ) -> None:  # fmt: skip
    cfg.write_text("[server]\nport = 1\n[circuit_breaker]\nwindow_size = 10\n")
    assert_config_error(stemedb(*argv, "--config", str(cfg)),
                        f"circuit_breaker.window_size from {cfg}: must be at least "
                        "circuit_breaker.min_requests (20, the default), got 10")
    cfg.write_text("[journal]\nsegment_bytes = 'big'\n")
    assert_config_error(stemedb(*argv, "--config", str(cfg)),
                        f"journal.segment_bytes from {cfg}: expected int, got 'big'")
    assert_config_error(stemedb(*argv, env={"STEMEDB_CONFIG": str(cfg.parent)}),
                        f"config file {cfg.parent} from STEMEDB_CONFIG: cannot be read")
