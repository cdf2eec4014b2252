"""Typed settings: built-in defaults < TOML file < ``STEMEDB_*`` environment.

Each section is a dataclass; each field's metadata names its environment variable and
documents it. ``all_settings()`` lists them for the docs test, which fails when a
setting is missing from ``docs/settings.md`` or ``.env.example``.

The config file is ``--config PATH``, else ``STEMEDB_CONFIG``, else
``/etc/stemedb/config.toml`` if it exists, else none.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/stemedb/config.toml")


def _s(default: Any, env: str, doc: str, *, minimum: float | None = None,
       maximum: float | None = None) -> Any:
    meta = {"env": env, "doc": doc, "min": minimum, "max": maximum}
    return field(default=default, metadata=meta)


@dataclass
class ServerSettings:
    host: str = _s("127.0.0.1", "STEMEDB_HOST", "Address the API server binds to.")
    port: int = _s(18180, "STEMEDB_PORT", "API server port.", minimum=0, maximum=65535)
    dashboard_port: int = _s(18188, "STEMEDB_DASHBOARD_PORT",
                             "Review dashboard port (0 disables it).", minimum=0, maximum=65535)
    data_dir: str = _s("./stemedb-data", "STEMEDB_DATA_DIR",
                       "Directory holding the journal, the index and admin.token.")
    max_body_bytes: int = _s(64 * 1024, "STEMEDB_MAX_BODY_BYTES",
                             "Largest accepted body for a single write.", minimum=1024)
    max_batch_bytes: int = _s(4 * 1024 * 1024, "STEMEDB_MAX_BATCH_BYTES",
                              "Largest accepted body for POST /v1/assert/batch.", minimum=1024)
    max_batch_items: int = _s(1000, "STEMEDB_MAX_BATCH_ITEMS",
                              "Most items in one batch request.", minimum=1, maximum=100000)
    max_clock_skew_seconds: int = _s(300, "STEMEDB_MAX_CLOCK_SKEW_SECONDS",
                                     "How far a write's timestamp may be from server time.",
                                     minimum=1)
    verify_workers: int = _s(2, "STEMEDB_VERIFY_WORKERS",
                             "Threads verifying signatures in batch requests.", minimum=1,
                             maximum=64)
    log_level: str = _s("INFO", "STEMEDB_LOG_LEVEL", "Log level of the server (DEBUG, INFO, WARNING, ERROR).")


@dataclass
class JournalSettings:
    segment_bytes: int = _s(64 * 1024 * 1024, "STEMEDB_SEGMENT_BYTES",
                            "Journal segment size before a new segment is started.",
                            minimum=4096)
    group_commit_max_batch: int = _s(1024, "STEMEDB_GROUP_COMMIT_MAX_BATCH",
                                     "Most records written by one group commit (one fsync).",
                                     minimum=1)
    group_commit_max_wait_us: int = _s(0, "STEMEDB_GROUP_COMMIT_MAX_WAIT_US",
                                       "How long a group commit may wait for more writers "
                                       "(only when writers are concurrent).", minimum=0,
                                       maximum=1_000_000)
    min_free_bytes: int = _s(256 * 1024 * 1024, "STEMEDB_MIN_FREE_BYTES",
                             "Below this much free disk in the data directory, writes answer "
                             "503 and /readyz reports not ready.", minimum=0)


@dataclass
class AdminSettings:
    token: str = _s("", "STEMEDB_ADMIN_TOKEN",
                    "Bearer token for /v1/admin; generated into <data_dir>/admin.token if empty.")


@dataclass
class ContentDefenseSettings:
    quality_threshold: float = _s(0.6, "STEMEDB_QUALITY_THRESHOLD",
                                  "Quality score below which a write is quarantined as LowQuality.",
                                  minimum=0, maximum=1)
    confidence_threshold: float = _s(0.85, "STEMEDB_CONFIDENCE_THRESHOLD",
                                     "Confidence above which evidence is expected "
                                     "(a claim without it loses quality).", minimum=0, maximum=1)
    duplicate_lookback_hours: float = _s(48.0, "STEMEDB_DUPLICATE_LOOKBACK_HOURS",
                                         "Window in which the same agent repeating the same "
                                         "claim is quarantined as Duplicate.", minimum=0.001,
                                         maximum=8760)
    untrusted_confidence_threshold: float = _s(0.95, "STEMEDB_UNTRUSTED_CONFIDENCE_THRESHOLD",
                                               "Confidence at or above which a not-yet-trusted "
                                               "agent is quarantined as UntrustedHighConfidence.",
                                               minimum=0, maximum=1)
    max_pending_per_agent: int = _s(10000, "STEMEDB_MAX_PENDING_PER_AGENT",
                                    "Most pending quarantine items one agent may have; further "
                                    "writes that would be quarantined answer 429.", minimum=1)
    rejected_retention_days: float = _s(30.0, "STEMEDB_REJECTED_RETENTION_DAYS",
                                        "Rejected quarantine items are dropped from the index "
                                        "this long after the decision (the journal keeps them).",
                                        minimum=0.0)


@dataclass
class CircuitBreakerSettings:
    failure_rate_threshold: float = _s(0.5, "STEMEDB_BREAKER_FAILURE_RATE_THRESHOLD",
                                       "Failure rate over the window at which an agent's breaker "
                                       "opens.", minimum=0.000001, maximum=1)
    min_requests: int = _s(20, "STEMEDB_BREAKER_MIN_REQUESTS",
                           "Judged writes needed in the window before the breaker may open.",
                           minimum=1, maximum=10000)
    timeout_seconds: float = _s(300.0, "STEMEDB_BREAKER_TIMEOUT_SECONDS",
                                "How long an automatically opened breaker stays OPEN before "
                                "probing.", minimum=0.001)
    window_size: int = _s(100, "STEMEDB_BREAKER_WINDOW_SIZE",
                          "How many recent writes of an agent are judged.", minimum=1,
                          maximum=10000)
    half_open_probes: int = _s(3, "STEMEDB_BREAKER_HALF_OPEN_PROBES",
                               "Writes let through in HALF_OPEN; all must succeed to close.",
                               minimum=1)
    max_agents: int = _s(100_000, "STEMEDB_BREAKER_MAX_AGENTS",
                         "Most agents whose breaker state is kept in memory (idle CLOSED ones "
                         "are dropped first).", minimum=100)


@dataclass
class RateLimitSettings:
    assert_rate: float = _s(50.0, "STEMEDB_RATE_LIMIT_ASSERT_RATE",
                            "Signed writes per second per agent (0 disables).", minimum=0)
    assert_burst: int = _s(100, "STEMEDB_RATE_LIMIT_ASSERT_BURST",
                           "Burst of signed writes per agent.", minimum=1)
    query_rate: float = _s(200.0, "STEMEDB_RATE_LIMIT_QUERY_RATE",
                           "Requests per second per client address on every non-admin "
                           "endpoint, checked before parsing or signature checks (0 disables).",
                           minimum=0)
    query_burst: int = _s(400, "STEMEDB_RATE_LIMIT_QUERY_BURST",
                          "Burst of requests per client address.", minimum=1)
    admin_rate: float = _s(20.0, "STEMEDB_RATE_LIMIT_ADMIN_RATE",
                           "Admin requests per second per client address (0 disables).",
                           minimum=0)
    admin_burst: int = _s(40, "STEMEDB_RATE_LIMIT_ADMIN_BURST",
                          "Burst of admin requests per client address.", minimum=1)
    trusted_proxies: str = _s("", "STEMEDB_TRUSTED_PROXIES",
                              "Comma-separated CIDRs of proxies whose X-Forwarded-For is "
                              "believed (a TOML list works too).")
    max_keys: int = _s(100_000, "STEMEDB_RATE_LIMIT_MAX_KEYS",
                       "Most keys (agents or addresses) each limiter keeps in memory.",
                       minimum=100)


@dataclass
class BackupSettings:
    target: str = _s("", "STEMEDB_BACKUP_TARGET",
                     "Backup and WAL archive target: a directory or s3://bucket/prefix. The "
                     "server reports the archive lag of this target; the backup, wal and "
                     "dr-drill commands use it when --to/--from is not given.")
    s3_endpoint_url: str = _s("", "STEMEDB_S3_ENDPOINT_URL",
                              "S3-compatible endpoint (empty: AWS, or AWS_ENDPOINT_URL_S3). "
                              "Credentials come from the usual AWS environment and config.")
    archive_check_seconds: float = _s(60.0, "STEMEDB_ARCHIVE_CHECK_SECONDS",
                                      "How often the server checks the archive lag.",
                                      minimum=5)


@dataclass
class GuardsSettings:
    redis_url: str = _s("", "STEMEDB_REDIS_URL",
                        "Redis shared by every node for rate limits and circuit breakers "
                        "(redis://host:port/db, rediss:// or unix://); empty: each node keeps "
                        "its own in memory. Unreachable, a node falls back to its own.")
    redis_timeout_ms: int = _s(100, "STEMEDB_REDIS_TIMEOUT_MS",
                               "Connect and read timeout of each guard call to Redis; past it "
                               "the node falls back to its in-process guards.", minimum=1,
                               maximum=60_000)


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    content_defense: ContentDefenseSettings = field(default_factory=ContentDefenseSettings)
    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    guards: GuardsSettings = field(default_factory=GuardsSettings)
    config_path: str | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)


_SECTIONS = ("server", "journal", "admin", "content_defense", "circuit_breaker", "rate_limit",
             "backup", "guards")


@dataclass(frozen=True)
class SettingInfo:
    section: str
    key: str
    env: str
    default: Any
    type: str
    doc: str


def all_settings() -> Iterator[SettingInfo]:
    base = Settings()
    for section in _SECTIONS:
        obj = getattr(base, section)
        for f in dataclasses.fields(obj):
            yield SettingInfo(section, f.name, f.metadata["env"], getattr(obj, f.name),
                              _type_name(f.type), f.metadata["doc"])


def _type_name(t: Any) -> str:
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _coerce(section: str, f: dataclasses.Field[Any], value: Any, source: str) -> Any:
    kind = _type_name(f.type)
    name = f"{section}.{f.name}"
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            out: Any = int(value)
        elif kind == "float":
            out = float(value)
        elif kind == "bool":
            out = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        else:
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = ",".join(value)  # TOML lists of strings, e.g. trusted_proxies
            if not isinstance(value, str):
                raise ValueError
            out = value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} from {source}: expected {kind}, got {value!r}") from None
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if lo is not None and out < lo:
        raise ConfigError(f"{name} from {source}: must be >= {lo}, got {out}")
    if hi is not None and out > hi:
        raise ConfigError(f"{name} from {source}: must be <= {hi}, got {out}")
    return out


def resolve_config_path(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("STEMEDB_CONFIG"):
        return Path(env["STEMEDB_CONFIG"])
    if DEFAULT_CONFIG_PATH.exists():
        return DEFAULT_CONFIG_PATH
    return None


def load_settings(config: str | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build settings: defaults, then the TOML file, then env, then explicit overrides
    (``{"server.port": 1234}``, what command-line flags pass)."""
    env = os.environ if env is None else env
    settings = Settings()
    path = resolve_config_path(config, env)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {path}: {e}") from None
        settings.config_path = str(path)
    overrides = overrides or {}
    for section in _SECTIONS:
        obj = getattr(settings, section)
        known = {f.name: f for f in dataclasses.fields(obj)}
        from_file = file_values.get(section, {})
        if not isinstance(from_file, dict):
            raise ConfigError(f"[{section}] in {path} must be a table")
        for key in from_file:
            if key not in known:
                raise ConfigError(f"unknown setting {section}.{key} in {path}")
        for name, f in known.items():
            if name in from_file:
                setattr(obj, name, _coerce(section, f, from_file[name], str(path)))
            env_name = f.metadata["env"]
            if env.get(env_name, "") != "":
                setattr(obj, name, _coerce(section, f, env[env_name], env_name))
            key = f"{section}.{name}"
            if overrides.get(key) is not None:
                setattr(obj, name, _coerce(section, f, overrides[key], "command line"))
    url = settings.guards.redis_url
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"guards.redis_url must be a redis://, rediss:// or unix:// URL, "
                          f"got {url.split('://', 1)[0]!r}")
    return settings
