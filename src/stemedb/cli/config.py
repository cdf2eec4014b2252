"""How commands read their settings: flags are the last layer over defaults, the config
file and ``STEMEDB_*`` (``settings.py``), each named by its flag, so that any bad value
ends the command with exit code 2 and one line ``error: <key> from <source>: <rule>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ..errors import ConfigError
from ..settings import DEFAULT, Settings, all_settings, config_error, load_settings
from .output import fail_on

#: ``{"server.port": ("--port", value)}``: a setting, the flag that sets it, its value
#: (None when the flag was not given)
Flags = Mapping[str, tuple[str, Any]]

config_option = click.option("--config", type=click.Path(dir_okay=False),
                             help="TOML config file [env STEMEDB_CONFIG; default "
                             "/etc/stemedb/config.toml if it exists].")


def load(config: str | None, flags: Flags | None = None, *, as_json: bool = False
         ) -> Settings:  # fmt: skip
    """The command's settings, or the command ends with the config error (exit 2)."""
    flags = flags or {}
    try:
        return load_settings(config, overrides={k: v for k, (_, v) in flags.items()
                                                if v is not None},
                             flags={k: flag for k, (flag, _) in flags.items()})
    except ConfigError as e:
        fail_on(e, as_json=as_json)


def require(settings: Settings, key: str, flag: str, *, as_json: bool = False) -> Any:
    """A setting this command cannot do without, e.g. ``backup.target`` for ``--to``."""
    value = settings.value(key)
    if value in ("", None):
        section, name = key.split(".", 1)
        env = next(s.env for s in all_settings() if (s.section, s.key) == (section, name))
        fail_on(config_error(key, DEFAULT, f"must be set for this command: give {flag}, "
                             f"or set [{section}] {name} in the config file or {env}"),
                as_json=as_json)
    return value

