"""deploy/nginx and deploy/envoy: checked by the real nginx and Envoy, then carrying real
traffic to real ``stemedb serve`` processes (how the configs are rendered and run:
``tests/deploy/proxies.py``). Failover between several nodes and the retry policy:
``test_lb_failover.py``; the operations docs: ``test_operations_docs.py``.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stemedb import Client
from stemedb.server import _config as uvicorn_config
from stemedb.signing import AgentKey
from tests.deploy.proxies import (
    API_HOST,
    AUTH,
    BATCH,
    DEFAULTS,
    ENVOY_CONFIG,
    NGINX_DIR,
    NGINX_SITE,
    OUTSIDE,
    REVIEW_HOST,
    SINGLE,
    TRUSTED,
    WRITE_PATHS,
    Capture,
    Envoy,
    Nginx,
    Proxy,
    Tls,
    api_routes,
    batch_of,
    client,
    cluster,
    endpoints,
    envoy_bin,
    envoy_doc,
    hcm,
    is_problem,
    listener,
    next_upstream,
    nginx_server,
    nginx_size,
    openssl_bin,
    padded,
    parse_nginx,
    render_envoy,
    render_nginx,
    seconds,
    typed,
    wait_healthy,
)
from tests.e2e.conftest import DashboardServer
from tests.helpers import ServerProcess, assertion_body, free_port, signed_headers

pytestmark = pytest.mark.integration


# Paths only the internal networks may reach, also spelled the ways a client might try
# to slip past a prefix rule (the proxies match the decoded, normalised path).
INTERNAL_PATHS = ("/metrics", "/v1/admin/quarantine", "/v1/admin", "/v1/%61dmin/quarantine",
                  "//v1/admin/quarantine", "/v1/admin%2Fquarantine", "/metrics?format=text")


# -- servers ------------------------------------------------------------------------------


def limited_server(data_dir: Path, trusted: str) -> ServerProcess:
    """A node with a query burst of 2 and almost no refill: the third request from one
    client address is refused, and the 429 names the address it was counted on."""
    return ServerProcess(data_dir, env={
        "STEMEDB_TRUSTED_PROXIES": trusted,
        "STEMEDB_RATE_LIMIT_QUERY_RATE": "0.001",
        "STEMEDB_RATE_LIMIT_QUERY_BURST": "2",
    }).start()  # fmt: skip


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = limited_server(tmp_path_factory.mktemp("limited") / "data", TRUSTED)
    yield srv
    srv.stop()


def counted_on(c: httpx.Client, headers: dict[str, str] | None = None) -> str:
    """Spend a client's query burst; the client address named by the 429 that follows."""
    for _ in range(2):
        r = c.get("/v1/search", params={"q": "anything"}, headers=headers)
        assert r.status_code == 200, r.text
    problem = is_problem(c.get("/v1/search", params={"q": "anything"}, headers=headers), 429)
    m = re.fullmatch(r"client (\S+) is over the query rate limit", problem["detail"])
    assert m, problem
    return m.group(1)


# -- nginx --------------------------------------------------------------------------------


def nginx_config_values() -> dict[str, str]:
    text = NGINX_SITE.read_text()
    batch = re.search(r"location = /v1/assert/batch \{(.*?)\n    \}", text, re.S)
    assert batch
    upstream = re.search(r"upstream stemedb_api \{(.*?)\n\}", text, re.S)
    assert upstream
    server = re.search(r"\n    client_max_body_size\s+(\S+);", text)
    assert server
    return {
        "single": server.group(1),
        "batch": re.findall(r"client_max_body_size\s+(\S+);", batch.group(1))[0],
        "batch_read_timeout": re.findall(r"proxy_read_timeout\s+(\S+);", batch.group(1))[0],
        "upstream_keepalive_timeout": re.findall(r"keepalive_timeout\s+(\S+);",
                                                 upstream.group(1))[0],
    }


