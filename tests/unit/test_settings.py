from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import ConfigError
from stemedb.settings import all_settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_and_in_env_example() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text()
    env_example = (ROOT / ".env.example").read_text()
    for s in all_settings():
        assert f"`{s.key}`" in docs and f"`{s.env}`" in docs, f"{s.section}.{s.key} not in docs"
        assert f"{s.env}=" in env_example, f"{s.env} missing from .env.example"
    assert "STEMEDB_CONFIG" in docs and "STEMEDB_CONFIG" in env_example


def test_precedence_defaults_file_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 2000\nhost = "0.0.0.0"\n[journal]\nsegment_bytes = 8192\n')
    s = load_settings(str(cfg), env={"STEMEDB_PORT": "3000"})
    assert (s.server.port, s.server.host, s.journal.segment_bytes) == (3000, "0.0.0.0", 8192)
    s = load_settings(str(cfg), env={"STEMEDB_PORT": "3000"}, overrides={"server.port": 4000})
    assert s.server.port == 4000
    s = load_settings(None, env={"STEMEDB_CONFIG": str(cfg)})
    assert s.server.port == 2000 and s.config_path == str(cfg)


@pytest.mark.parametrize(
    "text, env, needle",
    [
        ("[server]\nport = 'x'\n", {}, "server.port"),
        ("[server]\nbogus = 1\n", {}, "server.bogus"),
        ("[server]\nport = 99999\n", {}, "<= 65535"),
        ("not toml [", {}, "c.toml"),
        ("", {"STEMEDB_MAX_CLOCK_SKEW_SECONDS": "-1"}, "STEMEDB_MAX_CLOCK_SKEW_SECONDS"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, env: dict, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(str(cfg), env=env)
    assert needle in str(e.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(str(tmp_path / "nope.toml"), env={})
