"""deploy/nginx and deploy/envoy in front of two nodes: health checks, failover when a node
is killed, and the retry policy - a request goes to a second node only when repeating it
is safe.

What may be re-sent after a node received it: GETs, and the signed writes (``POST
/v1/assert``, ``/v1/retract``, ``/v1/assert/batch``), which are idempotent by
construction (the id is the hash of the signed bytes; a repeat is answered 200 with the
original outcome). Never an admin or dashboard POST: a second approve answers 409, a
second breaker open is journaled twice. Any request may go to another node when the
first one could not even be connected to.

The nodes are real ``stemedb serve`` processes on separate data directories: that is
enough to see what the proxies do (in cluster mode the nodes share PostgreSQL, so what
one node stored the other one knows; tests/cluster covers that). Three ways a node fails:

- killed (``kill -9``): connections are refused, nothing reaches it;
- not ready (disk low): it answers writes and admin changes 503 without doing them;
- lossy (:class:`LossyNode`): it does the work, then the answer is lost - the case where
  only idempotency makes a repeat safe.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stemedb.signing import AgentKey
from tests.deploy.proxies import (
    AUTH,
    SINGLE,
    TOKEN,
    TRUSTED,
    Envoy,
    LossyNode,
    Nginx,
    Tls,
    batch_of,
    client,
    is_problem,
    padded,
    render_envoy,
    render_nginx,
    wait_healthy,
)
from tests.e2e.conftest import DashboardServer
from tests.helpers import ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


# -- requests -----------------------------------------------------------------------------


def rid() -> dict[str, str]:
    """A request id of our own, to find the request in the proxy's access log."""
    return {"x-request-id": uuid.uuid4().hex}


def write(c: httpx.Client, key: AgentKey, size: int = 0) -> tuple[httpx.Response, str]:
    """A new signed assertion (padded to ``size`` bytes); (answer, request id)."""
    subject = f"lb-failover-{uuid.uuid4().hex[:12]}"
    body = padded(key, size, subject=subject) if size else assertion_body(key, subject=subject)
    headers = {**signed_headers(key, body), **rid()}
    return c.post("/v1/assert", content=body, headers=headers), headers["x-request-id"]


def batch(c: httpx.Client, key: AgentKey) -> tuple[httpx.Response, str]:
    headers = {**JSON, **rid()}
    body = batch_of(key, 3, context=f"lb-failover-{uuid.uuid4().hex[:12]}")
    return c.post("/v1/assert/batch", content=body, headers=headers), headers["x-request-id"]


def open_breaker(c: httpx.Client) -> tuple[httpx.Response, str, str]:
    """An admin POST that is not idempotent: open a fresh agent's breaker; (answer,
    request id, agent id)."""
    agent = AgentKey.generate().agent_id
    headers = {**AUTH, **JSON, **rid()}
    r = c.post(f"/v1/admin/circuit_breakers/{agent}/open", headers=headers,
               content=orjson.dumps({"reason": "lb-failover", "duration_seconds": 600}))
    return r, headers["x-request-id"], agent


def read(c: httpx.Client) -> tuple[httpx.Response, str]:
    headers = rid()
    return c.get("/v1/search", params={"q": "paris"}, headers=headers), headers["x-request-id"]


def until(send: Callable[[], tuple[Any, ...]], happened: Callable[[str], bool],
          tries: int = 3) -> tuple[Any, ...]:
    """Send until the proxy's log shows that the thing looked for happened to one of the
    requests (round robin: which node a request reaches first is the proxy's choice)."""
    for _ in range(tries):
        out = send()
        if happened(out[1]):
            return out
    raise AssertionError(f"not seen in {tries} requests")


