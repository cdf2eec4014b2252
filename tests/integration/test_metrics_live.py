"""GET /metrics on a real server process after real traffic."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.live import exercise, metrics_server, scrape
from tests.helpers import ROOT, ServerProcess

pytestmark = pytest.mark.integration

WRITES = 3


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with metrics_server(tmp_path_factory.mktemp("metrics") / "data") as srv:
        exercise(srv.url, writes=WRITES)
        yield srv, scrape(srv.url)


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def test_content_type_and_format(live: tuple[ServerProcess, str]) -> None:
    srv, _ = live
    r = httpx.get(srv.url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    assert list(text_string_to_metric_families(r.text))


def test_http_requests_by_route_template(live: tuple[ServerProcess, str]) -> None:
    _, text = live
    assert (
        sample(text, "stemedb_http_requests_total", method="POST", route="/v1/assert", status="201")
        == WRITES
    )
    assert (
        sample(text, "stemedb_http_requests_total", method="POST", route="/v1/assert", status="200")
        == 1
    )
    assert (
        sample(
            text,
            "stemedb_http_requests_total",
            method="GET",
            route="/v1/assertions/{assertion_id}",
            status="200",
        )
        == 1
    )
    assert (
        sample(
            text,
            "stemedb_http_requests_total",
            method="GET",
            route="/v1/assertions/{assertion_id}",
            status="404",
        )
        == 1
    )
    assert (
        sample(text, "stemedb_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        sample(
            text, "stemedb_http_request_duration_seconds_count", method="POST", route="/v1/assert"
        )
        == WRITES + 1
    )
    routes = {
        s.labels["route"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if "route" in s.labels
    }
    assert all(r == "unmatched" or r.startswith("/") for r in routes)
    assert not [r for r in routes if "0000000000" in r or "/no/such" in r]


def test_journal_index_and_health(live: tuple[ServerProcess, str]) -> None:
    _, text = live
    assert sample(text, "stemedb_wal_last_lsn") == WRITES
    assert sample(text, "stemedb_index_applied_lsn") == WRITES
    assert sample(text, "stemedb_index_lag_records") == 0
    assert sample(text, "stemedb_search_lag_records") is not None
    assert sample(text, "stemedb_wal_group_commit_size_sum") == WRITES
    assert (sample(text, "stemedb_wal_fsync_duration_seconds_count") or 0) >= 1
    assert (sample(text, "stemedb_wal_bytes_total") or 0) > 0
    assert sample(text, "stemedb_ready") == 1
    assert sample(text, "stemedb_journal_read_only") == 0
    assert (sample(text, "stemedb_disk_free_bytes") or 0) > 0
    assert any(
        s.name == "stemedb_build_info" and s.value == 1
        for f in text_string_to_metric_families(text)
        for s in f.samples
    )


def test_the_scrape_follows_new_writes(live: tuple[ServerProcess, str]) -> None:
    srv, _ = live
    exercise(srv.url, writes=2)
    text = scrape(srv.url)
    assert sample(text, "stemedb_wal_last_lsn") == WRITES + 2
    assert sample(text, "stemedb_index_applied_lsn") == WRITES + 2


def test_writes_by_outcome(live: tuple[ServerProcess, str]) -> None:
    _, text = live
    stored = sum(
        sample(text, "stemedb_writes_total", kind="assert", outcome=o) or 0
        for o in ("accepted", "quarantined")
    )
    assert stored == WRITES
    assert sample(text, "stemedb_writes_total", kind="assert", outcome="replayed") == 1
    assert sample(text, "stemedb_ingest_rate_per_minute") == WRITES


RUNBOOK = ROOT / "docs" / "runbooks" / "high-query-latency.md"
NOT_HERE = ("systemctl", "journalctl", "top ", "iostat", "py-spy", "promtool")


def test_runbook_commands_run_against_the_live_server(live: tuple[ServerProcess, str]) -> None:
    """The runbook's ``sh`` blocks, run as written against this server and data directory
    (blocks needing systemd, Prometheus or host tools are left out)."""
    srv, _ = live
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(), re.S)
    variables, *rest = blocks  # the first block sets STEMEDB and DATA unless given
    assert "STEMEDB=" in variables and "DATA=" in variables
    runnable = [b for b in rest if not any(word in b for word in NOT_HERE)]
    assert len(runnable) >= 3
    env = {**os.environ, "STEMEDB": srv.url, "DATA": str(srv.data_dir)}
    for block in runnable:
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", variables + block],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, f"{block}\n---\n{r.stdout}{r.stderr}"
        assert r.stdout.strip(), block
        assert not re.search(r"\bnan\b", r.stdout, re.I), r.stdout
