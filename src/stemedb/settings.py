"""Typed settings: built-in defaults < TOML file < ``STEMEDB_*`` environment < flags.

Each section is a dataclass; each field's metadata names its environment variable,
documents it and states its rule (range, form). ``all_settings()`` lists them for the
docs test, which fails when a setting is missing from ``docs/settings.md`` or
``.env.example``.

The config file is ``--config PATH``, else ``STEMEDB_CONFIG``, else
``/etc/stemedb/config.toml`` if it exists, else none.

``load_settings`` checks everything the consumers (guards, journal, server, targets)
would otherwise refuse later, each value where it came from and then the rules between
settings, so that a bad value stops a command with one :class:`ConfigError` line,
``<key> from <source>: <rule>``, instead of a traceback from deep inside start-up.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/stemedb/config.toml")
DEFAULT = "default"  # the source of a setting nobody set
# Integers travel into SQLite, PostgreSQL and Redis, which hold 64 bits.
INT_MAX = 2**63 - 1
MIN_RATE = 0.001  # a limit slower than one request in ~17 minutes is a typo, not a policy

Check = Callable[[Any], str]  # a value's problem ("must …"), or "" when it is fine


def _s(default: Any, env: str, doc: str, *, minimum: float | None = None,
       maximum: float | None = None, check: Check | None = None, secret: bool = False,
       as_list: bool = False) -> Any:
    meta = {"env": env, "doc": doc, "min": minimum, "max": maximum, "check": check,
            "secret": secret, "as_list": as_list}
    return field(default=default, metadata=meta)


# -- rules for single values -----------------------------------------------------------------


def _text(value: str) -> str:
    # Paths, sockets and HTTP headers refuse these later, each with its own exception.
    for c in value:
        n = ord(c)
        if n < 0x20 or 0x7F <= n < 0xA0:
            return f"must not contain control characters (found U+{n:04X})"
        if 0xD800 <= n <= 0xDFFF:
            return "must be valid UTF-8 text"
    return ""


_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


def _host(value: str) -> str:
    problem = _text(value)
    if problem:
        return problem
    try:
        ipaddress.ip_address(value)
        return ""
    except ValueError:
        pass
    if len(value) > 253 or not _HOSTNAME.fullmatch(value):
        return f"must be an IP address or a host name, got {value!r}"
    return ""


def _not_empty(value: str) -> str:
    return _text(value) or ("" if value.strip() else "must not be empty")


def _log_level(value: str) -> str:
    names = logging.getLevelNamesMapping()
    if value.upper() in names and value.upper() != "NOTSET":
        return ""
    return f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {value!r}"


def _token(value: str) -> str:
    # It travels in "Authorization: Bearer <token>": visible ASCII, no spaces.
    if all(0x21 <= ord(c) <= 0x7E for c in value):
        return ""
    return "must be printable ASCII without spaces"


def _one_of(*allowed: str) -> Check:
    def check(value: str) -> str:
        if value in allowed:
            return ""
        shown = " or ".join(repr(a) for a in allowed if a)
        return f"must be {shown}" + (" (or empty)" if "" in allowed else "") + f", got {value!r}"
    return check


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _networks(value: str) -> str:
    problem = _text(value)
    if problem:
        return problem
    for item in value.split(","):
        cidr = item.strip()
        if not cidr:
            continue
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"{cidr!r} is not an IP address or network (CIDR)"
    return ""


def _rate(value: float) -> str:
    if value == 0 or value >= MIN_RATE:
        return ""
    return f"must be 0 (no limit) or at least {MIN_RATE}, got {value}"


def _scheme(value: str) -> str:
    return value.split("://", 1)[0] if "://" in value else value[:16]


def _target(value: str) -> str:
    problem = _text(value)
    if problem or not value:
        return problem
    if value.startswith("s3://"):
        if not value[len("s3://"):].partition("/")[0]:
            return "must name a bucket: s3://bucket/prefix"
        return ""
    if "://" in value and not value.startswith("file://"):
        return (f"must be a directory or s3://bucket/prefix, not a "
                f"{_scheme(value)}:// URL")
    return ""


def _endpoint(value: str) -> str:
    if not value:
        return ""
    problem = _text(value)
    if problem:
        return problem
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        return "must be an http:// or https:// URL with a valid host and port"
    if parts.scheme not in ("http", "https") or not (
            is_valid_endpoint_url(value) or is_valid_ipv6_endpoint_url(value)):
        return "must be an http:// or https:// URL with a valid host and port"
    return ""


def _redis_url(value: str) -> str:
    if not value:
        return ""
    if not value.startswith(("redis://", "rediss://", "unix://")):
        return f"must be a redis://, rediss:// or unix:// URL, got {_scheme(value)!r}"
    problem = _text(value)
    if problem:
        return problem
    from redis.connection import parse_url

    try:
        parse_url(value)
    except ValueError as e:
        return f"is not a valid Redis URL ({_redacted(str(e), value)})"
    return ""


# libpq's connection keywords (libpq 18, the one psycopg[binary] bundles), and "ssl",
# which a URI may give for sslmode=require. libpq refuses a URI naming any other with an
# error that would surface only when the first connection is made.
_LIBPQ_KEYWORDS = frozenset((
    "application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
    "fallback_application_name", "gssdelegation", "gssencmode", "gsslib", "host",
    "hostaddr", "keepalives", "keepalives_count", "keepalives_idle", "keepalives_interval",
    "krbsrvname", "load_balance_hosts", "max_protocol_version", "min_protocol_version",
    "oauth_client_id", "oauth_client_secret", "oauth_issuer", "oauth_scope", "options",
    "passfile", "password", "port", "replication", "require_auth", "requirepeer",
    "scram_client_key", "scram_server_key", "service", "ssl", "ssl_max_protocol_version",
    "ssl_min_protocol_version", "sslcert", "sslcertmode", "sslcompression", "sslcrl",
    "sslcrldir", "sslkey", "sslkeylogfile", "sslmode", "sslnegotiation", "sslpassword",
    "sslrootcert", "sslsni", "target_session_attrs", "tcp_user_timeout", "user"
))
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


def _database_url(value: str) -> str:
    """libpq's URI grammar, checked here because only the storage backends may import
    psycopg (tests/unit/test_architecture.py)."""
    if not value:
        return ""
    if not value.startswith(("postgresql://", "postgres://")):
        return f"must be a postgresql:// URL, got {_scheme(value)!r}"
    problem = _text(value)
    if problem:
        return problem
    bad = "is not a valid PostgreSQL URL"
    if _BAD_ESCAPE.search(value):
        return f"{bad} (a %-escape is not two hex digits, or is %00)"
    rest, _, query = value.split("://", 1)[1].partition("?")
    hosts = rest.split("/", 1)[0]
    hosts = hosts.split("@", 1)[1] if "@" in hosts else hosts  # libpq: the first "@"
    for spec in hosts.split(","):
        port = spec.partition(":")[2]
        if spec.startswith("["):
            address, closed, after = spec[1:].partition("]")
            if not closed or not address or (after and not after.startswith(":")):
                return f"{bad} (an IPv6 host must be [address] or [address]:port)"
            port = after[1:]
        if port and not (port.isdigit() and 0 < int(port) <= 65535):
            return f"{bad} (a port is not a number from 1 to 65535)"
    params = query.split("&") if query else []
    if len(params) > 1 and not params[-1]:
        params.pop()  # "?sslmode=require&" is fine, as libpq has it
    for param in params:
        if param.count("=") != 1:
            return f"{bad} (a query parameter is not one key=value)"
        key = unquote(param.split("=", 1)[0])
        if key not in _LIBPQ_KEYWORDS:
            return f"{bad} (unknown connection parameter {key!r})"
    return ""


def _redacted(message: str, url: str) -> str:
    """``message`` without the URL's password (library messages may quote the URL)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    message = message.strip().splitlines()[0] if message.strip() else "invalid"
    return message.replace(password, "***") if password else message


