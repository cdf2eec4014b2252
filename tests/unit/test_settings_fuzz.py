"""Random values of random types for random settings, from the config file, the
environment and flags: ``load_settings`` either returns settings that every consumer
accepts, or raises the one-line ``ConfigError`` naming a setting that was given and where
it came from. Never another exception, and never settings that fail later at start-up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stemedb.dashboard.app import session_key
from stemedb.defense.thresholds import Thresholds
from stemedb.errors import ConfigError
from stemedb.gate import config_thresholds
from stemedb.guards import Guards
from stemedb.journal import Journal
from stemedb.ops.targets import open_target
from stemedb.records import now_us
from stemedb.settings import INT_MAX, Settings, all_settings, load_settings

INFOS = list(all_settings())
SECTIONS = sorted({i.section for i in INFOS})
METADATA = {(section, f.name): f.metadata for section in SECTIONS
            for f in dataclasses.fields(getattr(Settings(), section))}

# Values near the valid ones, so that the rules are reached and not only the type checks.
PLAUSIBLE = [
    "", "0", "1", "-1", "20", "100", "10000", "65535", "65536", "0.5", "1e-9", "1e999", "nan",
    "inf", "-0", "true", "tok\x00en", "a b", "\ud800", "é", "~/backups",
]
CANDIDATES = {
    "host": ["127.0.0.1", "::1", "0.0.0.0", "localhost", "db-1.example.org", "a..b", "",
             "-bad-.host", "x" * 64 + ".org", "host name", "é.example", "[::1]"],
    "data_dir": ["./d", "/srv/stemedb", "", "  ", "a\x00b", "~/d", "é"],
    "log_level": ["INFO", "debug", "Warning", "warn", "fatal", "notset", "loud", ""],
    "token": ["", "t0k3n-_.~+/=", "a b", "é", "tok\x01", "x" * 200],
    "session_secret": ["", "s3cret", "é", "a\x7fb"],
    "trusted_proxies": ["", "10.0.0.0/8", "10.0.0.0/8, ::1", "10.0.0.0/33", "proxy", ",", "::/0"],
    "target": ["", "s3://bucket/prefix", "s3://b", "s3://", "s3:///x", "file:///srv/b",
               "gs://b/x", "/srv/backups", "rel/dir", "~/b"],
    "s3_endpoint_url": ["", "http://minio:9000", "https://[::1]:9000", "http://minio:port",
                        "minio:9000", "ftp://x", "http://", "http://a_b", "0"],
    "redis_url": ["", "redis://127.0.0.1:6379/0", "redis://h:port", "rediss://u:p@h:1/2",
                  "unix:///run/r.sock", "unix:///x?db=z", "http://redis", "redis://[::1",
                  "redis://h:99999", "redis://h/0?socket_timeout=x"],
    "database_url": ["", "postgresql://u@h:5432/db", "postgres://h1,h2/db", "mysql://h/db",
                     "postgresql://h:99999/db", "postgresql://h/db?bogus=1",
                     "postgresql://%zz@h/db", "postgresql://h:x,h2:5432/db",
                     "postgresql://[]/db", "postgresql://[::1]x/db", "postgresql://h/db?a",
                     "postgresql://h/db?x=1=2", "postgresql://h/db?&", "postgresql://%00@h/d",
                     "postgresql://h/db?ssl=true&", "postgresql://u@h1:1,[::1]:2/db"],
}
PLAUSIBLE += [v for vs in CANDIDATES.values() for v in vs]

texts = st.one_of(st.sampled_from(PLAUSIBLE),
                  st.text(st.characters(exclude_categories=("Cs",)), max_size=24))


def utf8(value: Any) -> bool:
    """A TOML file is UTF-8: it cannot carry a lone surrogate (the environment can)."""
    return not isinstance(value, str) or not any(0xD800 <= ord(c) <= 0xDFFF for c in value)


file_texts = texts.filter(utf8)
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                    st.integers(min_value=-5, max_value=70000),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 2))
toml_values = st.recursive(
    st.one_of(numbers, st.booleans(), file_texts,
              st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1))),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                                            inner, max_size=2)),
    max_leaves=4)
names = st.from_regex(r"[a-z][a-z_]{0,14}", fullmatch=True)


def in_range(info: Any) -> st.SearchStrategy[Any]:
    """Values of the setting's own type, mostly inside its range, so that the rules
    between settings are reached, not only the checks of single values."""
    meta = METADATA[info.section, info.key]
    lo, hi = meta["min"], meta["max"]
    if info.type == "int":
        lo = -5 if lo is None else int(lo)
        hi = lo + 20_000 if hi is None else int(hi)
        edges = st.sampled_from([lo - 1, hi + 1, 2**63 - 1, 2**63, 10**20])
        return st.integers(lo, hi) | st.integers(lo, min(hi, lo + 200)) | edges
    if info.type == "float":
        lo = 0.0 if lo is None else float(lo)
        hi = 1e6 if hi is None else float(hi)
        edges = st.sampled_from([math.nan, math.inf, 5e-324, 1e-9, 1e308])
        return st.floats(lo, hi) | st.floats(lo, min(hi, lo + 2)) | edges
    return st.sampled_from(CANDIDATES.get(info.key, PLAUSIBLE))


def values(info: Any, where: str, wild: bool) -> st.SearchStrategy[Any]:
    own = in_range(info)
    if where == "file":
        return toml_values if wild else own.filter(utf8)
    if where == "env":
        return st.one_of(texts, numbers.map(str)) if wild else own.map(str)
    return st.one_of(texts, numbers) if wild else st.one_of(own, own.map(str))


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        out = []
        for c in value:
            if c in '"\\':
                out.append("\\" + c)
            elif ord(c) < 0x20 or ord(c) == 0x7F:
                out.append(f"\\u{ord(c):04X}")
            else:
                out.append(c)
        return '"' + "".join(out) + '"'
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"


@st.composite
def layers(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(INFOS), min_size=1, max_size=6,
                           unique_by=lambda i: (i.section, i.key)))
    # Mostly values of the right type with at most one of any type: several wild values
    # would nearly always stop at the first, leaving the consumers untried.
    wild = draw(st.sampled_from([None, None, 0, "all"]))
    file: dict[str, dict[str, Any]] = {}
    env: dict[str, str] = {}
    flags: dict[str, Any] = {}
    for n, info in enumerate(chosen):
        key = f"{info.section}.{info.key}"
        is_wild = wild == "all" or wild == n
        where = draw(st.sampled_from(["file", "env", "flag", "file+env"]))
        if "file" in where:
            file.setdefault(info.section, {})[info.key] = draw(values(info, "file", is_wild))
        if "env" in where:
            env[info.env] = draw(values(info, "env", is_wild))
        if where == "flag":
            flags[key] = draw(values(info, "flag", is_wild))
    stray = draw(st.sampled_from([None, None, None, None, "key", "section"]))
    if stray == "key":
        section = draw(st.sampled_from(SECTIONS))
        known = {i.key for i in INFOS if i.section == section}
        file.setdefault(section, {})[draw(names.filter(lambda n: n not in known))] = 1
    elif stray == "section":
        file[draw(names.filter(lambda n: n not in SECTIONS))] = {"x": 1}
    return {"file": file, "env": env, "flags": flags}


def accepted_by_every_consumer(s: Settings, scratch: Path) -> None:
    """What start-up and the ops commands build from the settings, built."""
    Guards(s).close()  # limiters, breakers (BreakerConfig), trusted proxies, Redis link
    with Journal(scratch / "journal", segment_bytes=s.journal.segment_bytes,
                 max_batch=s.journal.group_commit_max_batch,
                 max_wait_us=s.journal.group_commit_max_wait_us):
        pass
    Thresholds.from_dict(config_thresholds(s.content_defense)).validated()
    logging.getLogger("stemedb.test.settings-fuzz").setLevel(s.server.log_level.upper())
    session_key(s.admin.session_secret, s.admin.token or "generated")
    f"Bearer {s.admin.token}".encode("latin-1")  # an HTTP header value
    s.server.host.encode("idna")  # what getaddrinfo does before binding
    assert "\x00" not in s.server.data_dir and s.server.data_dir.strip()
    if s.backup.target or s.backup.s3_endpoint_url:
        open_target(s.backup.target or "s3://bucket/prefix", s.backup.s3_endpoint_url or None)
    if s.storage.database_url:
        from psycopg.conninfo import conninfo_to_dict

        conninfo_to_dict(s.storage.database_url)
    # the rejected-items purge binds this as a SQLite integer
    before = now_us() - int(s.content_defense.rejected_retention_days * 86_400 * 1_000_000)
    assert before >= -(2**63)
    for info in all_settings():
        value = s.value(f"{info.section}.{info.key}")
        if isinstance(value, float):
            assert math.isfinite(value), info
        elif isinstance(value, int):
            assert -(2**63) <= value <= INT_MAX, info


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers())
def test_settings_are_usable_or_refused_naming_the_key(given_layers: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        cfg = scratch / "config.toml"
        cfg.write_text("".join(f"[{section}]\n" + "".join(f"{k} = {toml(v)}\n"
                                                          for k, v in values.items())
                               for section, values in given_layers["file"].items()),
                       encoding="utf-8")
        flags = {k: "--" + k.replace(".", "-") for k in given_layers["flags"]}
        try:
            s = load_settings(str(cfg), env=given_layers["env"],
                              overrides=given_layers["flags"], flags=flags)
        except ConfigError as e:
            assert "\n" not in e.detail, e.detail
            named = [(f"{section}.{key}", str(cfg))
                     for section, values in given_layers["file"].items() for key in values]
            named += [(f"[{section}]", str(cfg)) for section in given_layers["file"]]
            by_env = {i.env: f"{i.section}.{i.key}" for i in INFOS}
            named += [(by_env[env], env) for env in given_layers["env"]]
            named += [(key, flag) for key, flag in flags.items()]
            assert any(e.detail.startswith(f"{key} from {source}: ") for key, source in named), (
                e.detail, named)
            event("refused")
            return
        accepted_by_every_consumer(s, scratch)
        event("accepted")