def test_nginx_config_matches_the_server_defaults() -> None:
    values = nginx_config_values()
    assert nginx_size(values["single"]) == SINGLE == 64 * 1024
    assert nginx_size(values["batch"]) == BATCH == 4 * 1024 * 1024
    # Idle upstream connections are closed by nginx before the server closes them.
    keep_alive = uvicorn_config(None, "127.0.0.1", 0).timeout_keep_alive
    assert seconds(values["upstream_keepalive_timeout"]) < keep_alive
    proxy = (NGINX_DIR / "snippets" / "stemedb-proxy.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in proxy
    assert not re.search(r"proxy_set_header\s+(Authorization|X-Agent-Signature)", proxy, re.I)
    text = NGINX_SITE.read_text()
    assert "trusted_proxies" in text and "STEMEDB_TRUSTED_PROXIES" in text
    # Two or more nodes: the defaults, and the second node of the template's example.
    site = parse_nginx(text)
    upstreams = {u.args[0]: [s.args[0] for s in u.all("server")] for u in site.all("upstream")}
    assert upstreams == {
        "stemedb_api": [f"127.0.0.1:{DEFAULTS.server.port}", f"127.0.0.1:{DEFAULTS.server.port + 1}"],
        "stemedb_dashboard": [f"127.0.0.1:{DEFAULTS.server.dashboard_port}",
                              f"127.0.0.1:{DEFAULTS.server.dashboard_port + 1}"],
    }
    for u in site.all("upstream"):
        for s in u.all("server"):
            assert s.args[1:] == ["max_fails=3", "fail_timeout=10s"], s.args


def test_nginx_retries_only_what_is_safe_to_repeat() -> None:
    """Every location of the API and the dashboard passes a failed request to another node
    on the same conditions; `non_idempotent` (POSTs re-sent after they reached a node)
    only for the three signed-write routes, idempotent by construction. Never on 429."""
    snippet = parse_nginx((NGINX_DIR / "snippets" / "stemedb-proxy.conf").read_text())
    assert not [d for d in snippet.children if d.name.startswith("proxy_next_upstream")]
    site = parse_nginx(NGINX_SITE.read_text())
    safe = "error timeout http_502 http_503 http_504"
    api_server, review = nginx_server(site, API_HOST), nginx_server(site, REVIEW_HOST)
    re_sent = set()
    for server in (api_server, review):
        assert server.value("proxy_next_upstream") == safe
        assert server.value("proxy_next_upstream_tries") == "2"
        assert seconds(server.value("proxy_next_upstream_timeout") or "") < seconds(
            server.value("proxy_read_timeout") or "")  # a timed-out request is not re-sent
        for location in server.all("location"):
            policy = next_upstream(server, location)
            assert policy in (safe, f"{safe} non_idempotent"), (location.args, policy)
            if policy.endswith("non_idempotent"):
                re_sent.add((server.value("server_name"), *location.args))
    assert re_sent == {(API_HOST, "=", path) for path in WRITE_PATHS}
    # The admin API's location inherits the safe policy: admin POSTs are never re-sent.
    (admin,) = [loc for loc in api_server.all("location") if loc.args == ["^~", "/v1/admin"]]
    assert next_upstream(api_server, admin) == safe


def test_nginx_accepts_the_config(tmp_path: Path, tls: Tls) -> None:
    site = render_nginx(tmp_path / "nginx", tls, [18180, 18181], [18188, 18189])
    out = site.check()
    assert out.returncode == 0, out.stderr
    assert "syntax is ok" in out.stderr and "test is successful" in out.stderr, out.stderr
    # nginx >= 1.25.1 deprecates "listen ... http2" (Debian 12 ships 1.22, which needs it).
    warnings = [line for line in out.stderr.splitlines()
                if "[warn]" in line and '"listen ... http2" directive is deprecated' not in line]
    assert not warnings, out.stderr


def test_nginx_check_fails_on_a_broken_copy(tmp_path: Path, tls: Tls) -> None:
    """The check really loads the certificate and the snippets: a missing one fails it."""
    site = render_nginx(tmp_path / "nginx", tls, [18180], 18188)
    (site.root / "snippets" / "stemedb-internal.conf").unlink()
    out = site.check()
    assert out.returncode != 0 and "stemedb-internal.conf" in out.stderr, out.stderr
    site = render_nginx(tmp_path / "nginx2", tls, [18180], 18188)
    conf = site.root / "stemedb.conf"
    conf.write_text(conf.read_text().replace(str(tls.key), str(tmp_path / "missing.pem")))
    out = site.check()
    assert out.returncode != 0 and "missing.pem" in out.stderr, out.stderr
    # The upstream and retry directives are read too: a misspelt parameter fails.
    site = render_nginx(tmp_path / "nginx3", tls, [18180, 18181], [18188, 18189])
    conf = site.root / "stemedb.conf"
    conf.write_text(conf.read_text().replace("max_fails=3", "max_fail=3", 1))
    out = site.check()
    assert out.returncode != 0 and "max_fail=3" in out.stderr, out.stderr
    site = render_nginx(tmp_path / "nginx4", tls, [18180, 18181], [18188, 18189])
    conf = site.root / "stemedb.conf"
    conf.write_text(conf.read_text().replace("non_idempotent;", "non_idempotant;", 1))
    out = site.check()
    assert out.returncode != 0 and "non_idempotant" in out.stderr, out.stderr


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, tls: Tls, api: DashboardServer
) -> Iterator[Nginx]:
    site = render_nginx(tmp_path_factory.mktemp("nginx"), tls, [api.port], api.dashboard_port)
    assert site.check().returncode == 0
    site.start()
    yield site
    site.stop()


def test_nginx_health_and_request_ids(nginx: Nginx, tls: Tls) -> None:
    with client(tls, nginx.url) as c:
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready", r.text
        assert r.headers["strict-transport-security"].startswith("max-age=")
        assert c.get("/healthz").status_code == 200
        # nginx's own request id reaches the server, which answers with it.
        assert re.fullmatch(r"[0-9a-f]{32}", c.get("/healthz").headers["x-request-id"])
        # A client's own id is kept end to end.
        assert c.get("/healthz", headers={"x-request-id": "lb-probe-1"}).headers[
            "x-request-id"] == "lb-probe-1"
    entries = [e for e in nginx.access_log() if e["request_id"] == "lb-probe-1"]
    assert entries and entries[0]["status"] == 200 and entries[0]["tls"].startswith("TLSv1.")