# -- the sections ----------------------------------------------------------------------------


@dataclass
class ServerSettings:
    host: str = _s("127.0.0.1", "STEMEDB_HOST", "Address the API server binds to.",
                   check=_host)
    port: int = _s(18180, "STEMEDB_PORT", "API server port.", minimum=0, maximum=65535)
    dashboard_port: int = _s(18188, "STEMEDB_DASHBOARD_PORT",
                             "Review dashboard port (0 disables it).", minimum=0, maximum=65535)
    data_dir: str = _s("./stemedb-data", "STEMEDB_DATA_DIR",
                       "Directory holding the journal, the index and admin.token.",
                       check=_not_empty)
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
    log_level: str = _s("INFO", "STEMEDB_LOG_LEVEL",
                        "Log level of the server (DEBUG, INFO, WARNING, ERROR).",
                        check=_log_level)


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
                    "Bearer token for /v1/admin; generated into <data_dir>/admin.token if empty.",
                    check=_token, secret=True)
    session_secret: str = _s("", "STEMEDB_SESSION_SECRET",
                             "Key that signs dashboard session cookies, the same on every "
                             "node; if empty, derived from the admin token.", check=_text,
                             secret=True)


@dataclass
class AuthSettings:
    read: str = _s("", "STEMEDB_AUTH_READ",
                   "Whether reads need a token with the read scope: open or token. Empty: "
                   "open when server.host is a loopback address, else token.",
                   check=_one_of("", "open", "token"))
    metrics: str = _s("open", "STEMEDB_AUTH_METRICS",
                      "Whether GET /metrics needs a token (any valid one): open or token.",
                      check=_one_of("open", "token"))


