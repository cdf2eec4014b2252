"""Every settings error is one ``ConfigError`` line, ``<key> from <source>: <rule>``:
unknown sections and keys, values of the wrong type or form, ranges, and the rules
between settings (which name the setting changed most deliberately)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import ConfigError
from stemedb.settings import RULES, load_settings


def _error(tmp_path: Path, text: str = "", env: dict[str, str] | None = None,
           flags: dict[str, tuple[str, object]] | None = None) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    flags = flags or {}
    with pytest.raises(ConfigError) as e:
        load_settings(str(cfg), env=env or {}, overrides={k: v for k, (_, v) in flags.items()},
                      flags={k: f for k, (f, _) in flags.items()})
    message = e.value.detail
    assert "\n" not in message and not e.value.hint, message
    return message.replace(str(cfg), "FILE")


def test_unknown_sections_and_top_level_keys_are_refused(tmp_path: Path) -> None:
    assert _error(tmp_path, "[contnt_defense]\nquality_threshold = 0.1\n") == (
        "[contnt_defense] from FILE: unknown section; did you mean [content_defense]?")
    assert _error(tmp_path, "[metrics]\nport = 1\n") == "[metrics] from FILE: unknown section"
    assert _error(tmp_path, "port = 1\n").startswith("port from FILE: unknown setting")
    assert _error(tmp_path, "[server]\nprot = 1\n") == (
        "server.prot from FILE: unknown setting; did you mean server.port?")
    assert _error(tmp_path, "server = 1\n") == "[server] from FILE: must be a table"


@pytest.mark.parametrize("text, expected", [
    ("[circuit_breaker]\nmin_requests = 10000\n",
     "circuit_breaker.min_requests from FILE: must be at most circuit_breaker.window_size "
     "(100, the default), got 10000"),
    ("[circuit_breaker]\nwindow_size = 10\nmin_requests = 50\n",
     "circuit_breaker.min_requests from FILE: must be at most circuit_breaker.window_size "
     "(10, from FILE), got 50"),
    ("[server]\nmax_body_bytes = 8388608\n",
     "server.max_body_bytes from FILE: must be at most server.max_batch_bytes "
     "(4194304, the default), got 8388608"),
    ("[server]\nport = 9000\ndashboard_port = 9000\n",
     "server.dashboard_port from FILE: must differ from server.port (9000, from FILE), "
     "got 9000"),
])
def test_rules_between_settings(tmp_path: Path, text: str, expected: str) -> None:
    assert _error(tmp_path, text).startswith(expected)


def test_the_setting_changed_most_deliberately_is_named(tmp_path: Path) -> None:
    # env over the file over the default: the operator's latest change is the culprit
    assert _error(tmp_path, "[circuit_breaker]\nmin_requests = 50\n",
                  env={"STEMEDB_BREAKER_WINDOW_SIZE": "40"}).startswith(
        "circuit_breaker.window_size from STEMEDB_BREAKER_WINDOW_SIZE: must be at least "
        "circuit_breaker.min_requests (50, from FILE), got 40")
    assert _error(tmp_path, flags={"server.port": ("--port", "18188")}).startswith(
        "server.port from --port: must differ from server.dashboard_port (18188, the "
        "default), got 18188")
    # either port 0 (the dashboard off, or an ephemeral API port) is no clash
    for text in ("[server]\nport = 0\ndashboard_port = 0\n", "[server]\ndashboard_port = 0\n"):
        (tmp_path / "ok.toml").write_text(text)
        load_settings(str(tmp_path / "ok.toml"), env={})


def test_every_rule_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    for rule in RULES:
        assert f"`{rule.left}`" in doc and f"`{rule.right}`" in doc, rule


@pytest.mark.parametrize("text, env, expected", [
    ("[server]\nport = true\n", {}, "server.port from FILE: expected int, got True"),
    ("[circuit_breaker]\nmin_requests = 20.5\n", {},
     "circuit_breaker.min_requests from FILE: expected int, got 20.5"),
    ("[circuit_breaker]\ntimeout_seconds = inf\n", {},
     "circuit_breaker.timeout_seconds from FILE: must be a finite number"),
    ("", {"STEMEDB_QUALITY_THRESHOLD": "nan"},
     "content_defense.quality_threshold from STEMEDB_QUALITY_THRESHOLD: must be a finite"),
    ("[server]\nmax_body_bytes = 99999999999999999999\n", {},
     "server.max_body_bytes from FILE: must be <= 9223372036854775807"),
    ("[server]\nlog_level = 'loud'\n", {}, "server.log_level from FILE: must be one of DEBUG"),
    ("[server]\nhost = 'a..b'\n", {}, "server.host from FILE: must be an IP address or a host"),
    ("[server]\ndata_dir = ''\n", {}, "server.data_dir from FILE: must not be empty"),
    ("[server]\ndata_dir = \"a\\u0000b\"\n", {},
     "server.data_dir from FILE: must not contain control characters (found U+0000)"),
    ("[server]\nhost = ['a']\n", {}, "server.host from FILE: expected str, got ['a']"),
    ("[rate_limit]\ntrusted_proxies = ['10.0.0.0/8', 'proxy']\n", {},
     "rate_limit.trusted_proxies from FILE: 'proxy' is not an IP address or network"),
    ("", {"STEMEDB_RATE_LIMIT_QUERY_RATE": "1e-9"},
     "rate_limit.query_rate from STEMEDB_RATE_LIMIT_QUERY_RATE: must be 0 (no limit) or at "
     "least 0.001"),
    ("[backup]\ntarget = 's3:///prefix'\n", {}, "backup.target from FILE: must name a bucket"),
    ("[backup]\ntarget = 'gs://b/p'\n", {},
     "backup.target from FILE: must be a directory or s3://bucket/prefix, not a gs:// URL"),
    ("[backup]\ns3_endpoint_url = 'http://minio:port'\n", {},
     "backup.s3_endpoint_url from FILE: must be an http:// or https:// URL"),
    ("", {"STEMEDB_REDIS_URL": "redis://h:port/0"},
     "guards.redis_url from STEMEDB_REDIS_URL: is not a valid Redis URL"),
    ("", {"STEMEDB_DATABASE_URL": "postgresql://h/db?nonsense=1"},
     "storage.database_url from STEMEDB_DATABASE_URL: is not a valid PostgreSQL URL"),
    ("", {"STEMEDB_DATABASE_URL": "postgresql://h:5432,h2:x/db"},
     "storage.database_url from STEMEDB_DATABASE_URL: is not a valid PostgreSQL URL"),
])
def test_values_are_checked_where_they_come_from(tmp_path: Path, text: str,
                                                 env: dict[str, str], expected: str
                                                 ) -> None:  # fmt: skip
    assert _error(tmp_path, text, env).startswith(expected)


def test_a_bad_file_value_is_an_error_even_when_env_overrides_it(tmp_path: Path) -> None:
    assert _error(tmp_path, "[server]\nport = 'x'\n", {"STEMEDB_PORT": "9000"}).startswith(
        "server.port from FILE: expected int")


def test_secrets_are_never_echoed(tmp_path: Path) -> None:
    message = _error(tmp_path, "[admin]\ntoken = 'hunter2 with spaces'\n")
    assert message == "admin.token from FILE: must be printable ASCII without spaces"
    message = _error(tmp_path, "[admin]\ntoken = 12345678\n")
    assert "12345678" not in message and "a secret value" in message
    message = _error(tmp_path, env={"STEMEDB_REDIS_URL": "redis://:s3cret@h:port/0"})
    assert "s3cret" not in message
    message = _error(tmp_path, env={"STEMEDB_DATABASE_URL": "mysql://u:s3cret@h/db"})
    assert "s3cret" not in message and "'mysql'" in message


def test_config_file_problems_name_the_file_and_what_named_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    for config, env, named_by in ((missing, {}, "--config"),
                                  (None, {"STEMEDB_CONFIG": missing}, "STEMEDB_CONFIG")):
        with pytest.raises(ConfigError) as e:
            load_settings(config, env=env)
        assert e.value.detail == f"config file {missing} from {named_by}: does not exist"
    (tmp_path / "latin1.toml").write_bytes(b"[server]\nhost = '\xe9'\n")
    with pytest.raises(ConfigError, match="latin1.toml from --config: is not UTF-8 text"):
        load_settings(str(tmp_path / "latin1.toml"), env={})
    (tmp_path / "bad.toml").write_text("[server\n")
    with pytest.raises(ConfigError, match=r"bad.toml from --config: is not valid TOML: .*line 1"):
        load_settings(str(tmp_path / "bad.toml"), env={})
    with pytest.raises(ConfigError, match="from --config: cannot be read: Is a directory"):
        load_settings(str(tmp_path), env={})


def test_sources_are_recorded(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 2000\nhost = '0.0.0.0'\n")
    s = load_settings(str(cfg), env={"STEMEDB_PORT": "3000"},
                      overrides={"server.data_dir": "/srv/x"}, flags={"server.data_dir": "--data-dir"})
    assert s.source("server.port") == "STEMEDB_PORT"
    assert s.source("server.host") == str(cfg)
    assert s.source("server.data_dir") == "--data-dir"
    assert s.source("journal.segment_bytes") == "default"
    with pytest.raises(ValueError, match="no such setting: server.nope"):
        load_settings(str(cfg), env={}, overrides={"server.nope": 1})