def stored(node: ServerProcess, assertion_id: str) -> dict[str, Any]:
    r = httpx.get(f"{node.url}/v1/assertions/{assertion_id}", timeout=5)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def breaker_state(node: ServerProcess, agent: str) -> str:
    r = httpx.get(f"{node.url}/v1/admin/circuit_breakers/{agent}",
                  headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 200, r.text
    state: str = r.json()["state"]
    return state


def writes_replayed(node: ServerProcess) -> float:
    text = httpx.get(node.url + "/metrics", timeout=5).text
    m = re.search(r'^stemedb_writes_total\{kind="assert",outcome="replayed"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


# -- nodes --------------------------------------------------------------------------------


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[ServerProcess]:
    """A second node, to be killed."""
    srv = ServerProcess(tmp_path / "victim" / "data",
                        env={"STEMEDB_TRUSTED_PROXIES": TRUSTED, "STEMEDB_ADMIN_TOKEN": TOKEN})
    srv.data_dir.parent.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def lossy(api: DashboardServer) -> Iterator[LossyNode]:
    node = LossyNode(target=api.url)
    node.start()
    yield node
    node.stop()


def retried_nginx(site: Nginx, first: int, then: int) -> Callable[[str], bool]:
    """Whether nginx passed the request from the node on port ``first`` to ``then``."""
    def check(request_id: str) -> bool:
        entry = site.logged(request_id)
        return bool(entry["upstream"] == f"127.0.0.1:{first}, 127.0.0.1:{then}")
    return check


def retried_envoy(site: Envoy) -> Callable[[str], bool]:
    return lambda request_id: str(site.logged(request_id)["attempts"]) == "2"


# -- a node killed ------------------------------------------------------------------------


def test_both_proxies_fail_over_when_a_node_is_killed(
    tmp_path: Path, tls: Tls, api: DashboardServer, victim: ServerProcess
) -> None:
    """Both nodes serve; then one is killed. Every kind of request still succeeds: sent to
    the dead node first, it is passed to the live one - a POST too, admin POSTs included,
    because a refused connection means no node saw it. Then the dead node is taken out:
    by Envoy's active /readyz check, by nginx after max_fails failed attempts."""
    nodes = [victim.port, api.port]
    # Checks every 3 s: the requests below reach the dead node before the check (two
    # failures) takes it out, even on a busy machine.
    envoy = render_envoy(tmp_path / "envoy", tls, nodes, api.dashboard_port,
                         check_every="3s").start()
    nginx = render_nginx(tmp_path / "nginx", tls, nodes, api.dashboard_port).start()
    key = AgentKey.generate()
    try:
        wait_healthy(envoy, *nodes)
        for site, upstream in ((nginx, "upstream"), (envoy, "upstream")):
            with client(tls, site.url) as c:
                ids = [read(c)[1] for _ in range(4)]
            reached = {site.logged(i)[upstream] for i in ids}
            assert reached == {f"127.0.0.1:{p}" for p in nodes}, reached  # both nodes serve

        victim.kill9()
        written = []
        # Envoy first: its health check soon takes the node out.
        with client(tls, envoy.url) as c:
            for send in (lambda: open_breaker(c), lambda: write(c, key), lambda: read(c)):
                r, *_ = until(send, retried_envoy(envoy))
                assert r.status_code in (200, 201), r.text
                if r.request.url.path == "/v1/assert":
                    written.append(r.json()["id"])
        with client(tls, nginx.url) as c:
            refused_then_live = retried_nginx(nginx, victim.port, api.port)
            for send in (lambda: open_breaker(c), lambda: write(c, key), lambda: read(c)):
                r, request_id, *_ = until(send, refused_then_live)
                assert r.status_code in (200, 201), r.text
                assert nginx.logged(request_id)["upstream_status"].startswith("502, ")
                if r.request.url.path == "/v1/assert":
                    written.append(r.json()["id"])
            # Three failures within fail_timeout: the dead node gets no more requests.
            for _ in range(4):
                r, request_id = write(c, key)
                assert r.status_code == 201, r.text
                assert nginx.logged(request_id)["upstream"] == f"127.0.0.1:{api.port}"
                written.append(r.json()["id"])
        for assertion_id in written:
            assert stored(api, assertion_id)["status"] == "active"

        deadline = time.monotonic() + 20
        while "/failed_active_hc" not in envoy.host_health("stemedb_api").get(victim.port, []):
            assert time.monotonic() < deadline, envoy.host_health("stemedb_api")
            time.sleep(0.2)
        with client(tls, envoy.url) as c:
            for _ in range(4):
                r, request_id = write(c, key)
                assert r.status_code == 201, r.text
                entry = envoy.logged(request_id)
                assert (entry["upstream"], str(entry["attempts"])) == (
                    f"127.0.0.1:{api.port}", "1")
    finally:
        nginx.stop()
        envoy.stop()


# -- a node that refuses (503) ------------------------------------------------------------


def test_nginx_passes_refused_writes_on_but_not_admin_posts(
    tmp_path: Path, tls: Tls, api: DashboardServer, not_ready: ServerProcess
) -> None:
    """A node that is not ready answers writes and admin changes 503 without doing them.
    nginx passes the signed write (and the batch) on to the other node, which stores it;
    the admin POST it does not re-send: the client gets the node's own 503 and reason."""
    site = render_nginx(tmp_path / "nginx", tls, [not_ready.port, api.port],
                        api.dashboard_port).start()
    key = AgentKey.generate()
    refused_then_stored = retried_nginx(site, not_ready.port, api.port)
    try:
        with client(tls, site.url) as c:
            r, request_id = until(lambda: write(c, key), refused_then_stored)
            assert r.status_code == 201, r.text
            assert site.logged(request_id)["upstream_status"] == "503, 201"
            assert stored(api, r.json()["id"])["lsn"] == r.json()["lsn"]
            r, request_id = until(lambda: batch(c, key), refused_then_stored)
            assert r.status_code == 200, r.text
            assert {x["status"] for x in r.json()["results"]} <= {"accepted", "quarantined"}
            assert site.logged(request_id)["upstream_status"] == "503, 200"

            def refused_only(request_id: str) -> bool:
                return bool(site.logged(request_id)["upstream"] == f"127.0.0.1:{not_ready.port}")

            r, request_id, agent = until(lambda: open_breaker(c), refused_only)
            assert "disk low" in is_problem(r, 503)["detail"]  # the node's answer, as it was
            assert site.logged(request_id)["upstream_status"] == "503"
            assert breaker_state(api, agent) == "CLOSED"  # not opened elsewhere either
    finally:
        site.stop()


# -- a node that does the work and loses the answer ---------------------------------------


def check_lost_answers(c: httpx.Client, lossy: LossyNode, api: DashboardServer,
                       attempts: Callable[[str], int]) -> None:
    """Through a proxy over [lossy, api]: a signed write, then a batch, whose answer the
    lossy node lost after storing it, are re-sent and answered 200 with the original
    outcome, stored once; an admin POST whose answer was lost is not re-sent - the client
    gets a 503 (and retries when it knows the breaker is not open)."""
    key = AgentKey.generate()
    replayed = writes_replayed(api)
    r, request_id = until(lambda: write(c, key, size=SINGLE), lossy.lost)
    assert r.status_code == 200, r.text  # the second node found it stored
    assert attempts(request_id) == 2
    out = r.json()
    assert out["status"] == "accepted" and stored(api, out["id"])["lsn"] == out["lsn"]
    assert writes_replayed(api) == replayed + 1  # stored once, answered again

    r, request_id = until(lambda: batch(c, key), lossy.lost)
    assert r.status_code == 200 and attempts(request_id) == 2, r.text
    results = r.json()["results"]  # each item as first stored, marked as a repeat
    assert [(x["status"], x["http_status"]) for x in results] == [("accepted", 200)] * 3, results
    for x in results:
        assert stored(api, x["id"])["lsn"] == x["lsn"]

    r, request_id, agent = until(lambda: open_breaker(c), lossy.lost)
    is_problem(r, 503)
    assert attempts(request_id) == 1
    assert breaker_state(api, agent) == "OPEN"  # done once, by the node that lost the answer


def test_nginx_re_sends_writes_whose_answer_was_lost_but_not_admin_posts(
    tmp_path: Path, tls: Tls, api: DashboardServer, lossy: LossyNode
) -> None:
    site = render_nginx(tmp_path / "nginx", tls, [lossy.port, api.port],
                        api.dashboard_port).start()
    try:
        with client(tls, site.url) as c:
            check_lost_answers(c, lossy, api, lambda request_id: len(
                site.logged(request_id)["upstream"].split(", ")))
    finally:
        site.stop()


def test_envoy_re_sends_writes_whose_answer_was_lost_but_not_admin_posts(
    tmp_path: Path, tls: Tls, api: DashboardServer, lossy: LossyNode
) -> None:
    site = render_envoy(tmp_path / "envoy", tls, [lossy.port, api.port],
                        api.dashboard_port).start()
    try:
        wait_healthy(site, lossy.port, api.port)  # its GETs, /readyz too, pass through
        with client(tls, site.url) as c:
            check_lost_answers(c, lossy, api, lambda request_id: int(
                site.logged(request_id)["attempts"]))
    finally:
        site.stop()