def read_mode(settings: Settings) -> str:
    """``[auth] read`` in effect: as set, else ``open`` on a loopback host only."""
    if settings.auth.read:
        return settings.auth.read
    return "open" if is_loopback(settings.server.host) else "token"


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
                                        minimum=0.0, maximum=36500)


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
                                "probing.", minimum=0.001, maximum=31_536_000)
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
                            "Signed writes per second per agent (0 disables).", minimum=0,
                            maximum=1e9, check=_rate)
    assert_burst: int = _s(100, "STEMEDB_RATE_LIMIT_ASSERT_BURST",
                           "Burst of signed writes per agent.", minimum=1)
    query_rate: float = _s(200.0, "STEMEDB_RATE_LIMIT_QUERY_RATE",
                           "Requests per second per client address on every non-admin "
                           "endpoint, checked before parsing or signature checks (0 disables).",
                           minimum=0, maximum=1e9, check=_rate)
    query_burst: int = _s(400, "STEMEDB_RATE_LIMIT_QUERY_BURST",
                          "Burst of requests per client address.", minimum=1)
    admin_rate: float = _s(20.0, "STEMEDB_RATE_LIMIT_ADMIN_RATE",
                           "Admin requests per second per client address (0 disables).",
                           minimum=0, maximum=1e9, check=_rate)
    admin_burst: int = _s(40, "STEMEDB_RATE_LIMIT_ADMIN_BURST",
                          "Burst of admin requests per client address.", minimum=1)
    trusted_proxies: str = _s("", "STEMEDB_TRUSTED_PROXIES",
                              "Comma-separated CIDRs of proxies whose X-Forwarded-For is "
                              "believed (a TOML list works too).", check=_networks,
                              as_list=True)
    max_keys: int = _s(100_000, "STEMEDB_RATE_LIMIT_MAX_KEYS",
                       "Most keys (agents or addresses) each limiter keeps in memory.",
                       minimum=100)


@dataclass
class BackupSettings:
    target: str = _s("", "STEMEDB_BACKUP_TARGET",
                     "Backup and WAL archive target: a directory or s3://bucket/prefix. The "
                     "server reports the archive lag of this target; the backup, wal, restore "
                     "and dr-drill commands use it when --to/--from is not given.",
                     check=_target)
    s3_endpoint_url: str = _s("", "STEMEDB_S3_ENDPOINT_URL",
                              "S3-compatible endpoint (empty: AWS, or AWS_ENDPOINT_URL_S3). "
                              "Credentials come from the usual AWS environment and config.",
                              check=_endpoint)
    archive_check_seconds: float = _s(60.0, "STEMEDB_ARCHIVE_CHECK_SECONDS",
                                      "How often the server checks the archive lag.",
                                      minimum=5, maximum=86400)


@dataclass
class GuardsSettings:
    redis_url: str = _s("", "STEMEDB_REDIS_URL",
                        "Redis shared by every node for rate limits and circuit breakers "
                        "(redis://host:port/db, rediss:// or unix://); empty: each node keeps "
                        "its own in memory. Unreachable, a node falls back to its own.",
                        check=_redis_url)
    redis_timeout_ms: int = _s(100, "STEMEDB_REDIS_TIMEOUT_MS",
                               "Connect and read timeout of each guard call to Redis; past it "
                               "the node falls back to its in-process guards.", minimum=1,
                               maximum=60_000)


@dataclass
class StorageSettings:
    database_url: str = _s("", "STEMEDB_DATABASE_URL",
                           "PostgreSQL holding the journal and the index, shared by every node "
                           "(postgresql://user@host:port/db); empty: the embedded journal and "
                           "SQLite index in the data directory.", check=_database_url)


def _enrollment(value: str) -> str:
    return "" if value in ENROLLMENT_MODES else f"must be open or registered, got {value!r}"


ENROLLMENT_MODES = ("open", "registered")