def check_tls_versions(port: int) -> None:
    """TLS 1.3 and 1.2 handshakes succeed; 1.1 and 1.0 are refused by the server (the
    client is allowed to offer them with SECLEVEL=0)."""

    def handshake(version: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl_bin(), "s_client", "-connect", f"127.0.0.1:{port}",
             "-servername", API_HOST, version, "-cipher", "DEFAULT:@SECLEVEL=0"],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    for version, name in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
        out = handshake(version)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"New, {name}, Cipher is" in out.stdout, out.stdout
    for version in ("-tls1_1", "-tls1"):
        out = handshake(version)
        assert out.returncode != 0, out.stdout
        assert "alert protocol version" in out.stderr or "unsupported protocol" in out.stderr, (
            out.stderr)


def test_nginx_serves_tls_1_2_and_1_3_only(nginx: Nginx) -> None:
    check_tls_versions(nginx.port)


def test_nginx_plain_http_only_redirects(nginx: Nginx) -> None:
    r = httpx.get(f"http://127.0.0.1:{nginx.http_port}/v1/assertions?subject=paris",
                  headers={"Host": API_HOST})
    assert r.status_code == 301, r.text
    assert r.headers["location"] == f"https://{API_HOST}/v1/assertions?subject=paris"


def test_nginx_signed_write_round_trip(nginx: Nginx, api: DashboardServer, tls: Tls) -> None:
    key = AgentKey.generate()
    body = assertion_body(key, subject="lb-nginx-write")
    headers = signed_headers(key, body)
    with client(tls, nginx.url) as c:
        r = c.post("/v1/assert", content=body, headers=headers)
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        again = c.post("/v1/assert", content=body, headers=headers)  # a client's retry
        assert again.status_code == 200 and again.json()["id"] == aid, again.text
        forged = c.post("/v1/assert", content=body.replace(b"lb-nginx", b"lb-NGINX"),
                        headers=headers)
        assert is_problem(forged, 401)["instance"] == forged.headers["x-request-id"]
    # The server stored the exact bytes that were signed.
    stored = httpx.get(f"{api.url}/v1/assertions/{aid}").json()
    assert stored["lsn"] == r.json()["lsn"]
    assert stored["signature"] == headers["X-Agent-Signature"]
    # The SDK works through the proxy too.
    transport = httpx.HTTPTransport(verify=tls.context())
    with Client(nginx.url, key, transport=transport) as sdk:
        out = sdk.assert_("lb-nginx-sdk", "capital_of", "france", 0.9,
                          evidence=["https://example.org/atlas#p12"])
        assert out["status"] == "accepted", out
        assert sdk.get(out["id"])["status"] == "active"


def test_nginx_body_limits(nginx: Nginx, tls: Tls) -> None:
    key = AgentKey.generate()
    with client(tls, nginx.url) as c:
        exact = padded(key, SINGLE, subject="lb-nginx-exact")
        r = c.post("/v1/assert", content=exact, headers=signed_headers(key, exact))
        assert r.status_code in (201, 202), r.text  # reached the server and was stored
        over = padded(key, SINGLE + 1, subject="lb-nginx-over")
        problem = is_problem(c.post("/v1/assert", content=over,
                                    headers=signed_headers(key, over)), 413)
        assert "64 KiB" in problem["detail"]  # nginx's answer, not the server's
        retract = b'{"retracts":"' + b"0" * 64 + b'"}' + b" " * SINGLE
        is_problem(c.post("/v1/retract", content=retract,
                          headers=signed_headers(key, retract)), 413)
        batch = batch_of(key, 250)
        assert SINGLE < len(batch) < BATCH
        r = c.post("/v1/assert/batch", content=batch, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert {x["status"] for x in r.json()["results"]} <= {"accepted", "quarantined"}
        big = b'{"items": []}' + b" " * (BATCH - 12)
        assert len(big) == BATCH + 1
        is_problem(c.post("/v1/assert/batch", content=big,
                          headers={"Content-Type": "application/json"}), 413)


def test_nginx_admin_and_metrics_are_internal(nginx: Nginx, tls: Tls) -> None:
    with client(tls, nginx.url) as inside:
        assert inside.get("/metrics").status_code == 200
        # The bearer token passes through untouched.
        r = inside.get("/v1/admin/quarantine", headers=AUTH)
        assert r.status_code == 200 and "items" in r.json(), r.text
        is_problem(inside.get("/v1/admin/quarantine", headers={"Authorization": "Bearer x"}), 401)
    with client(tls, nginx.url, source=OUTSIDE) as outside:
        # Full URLs: a relative "//v1/..." would be read as a host name.
        answers = {p: outside.get(nginx.url + p, headers=AUTH) for p in INTERNAL_PATHS}
        assert {p: r.status_code for p, r in answers.items()} == dict.fromkeys(answers, 403)
        for r in answers.values():
            assert "internal" in is_problem(r, 403)["detail"]
        assert outside.get("/v1/search", params={"q": "paris"}).status_code == 200
        assert outside.get("/readyz").status_code == 200


def test_nginx_dashboard_is_internal(nginx: Nginx, api: DashboardServer, tls: Tls) -> None:
    host = {"Host": REVIEW_HOST}
    with client(tls, nginx.url) as inside:
        r = inside.get("/login", headers=host)
        assert r.status_code == 200 and "token" in r.text.lower(), r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        # X-Forwarded-Proto from a trusted proxy: the cookie is marked Secure.
        assert "secure" in r.headers["set-cookie"].lower(), r.headers
    direct = httpx.get(api.dashboard_url + "/login")
    assert "secure" not in direct.headers["set-cookie"].lower()
    with client(tls, nginx.url, source=OUTSIDE) as outside:
        is_problem(outside.get("/login", headers=host), 403)


def test_nginx_read_only_switch(nginx: Nginx, tls: Tls) -> None:
    key = AgentKey.generate()
    with client(tls, nginx.url) as c:
        nginx.read_only_flag.touch()
        try:
            body = assertion_body(key, subject="lb-nginx-read-only")
            r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
            assert "maintenance" in is_problem(r, 503)["detail"]
            assert r.headers["retry-after"] == "60"
            batch = batch_of(key, 2)
            is_problem(c.post("/v1/assert/batch", content=batch,
                              headers={"Content-Type": "application/json"}), 503)
            assert c.get("/v1/search", params={"q": "paris"}).status_code == 200
            assert c.get("/readyz").status_code == 200
        finally:
            nginx.read_only_flag.unlink()
        r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
        assert r.status_code == 201, r.text  # the same signed bytes, stored once it is lifted


def send_through(site: Proxy, tls: Tls) -> tuple[bytes, dict[str, str]]:
    """A signed write and a read through the proxy from outside, each with the admin
    token and a forged X-Forwarded-For / X-Forwarded-Proto: (the write's body, the
    headers sent)."""
    key = AgentKey.generate()
    body = assertion_body(key, subject="lb-wire")
    sent = {**signed_headers(key, body), **AUTH,
            "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"}
    with client(tls, site.url, source=OUTSIDE) as c:
        assert c.post("/v1/assert", content=body, headers=sent).status_code == 200
        assert c.get("/v1/search?q=a", headers=sent).status_code == 200
    return body, sent


def test_nginx_forwards_headers_and_bodies_as_configured(tmp_path: Path, tls: Tls) -> None:
    capture = Capture().start()
    site = render_nginx(tmp_path / "nginx", tls, [capture.port], free_port()).start()
    try:
        body, sent = send_through(site, tls)
    finally:
        site.stop()
        capture.stop()
    write, read = capture.seen
    assert write.body == body
    for seen in (write, read):
        # The forged entry is gone: the server sees only the address nginx saw.
        assert seen.headers["x-forwarded-for"] == OUTSIDE
        assert seen.headers["x-forwarded-proto"] == "https"
        assert seen.headers["x-agent-signature"] == sent["X-Agent-Signature"]
        assert seen.headers["authorization"] == AUTH["Authorization"]
        assert re.fullmatch(r"[0-9a-f]{32}", seen.headers["x-request-id"])
        assert "connection" not in seen.headers  # HTTP/1.1 keep-alive upstream
    assert write.peer_port == read.peer_port  # one upstream connection for both


def test_nginx_answers_503_while_no_server_runs(tmp_path: Path, tls: Tls) -> None:
    """A restart or an upgrade: nginx answers 503 with Retry-After (not a bare 502), so
    clients wait and retry."""
    site = render_nginx(tmp_path / "nginx", tls, [free_port()], free_port()).start()
    try:
        with client(tls, site.url) as c:
            for path in ("/readyz", "/v1/assert"):
                r = c.request("GET" if path == "/readyz" else "POST", path, content=b"{}")
                assert "reached" in is_problem(r, 503)["detail"], path
                assert r.headers["retry-after"] == "5"
    finally:
        site.stop()


@pytest.mark.parametrize("trusted, expected", [(TRUSTED, OUTSIDE), ("", "127.0.0.1")],
                         ids=["trusted-proxy", "proxy-not-trusted"])
def test_nginx_client_address_reaches_the_server_as_configured(
    tmp_path: Path, tls: Tls, trusted: str, expected: str
) -> None:
    """With ``[rate_limit] trusted_proxies`` naming nginx, the server counts each client
    on its own address and ignores forged X-Forwarded-For; without it, every client behind
    nginx shares nginx's address."""
    srv = limited_server(tmp_path / "data", trusted)
    site = render_nginx(tmp_path / "nginx", tls, [srv.port], free_port())
    site.start()
    try:
        forged = {"X-Forwarded-For": "203.0.113.7"}
        with client(tls, site.url, source=OUTSIDE) as c:
            assert counted_on(c, forged) == expected
        with client(tls, site.url, source="127.0.0.3") as other:
            r = other.get("/v1/search", params={"q": "anything"})
            assert r.status_code == (200 if trusted else 429), r.text
    finally:
        site.stop()
        srv.stop()
    # Straight to the server from a trusted address, X-Forwarded-For is believed as it
    # stands: that is why the API must listen where only the proxies can reach it.


def test_nginx_passive_health_check_routes_around_a_node_that_is_not_ready(
    tmp_path: Path, tls: Tls, api: DashboardServer, not_ready: ServerProcess
) -> None:
    site = render_nginx(tmp_path / "nginx", tls, [not_ready.port, api.port], free_port())
    site.start()
    try:
        with client(tls, site.url) as c:
            # Reads work on both nodes (a node short of disk still serves them), so only
            # answers that fail count: here /readyz, 503 on the node that is not ready.
            for _ in range(4):
                assert c.get("/v1/search", params={"q": "paris"}).status_code == 200
            for _ in range(8):
                r = c.get("/readyz")
                assert r.status_code == 200, r.text
        log = [e for e in site.access_log() if e["uri"] == "/readyz"]
    finally:
        site.stop()
    upstreams = [e["upstream_status"] for e in log]
    # The node answering 503 was tried, the request passed on to the other node; after
    # max_fails (3) failures it got no requests at all for fail_timeout.
    assert upstreams.count("503, 200") == 3, upstreams
    assert upstreams[-2:] == ["200", "200"], upstreams


# -- Envoy --------------------------------------------------------------------------------


def test_envoy_config_structure() -> None:
    """What Envoy's validation cannot know: the config implements the same policy as the
    nginx one and the SPEC (ports, paths, limits, retries, health checks)."""
    doc = envoy_doc()
    https = listener(doc, "stemedb_https")
    assert https["address"]["socket_address"]["port_value"] == 443
    (chain,) = https["filter_chains"]
    tls_ctx = chain["transport_socket"]["typed_config"]
    assert tls_ctx["@type"].endswith("DownstreamTlsContext")
    params = tls_ctx["common_tls_context"]["tls_params"]
    assert (params["tls_minimum_protocol_version"], params["tls_maximum_protocol_version"]) == (
        "TLSv1_2", "TLSv1_3")
    certs = tls_ctx["common_tls_context"]["tls_certificates"][0]
    assert certs["certificate_chain"]["filename"] in NGINX_SITE.read_text()
    assert certs["private_key"]["filename"] in NGINX_SITE.read_text()
    manager = hcm(https)
    assert manager["use_remote_address"] is True and manager["xff_num_trusted_hops"] == 0
    assert manager.get("skip_xff_append", False) is False
    assert manager["normalize_path"] is True and manager["merge_slashes"] is True
    assert hcm(listener(doc, "stemedb_http"))["route_config"]["virtual_hosts"][0]["routes"][0][
        "redirect"] == {"https_redirect": True}

    # Every route's cluster exists; the clusters point at the default ports.
    names = {c["name"] for c in doc["static_resources"]["clusters"]}
    for vhost in manager["route_config"]["virtual_hosts"]:
        for r in vhost["routes"]:
            assert "route" in r or "direct_response" in r, r
            if "route" in r:
                assert r["route"]["cluster"] in names, r
    api_cluster, dashboard = cluster(doc, "stemedb_api"), cluster(doc, "stemedb_dashboard")
    for c in (api_cluster, dashboard):
        assert c["load_assignment"]["cluster_name"] == c["name"]
    # Two or more nodes: the defaults, and the second node of the template's example.
    assert endpoints(api_cluster) == [("127.0.0.1", DEFAULTS.server.port),
                                      ("127.0.0.1", DEFAULTS.server.port + 1)]
    assert endpoints(dashboard) == [("127.0.0.1", DEFAULTS.server.dashboard_port),
                                    ("127.0.0.1", DEFAULTS.server.dashboard_port + 1)]

    # Active health checks on /readyz (SPEC §1: load balancers use /readyz).
    (check,) = api_cluster["health_checks"]
    assert check["http_health_check"]["path"] == "/readyz"
    assert check["unhealthy_threshold"] >= 2 and check["healthy_threshold"] >= 2
    keep_alive = uvicorn_config(None, "127.0.0.1", 0).timeout_keep_alive
    for c in (api_cluster, dashboard):
        options = c["typed_extension_protocol_options"][
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert seconds(options["common_http_protocol_options"]["idle_timeout"]) < keep_alive

    # Body limits: the same as nginx's and the server's defaults.
    filters = {f["name"]: f for f in manager["http_filters"]}
    assert list(filters)[-1] == "envoy.filters.http.router"
    assert typed(filters["envoy.filters.http.buffer"])["max_request_bytes"] == SINGLE
    nginx_values = nginx_config_values()
    assert nginx_size(nginx_values["single"]) == SINGLE
    routes = api_routes(doc)
    (batch,) = [r for r in routes if r["match"].get("path") == "/v1/assert/batch"]
    per_route = batch["typed_per_filter_config"]["envoy.filters.http.buffer"]
    assert per_route["buffer"]["max_request_bytes"] == BATCH == nginx_size(nginx_values["batch"])
    assert seconds(batch["route"]["timeout"]) == seconds(nginx_values["batch_read_timeout"])

    assert "retry_policy" in batch["route"]  # see test_envoy_retries_only_what_is_safe_to_repeat
    assert batch["request_body_buffer_limit"] == BATCH  # kept whole, for a retry

    # The read-only switch: off by default, a 503 for the three write paths.
    (switch,) = [r for r in routes if "direct_response" in r]
    assert switch["direct_response"]["status"] == 503
    fraction = switch["match"]["runtime_fraction"]
    assert fraction["runtime_key"] == "stemedb.read_only"
    assert fraction["default_value"]["numerator"] == 0
    runtime = {layer["name"]: layer for layer in doc["layered_runtime"]["layers"]}
    assert runtime["defaults"]["static_layer"]["stemedb.read_only"] == 0 and "admin" in runtime
    regex = re.compile(switch["match"]["safe_regex"]["regex"])
    assert all(regex.match(p) for p in ("/v1/assert", "/v1/assert/batch", "/v1/retract"))
    assert not regex.match("/v1/assertions")
    assert routes.index(switch) == 0

    # The admin API, /metrics and the dashboard are internal only.
    policies = typed(filters["envoy.filters.http.rbac"])["rules"]["policies"]
    guarded = policies["public"]["permissions"][0]["not_rule"]["or_rules"]["rules"]
    paths = {next(iter(g["url_path"]["path"].values())) for g in guarded if "url_path" in g}
    assert paths == {"/v1/admin", "/metrics"}
    allowed = {(p["direct_remote_ip"]["address_prefix"], p["direct_remote_ip"]["prefix_len"])
               for p in policies["internal"]["principals"]}
    internal = (NGINX_DIR / "snippets" / "stemedb-internal.conf").read_text()
    nginx_allowed = set(re.findall(r"^allow\s+(\S+);", internal, re.M))
    assert {f"{a}/{n}" if n not in (32, 128) else a for a, n in allowed} == nginx_allowed
    assert doc["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    (monitor,) = doc["overload_manager"]["resource_monitors"]
    assert typed(monitor)["max_active_downstream_connections"] > 0


def route_for(routes: list[dict[str, Any]], method: str, path: str) -> dict[str, Any]:
    """The route Envoy picks for a request (the match kinds the shipped config uses; a
    runtime fraction that is off never matches)."""
    for r in routes:
        m = r["match"]
        if m.get("runtime_fraction", {}).get("default_value", {}).get("numerator", 1) == 0:
            continue
        if "path" in m and path != m["path"] or "prefix" in m and not path.startswith(
                m["prefix"]):
            continue
        if "safe_regex" in m and not re.fullmatch(m["safe_regex"]["regex"], path):
            continue
        methods = [h["string_match"]["safe_regex"]["regex"] for h in m.get("headers", [])
                   if h["name"] == ":method"]
        if methods and not re.fullmatch(methods[0], method):
            continue
        return r
    raise AssertionError(f"no route for {method} {path}")


ALL_FAILURES = {"connect-failure", "refused-stream", "reset", "gateway-error"}
NEVER_SENT = {"connect-failure", "refused-stream"}  # the node never saw the request


def retry_kind(route: dict[str, Any]) -> str:
    """``read``, ``write`` or ``unsent`` (retried only when no node saw the request)."""
    policy = route["route"]["retry_policy"]
    on = set(policy["retry_on"].split(","))
    assert not on & {"5xx", "retriable-4xx", "retriable-status-codes"}, on  # never a 429
    (predicate,) = policy["retry_host_predicate"]
    assert predicate["name"] == "envoy.retry_host_predicates.previous_hosts"
    if on == ALL_FAILURES and "per_try_timeout" in policy:
        return "read"
    if on == ALL_FAILURES:
        assert policy["num_retries"] == 1  # one other node; then the client's Retry-After
        return "write"
    assert on <= NEVER_SENT, on
    return "unsent"


def test_envoy_retries_only_what_is_safe_to_repeat() -> None:
    """Reads and the three signed-write routes (idempotent by construction) are retried
    on another node after any failure; everything else, admin and dashboard POSTs above
    all, only when the connection could not be opened. The same policy as nginx's."""
    doc = envoy_doc()
    vhosts = {v["name"]: v["routes"] for v in
              hcm(listener(doc, "stemedb_https"))["route_config"]["virtual_hosts"]}
    expected = {
        ("stemedb_api", "GET", "/v1/assertions/abc"): "read",
        ("stemedb_api", "HEAD", "/v1/search"): "read",
        ("stemedb_api", "GET", "/v1/admin/quarantine"): "read",
        **{("stemedb_api", "POST", path): "write" for path in WRITE_PATHS},
        ("stemedb_api", "POST", "/v1/admin/quarantine/abc/approve"): "unsent",
        ("stemedb_api", "POST", "/v1/admin/quarantine/batch"): "unsent",
        ("stemedb_api", "POST", "/v1/admin/circuit_breakers/abc/open"): "unsent",
        ("stemedb_api", "PUT", "/v1/admin/content_defense/thresholds"): "unsent",
        ("stemedb_api", "DELETE", "/v1/admin/content_defense/allowlist/abc"): "unsent",
        ("stemedb_dashboard", "GET", "/quarantine"): "read",
        ("stemedb_dashboard", "POST", "/login"): "unsent",
        ("stemedb_dashboard", "POST", "/quarantine/abc/approve"): "unsent",
    }
    found = {(v, m, p): retry_kind(route_for(vhosts[v], m, p)) for v, m, p in expected}
    assert found == expected
    # Writes wait for a slow node (no per-try timeout) instead of sending twice the work.
    for path in WRITE_PATHS:
        assert "per_try_timeout" not in route_for(vhosts["stemedb_api"], "POST", path)[
            "route"]["retry_policy"]
    # Health probes are never retried: they ask about one node.
    for path in ("/readyz", "/healthz"):
        assert "retry_policy" not in route_for(vhosts["stemedb_api"], "GET", path)["route"]
    # Every route that reaches a cluster has a policy (none is left to Envoy's default).
    for routes in vhosts.values():
        for r in routes:
            if "route" in r and r["match"].get("path") not in ("/readyz", "/healthz"):
                assert "retry_policy" in r["route"], r["match"]


def test_envoy_validates_the_config(tmp_path: Path, tls: Tls) -> None:
    site = render_envoy(tmp_path / "envoy", tls, [18180, 18181], [18188, 18189])
    exact = tmp_path / "exact.yaml"  # the shipped file with only the certificate moved
    text = ENVOY_CONFIG.read_text()
    text = text.replace("/etc/ssl/stemedb/fullchain.pem", str(tls.cert))
    exact.write_text(text.replace("/etc/ssl/stemedb/privkey.pem", str(tls.key)))
    for conf in (exact, site.conf):
        out = subprocess.run([envoy_bin(), "--mode", "validate", "-c", str(conf)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and f"configuration '{conf}' OK" in out.stdout + out.stderr, (
            out.stdout + out.stderr)
        assert "deprecated" not in (out.stdout + out.stderr).lower()


def test_envoy_validation_fails_on_a_broken_copy(tmp_path: Path, tls: Tls) -> None:
    site = render_envoy(tmp_path / "envoy", tls, [18180], 18188)
    doc = yaml.safe_load(site.conf.read_text())
    api_routes(doc)[1]["route"]["cluster"] = "no_such_cluster"
    site.conf.write_text(yaml.safe_dump(doc))
    out = site.validate()
    assert out.returncode != 0 and "no_such_cluster" in out.stdout + out.stderr
    # The retry policies are read too: a retry host predicate that does not exist fails.
    site = render_envoy(tmp_path / "envoy2", tls, [18180, 18181], [18188, 18189])
    doc = yaml.safe_load(site.conf.read_text())
    route = route_for(api_routes(doc), "POST", "/v1/assert")
    route["route"]["retry_policy"]["retry_host_predicate"][0]["typed_config"]["@type"] += "X"
    site.conf.write_text(yaml.safe_dump(doc))
    out = site.validate()
    assert out.returncode != 0 and "PreviousHostsPredicateX" in out.stdout + out.stderr


@pytest.fixture(scope="module")
def envoy(
    tmp_path_factory: pytest.TempPathFactory, tls: Tls, api: DashboardServer,
    not_ready: ServerProcess,
) -> Iterator[Envoy]:
    site = render_envoy(tmp_path_factory.mktemp("envoy") / "envoy", tls,
                        [not_ready.port, api.port], api.dashboard_port)
    envoy_bin()
    site.start()
    yield site
    site.stop()


def test_envoy_active_health_check_takes_a_node_out(
    envoy: Envoy, api: DashboardServer, not_ready: ServerProcess, tls: Tls
) -> None:
    deadline = time.monotonic() + 20
    while True:
        health = envoy.host_health("stemedb_api")
        if health.get(api.port) == ["healthy"] and "/failed_active_hc" in health.get(
                not_ready.port, []):
            break
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    # Every request goes to the ready node; none to the one whose /readyz answers 503.
    with client(tls, envoy.url) as c:
        for _ in range(8):
            r = c.get("/readyz")
            assert r.status_code == 200, r.text
    stats = httpx.get(envoy.admin + "/stats?filter=cluster.stemedb_api.health_check").text
    assert re.search(r"health_check\.failure: [1-9]", stats), stats


def test_envoy_serves_tls_1_2_and_1_3_only(envoy: Envoy) -> None:
    check_tls_versions(envoy.port)


def test_envoy_signed_write_round_trip(envoy: Envoy, api: DashboardServer, tls: Tls) -> None:
    key = AgentKey.generate()
    body = assertion_body(key, subject="lb-envoy-write")
    headers = signed_headers(key, body)
    wait_healthy(envoy, api.port)
    with client(tls, envoy.url) as c:
        r = c.post("/v1/assert", content=body, headers=headers)
        assert r.status_code == 201, r.text
        again = c.post("/v1/assert", content=body, headers=headers)
        assert again.status_code == 200 and again.json()["id"] == r.json()["id"], again.text
        is_problem(c.post("/v1/assert", content=body + b" ", headers=headers), 401)
        assert c.get("/readyz", headers={"x-request-id": "envoy-probe-1"}).headers[
            "x-request-id"] == "envoy-probe-1"
    stored = httpx.get(f"{api.url}/v1/assertions/{r.json()['id']}").json()
    assert stored["signature"] == headers["X-Agent-Signature"]
    with Client(envoy.url, key, transport=httpx.HTTPTransport(verify=tls.context())) as sdk:
        out = sdk.assert_("lb-envoy-sdk", "capital_of", "france", 0.9,
                          evidence=["https://example.org/atlas#p12"])
        assert out["status"] == "accepted", out


def test_envoy_body_limits(envoy: Envoy, api: DashboardServer, tls: Tls) -> None:
    wait_healthy(envoy, api.port)
    key = AgentKey.generate()
    with client(tls, envoy.url) as c:
        exact = padded(key, SINGLE, subject="lb-envoy-exact")
        r = c.post("/v1/assert", content=exact, headers=signed_headers(key, exact))
        assert r.status_code in (201, 202), r.text
        over = padded(key, SINGLE + 1, subject="lb-envoy-over")
        is_problem(c.post("/v1/assert", content=over, headers=signed_headers(key, over)), 413)
        batch = batch_of(key, 250)
        r = c.post("/v1/assert/batch", content=batch, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        big = b'{"items": []}' + b" " * (BATCH - 12)
        is_problem(c.post("/v1/assert/batch", content=big,
                          headers={"Content-Type": "application/json"}), 413)


def test_envoy_admin_metrics_and_dashboard_are_internal(
    envoy: Envoy, api: DashboardServer, tls: Tls
) -> None:
    wait_healthy(envoy, api.port)
    with client(tls, envoy.url) as inside:
        assert inside.get("/metrics").status_code == 200
        assert inside.get("/v1/admin/quarantine", headers=AUTH).status_code == 200
        r = inside.get("/login", headers={"Host": REVIEW_HOST})
        assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower(), r.headers
    with client(tls, envoy.url, source=OUTSIDE) as outside:
        answers = {p: outside.get(envoy.url + p, headers=AUTH) for p in INTERNAL_PATHS}
        statuses = {p: r.status_code for p, r in answers.items()}
        # Envoy refuses an escaped slash outright (path_with_escaped_slashes_action).
        assert statuses == {**dict.fromkeys(answers, 403), "/v1/admin%2Fquarantine": 400}
        for r in answers.values():
            is_problem(r, r.status_code)
        is_problem(outside.get("/login", headers={"Host": REVIEW_HOST}), 403)
        assert outside.get("/v1/search", params={"q": "paris"}).status_code == 200


def test_envoy_read_only_switch(envoy: Envoy, api: DashboardServer, tls: Tls) -> None:
    wait_healthy(envoy, api.port)
    key = AgentKey.generate()
    body = assertion_body(key, subject="lb-envoy-read-only")

    def switch(percent: int) -> None:
        r = httpx.post(f"{envoy.admin}/runtime_modify?stemedb.read_only={percent}", timeout=5)
        assert r.status_code == 200, r.text

    with client(tls, envoy.url) as c:
        switch(100)
        try:
            r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
            assert "maintenance" in is_problem(r, 503)["detail"]
            assert r.headers["retry-after"] == "60"
            assert c.get("/v1/search", params={"q": "paris"}).status_code == 200
        finally:
            switch(0)
        r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
        assert r.status_code == 201, r.text


def test_envoy_forwards_headers_and_bodies_as_configured(tmp_path: Path, tls: Tls) -> None:
    capture = Capture().start()
    site = render_envoy(tmp_path / "envoy", tls, [capture.port], free_port()).start()
    try:
        wait_healthy(site, capture.port)
        body, sent = send_through(site, tls)
        r = httpx.get(f"http://127.0.0.1:{site.http_port}/v1/search?q=a",
                      headers={"Host": API_HOST})
        assert r.status_code == 301 and r.headers["location"] == (
            f"https://{API_HOST}/v1/search?q=a"), r.headers
    finally:
        site.stop()
        capture.stop()
    write, read = [s for s in capture.seen if s.path != "/readyz"]
    assert write.body == body
    for seen in (write, read):
        # Envoy appends the address it saw; the server reads from the right, so the
        # forged entry on the left is never the client.
        assert seen.headers["x-forwarded-for"] == f"203.0.113.7,{OUTSIDE}"
        assert seen.headers["x-forwarded-proto"] == "https"
        assert seen.headers["x-agent-signature"] == sent["X-Agent-Signature"]
        assert seen.headers["authorization"] == AUTH["Authorization"]
        assert seen.headers["x-request-id"]
    assert write.peer_port == read.peer_port  # one upstream connection for both


def test_envoy_keeps_a_single_node_that_is_not_ready_for_reads(
    tmp_path: Path, tls: Tls, not_ready: ServerProcess
) -> None:
    """With one node, failing its health check does not cut clients off (panic routing):
    reads are served, and writes get the node's own 503 with its reason."""
    site = render_envoy(tmp_path / "envoy", tls, [not_ready.port], free_port()).start()
    try:
        deadline = time.monotonic() + 20
        while "/failed_active_hc" not in site.host_health("stemedb_api").get(not_ready.port, []):
            assert time.monotonic() < deadline, site.host_health("stemedb_api")
            time.sleep(0.2)
        key = AgentKey.generate()
        body = assertion_body(key, subject="lb-envoy-not-ready")
        with client(tls, site.url) as c:
            assert c.get("/v1/search", params={"q": "paris"}).status_code == 200
            r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
            assert "disk low" in is_problem(r, 503)["detail"]
    finally:
        site.stop()


def test_envoy_answers_503_while_no_server_runs(tmp_path: Path, tls: Tls) -> None:
    site = render_envoy(tmp_path / "envoy", tls, [free_port()], free_port()).start()
    try:
        with client(tls, site.url) as c:
            for method, path in (("GET", "/readyz"), ("POST", "/v1/assert")):
                r = c.request(method, path, content=b"{}")
                is_problem(r, 503)
                assert r.headers["retry-after"] == "5"
    finally:
        site.stop()


def test_envoy_client_address_reaches_the_server_as_configured(
    tmp_path: Path, tls: Tls, limited: ServerProcess
) -> None:
    site = render_envoy(tmp_path / "envoy", tls, [limited.port], free_port()).start()
    try:
        wait_healthy(site, limited.port)
        with client(tls, site.url, source="127.0.0.4") as c:
            assert counted_on(c, {"X-Forwarded-For": "203.0.113.7"}) == "127.0.0.4"
        with client(tls, site.url, source="127.0.0.5") as other:
            assert other.get("/v1/search", params={"q": "anything"}).status_code == 200
    finally:
        site.stop()