@dataclass
class AgentsSettings:
    enrollment: str = _s("open", "STEMEDB_AGENTS_ENROLLMENT",
                         "Which agent keys may write: open (any key with a valid signature) or "
                         "registered (only keys enrolled with stemedb admin agent enroll). "
                         "Revoked keys are refused and enrolled keys are held to their "
                         "namespaces in both modes.", check=_enrollment)


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    content_defense: ContentDefenseSettings = field(default_factory=ContentDefenseSettings)
    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    guards: GuardsSettings = field(default_factory=GuardsSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    agents: AgentsSettings = field(default_factory=AgentsSettings)
    config_path: str | None = None
    #: where each setting that is not at its default came from: ``{"server.port":
    #: "STEMEDB_PORT"}`` (a config file path, an environment variable or a flag)
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    def source(self, key: str) -> str:
        """Where ``key`` (``"section.name"``) came from; ``"default"`` when nobody set it."""
        return self.sources.get(key, DEFAULT)

    def value(self, key: str) -> Any:
        section, name = key.split(".", 1)
        return getattr(getattr(self, section), name)


_SECTIONS = ("server", "journal", "admin", "auth", "content_defense", "circuit_breaker",
             "rate_limit", "backup", "guards", "storage", "agents")


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


# -- loading ---------------------------------------------------------------------------------


def config_error(key: str, source: str, rule: str) -> ConfigError:
    """The one form of every settings error: ``<key> from <source>: <rule>``."""
    return ConfigError(f"{key} from {source}: {rule}")


def _shown(f: dataclasses.Field[Any], value: Any) -> str:
    return "a secret value" if f.metadata.get("secret") else repr(value)


def _coerce(section: str, f: dataclasses.Field[Any], value: Any, source: str) -> Any:
    kind = _type_name(f.type)
    name = f"{section}.{f.name}"
    wrong = config_error(name, source, f"expected {kind}, got {_shown(f, value)}")
    if isinstance(value, bool):  # TOML true is no number, and no setting is a bool
        raise wrong
    if kind == "int":
        if isinstance(value, float) or not isinstance(value, int | str):
            raise wrong  # 20.5 would be truncated without a word
        try:
            out: Any = int(value)
        except ValueError:
            raise wrong from None
    elif kind == "float":
        if not isinstance(value, int | float | str):
            raise wrong
        try:
            out = float(value)
        except (ValueError, OverflowError):
            raise wrong from None
        if not math.isfinite(out):
            raise config_error(name, source, f"must be a finite number, got {value!r}")
    else:
        if isinstance(value, list) and f.metadata.get("as_list") and all(
                isinstance(v, str) for v in value):
            value = ",".join(value)  # TOML lists of strings, e.g. trusted_proxies
        if not isinstance(value, str):
            raise wrong
        out = value
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if kind == "int" and hi is None:
        hi = INT_MAX
    if lo is not None and out < lo:
        raise config_error(name, source, f"must be >= {lo}, got {out}")
    if hi is not None and out > hi:
        raise config_error(name, source, f"must be <= {hi}, got {out}")
    check: Check | None = f.metadata.get("check")
    problem = check(out) if check is not None else ""
    if problem:
        raise config_error(name, source, problem)
    return out


def resolve_config_path(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    found = _config_path(explicit, env)
    return found[0] if found else None


def _config_path(explicit: str | None, env: Mapping[str, str]) -> tuple[Path, str] | None:
    """The config file and what named it."""
    if explicit:
        return Path(explicit), "--config"
    if env.get("STEMEDB_CONFIG"):
        return Path(env["STEMEDB_CONFIG"]), "STEMEDB_CONFIG"
    if DEFAULT_CONFIG_PATH.exists():
        return DEFAULT_CONFIG_PATH, "the default path"
    return None


def _read_config(path: Path, named_by: str) -> dict[str, Any]:
    what = f"config file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise config_error(what, named_by, "does not exist") from None
    except UnicodeDecodeError as e:
        raise config_error(what, named_by, f"is not UTF-8 text ({e.reason} at byte "
                                           f"{e.start})") from None
    except OSError as e:
        raise config_error(what, named_by, f"cannot be read: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise config_error(what, named_by, f"is not valid TOML: {e}") from None


def _suggest(name: str, known: list[str], form: str = "{}") -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f"; did you mean {form.format(close[0])}?" if close else ""


def _check_layout(values: dict[str, Any], path: str, sections: Mapping[str, set[str]]
                  ) -> None:  # fmt: skip
    """Every table is a known section and every key in it a known setting: a misspelt
    name would otherwise leave the operator's value silently unused."""
    names = list(sections)
    for section, table in values.items():
        if section not in sections:
            if isinstance(table, dict):
                raise config_error(f"[{section}]", path, "unknown section"
                                   + _suggest(section, names, "[{}]"))
            raise config_error(section, path, "unknown setting: settings belong in a "
                               "[section]" + _suggest(section, names, "[{}]"))
        if not isinstance(table, dict):
            raise config_error(f"[{section}]", path, "must be a table")
        for key in table:
            if key not in sections[section]:
                raise config_error(f"{section}.{key}", path, "unknown setting"
                                   + _suggest(key, sorted(sections[section]),
                                              f"{section}.{{}}"))


def load_settings(config: str | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None, *,
                  flags: Mapping[str, str] | None = None) -> Settings:
    """Build settings: defaults, then the TOML file, then env, then explicit overrides
    (``{"server.port": 1234}``, what command-line flags pass; ``flags`` names the flag of
    each, ``{"server.port": "--port"}``, for the messages). Raises :class:`ConfigError`
    naming the setting, where its value came from and the rule it breaks."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    flags = flags or {}
    settings = Settings()
    sections = {s: {f.name for f in dataclasses.fields(getattr(settings, s))} for s in _SECTIONS}
    unknown = sorted(k for k in overrides if k.partition(".")[0] not in sections
                     or k.partition(".")[2] not in sections[k.partition(".")[0]])
    if unknown:
        raise ValueError(f"no such setting: {', '.join(unknown)}")
    found = _config_path(config, env)
    file_values: dict[str, Any] = {}
    path = ""
    if found is not None:
        path = str(found[0])
        file_values = _read_config(*found)
        _check_layout(file_values, path, sections)
        settings.config_path = path
    for section in _SECTIONS:
        obj = getattr(settings, section)
        from_file = file_values.get(section, {})
        for f in dataclasses.fields(obj):
            key = f"{section}.{f.name}"
            given: list[tuple[Any, str]] = []
            if f.name in from_file:
                given.append((from_file[f.name], path))
            if env.get(f.metadata["env"], "") != "":
                given.append((env[f.metadata["env"]], f.metadata["env"]))
            if overrides.get(key) is not None:
                given.append((overrides[key], flags.get(key, "command line")))
            for value, source in given:  # every one checked: a bad file is bad even if
                setattr(obj, f.name, _coerce(section, f, value, source))  # env wins
                settings.sources[key] = source
    check_rules(settings)
    return settings


# -- rules between settings ------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """``left <op> right`` must hold, unless ``unless`` says the pair is exempt."""

    left: str
    op: str  # "<=" or "!="
    right: str
    why: str = ""
    unless: Callable[[Any, Any], bool] | None = None

    def holds(self, a: Any, b: Any) -> bool:
        if self.unless is not None and self.unless(a, b):
            return True
        return a <= b if self.op == "<=" else a != b


#: Every rule between two settings; ``docs/settings.md`` lists them.
RULES = (
    Rule("circuit_breaker.min_requests", "<=", "circuit_breaker.window_size",
         "the window never holds more writes than its size"),
    Rule("server.max_body_bytes", "<=", "server.max_batch_bytes",
         "a write that fits alone must fit in a batch"),
    Rule("server.dashboard_port", "!=", "server.port", "both listen on the same host",
         unless=lambda a, b: a == 0 or b == 0),
)


def _rank(settings: Settings, key: str) -> int:
    """How deliberately ``key`` was set: a flag over the environment over the file."""
    source = settings.source(key)
    if source == DEFAULT:
        return 0
    if source == settings.config_path:
        return 1
    return 2 if source.startswith("STEMEDB_") else 3


def check_rules(settings: Settings) -> None:
    """Raise the :class:`ConfigError` of the first rule between settings that fails,
    naming the setting changed most deliberately (a flag, else env, else the file)."""
    for rule in RULES:
        a, b = settings.value(rule.left), settings.value(rule.right)
        if rule.holds(a, b):
            continue
        blame_left = _rank(settings, rule.left) >= _rank(settings, rule.right)
        key, other = (rule.left, rule.right) if blame_left else (rule.right, rule.left)
        mine, theirs = (a, b) if blame_left else (b, a)
        source = settings.source(other)
        where = "the default" if source == DEFAULT else f"from {source}"
        if rule.op == "!=":
            relation = "must differ from"
        else:
            relation = "must be at most" if blame_left else "must be at least"
        raise config_error(key, settings.source(key),
                           f"{relation} {other} ({theirs}, {where}), got {mine}"
                           + (f": {rule.why}" if rule.why else ""))
