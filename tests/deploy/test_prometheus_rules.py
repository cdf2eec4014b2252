"""deploy/prometheus and deploy/grafana: promtool checks and rule unit tests, a live scrape
linted by promtool, and every metric the rules and the dashboard use present in it.

promtool comes from Debian's ``prometheus`` package (scripts/system-deps.sh). Without it
these tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stemedb.ops.textfile import (
    write_archive_metrics,
    write_backup_metrics,
    write_drill_metrics,
)
from tests.deploy.live import METRIC_NAME, exercise, exposed_names, metrics_server, scrape
from tests.helpers import ROOT

PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "alerts.yml"
RULE_TESTS = PROM / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "stemedb.json"
RUNBOOKS = {
    "quarantine-overflow.md",
    "circuit-breaker-stuck.md",
    "high-query-latency.md",
    "server-wont-start.md",
    "dr-drill.md",
}

ALERTS = {
    "StemeDBQuarantineOverflow",
    "StemeDBAgentFlooding",
    "StemeDBHighFalsePositiveRate",
    "StemeDBDown",
    "StemeDBJournalReadOnly",
    "StemeDBNotReady",
    "StemeDBIndexLag",
    "StemeDBHighP99Latency",
    "StemeDBBreakerStorm",
    "StemeDBDiskLow",
    "StemeDBBackupStale",
    "StemeDBWalArchiveLag",
    "StemeDBBackupMissing",
    "StemeDBWalArchiveMissing",
    "StemeDBJobFailed",
    "StemeDBDrDrillStale",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(
            "promtool is missing in CI: scripts/system-deps.sh installs it "
            "(Debian package prometheus)"
        )
    pytest.skip("promtool is not installed; run `bash scripts/system-deps.sh`")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


# -- promtool on the files ------------------------------------------------------------


def test_promtool_check_rules() -> None:
    r = run("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in r.stdout


def test_promtool_rule_unit_tests() -> None:
    r = run("test", "rules", str(RULE_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_check_example_config() -> None:
    r = run("check", "config", str(PROM / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query as a recording rule, so that promtool parses it."""
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$instance", ".*") for e in dashboard_exprs()
    ]
    doc = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(doc))
    r = run("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


# -- the rules themselves -------------------------------------------------------------


def test_the_alerts_and_their_annotations() -> None:
    got = rules()
    assert {r["alert"] for r in got} == ALERTS
    for r in got:
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        for key in ("summary", "description", "runbook_url"):
            assert r["annotations"].get(key), (r["alert"], key)
        path = r["annotations"]["runbook_url"].split("#")[0]
        assert path.startswith("docs/runbooks/") and Path(path).name in RUNBOOKS, r["alert"]


def test_the_runbooks_three_alerts_are_kept_exactly() -> None:
    by_name = {r["alert"]: r for r in rules()}
    overflow = by_name["StemeDBQuarantineOverflow"]
    assert overflow["expr"] == "stemedb_quarantine_pending > 100"
    assert overflow["for"] == "10m"
    assert overflow["annotations"]["summary"] == "Quarantine queue overflow (>100 items)"
    assert overflow["annotations"]["description"] == "Current count: {{ $value }}"
    flooding = by_name["StemeDBAgentFlooding"]
    assert flooding["expr"] == "sum by (agent_id) (rate(stemedb_quarantine_total[5m])) * 60 > 50"
    assert flooding["for"] == "5m"
    assert flooding["annotations"]["summary"] == "Agent flooding quarantine"
    assert flooding["annotations"]["description"].startswith(
        "Agent {{ $labels.agent_id }} submitting >50/min"
    )
    fp = by_name["StemeDBHighFalsePositiveRate"]
    assert fp["expr"] == (
        "rate(stemedb_quarantine_approved_total[1h]) / (rate(stemedb_quarantine_approved_total"
        "[1h]) + rate(stemedb_quarantine_rejected_total[1h])) > 0.3"
    )
    assert fp["for"] == "30m"
    assert fp["annotations"]["summary"] == "Content defense false positive rate high (>30%)"
    for r in (overflow, flooding, fp):
        assert r["labels"]["severity"] == "warning"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    doc = yaml.safe_load(RULE_TESTS.read_text())
    fires: set[str] = set()
    quiet: set[str] = set()
    for test in doc["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert fires == ALERTS
    assert quiet == ALERTS


def test_runbook_links_resolve() -> None:
    """Every linked runbook that exists has the linked section; the missing ones are
    listed in the skip reason until they are written."""
    missing = set()
    for r in rules():
        path, _, anchor = r["annotations"]["runbook_url"].partition("#")
        file = ROOT / path
        if not file.exists():
            missing.add(path)
            continue
        if anchor:
            assert f"{{#{anchor}}}" in file.read_text(), f"{path} has no section #{anchor}"
    if missing:
        pytest.skip(f"runbooks not written yet: {', '.join(sorted(missing))}")


def test_dashboard_is_a_valid_grafana_dashboard() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["title"] == "StemeDB" and dash["uid"]
    assert 36 <= dash["schemaVersion"] <= 41
    names = [v["name"] for v in dash["templating"]["list"]]
    assert "DS_PROMETHEUS" in names and "instance" in names
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
            if not re.search(r"stemedb_(backup|wal_archive)_", t["expr"]):  # node_exporter's
                assert 'instance=~"$instance"' in t["expr"], (p["title"], t["expr"])
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in (
        "ingest",
        "quarantine pending",
        "per agent",
        "breaker",
        "p50",
        "p99",
        "fsync",
        "group commit",
        "index lag",
        "disk free",
    ):
        assert topic in titles, topic


# -- a live scrape --------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_text(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with metrics_server(tmp_path_factory.mktemp("live") / "data") as srv:
        exercise(srv.url)
        yield scrape(srv.url)


@pytest.fixture(scope="module")
def textfile_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What the backup, WAL-archive and DR-drill jobs write for node_exporter, by their
    own writers after a successful run."""
    directory = tmp_path_factory.mktemp("textfile")
    paths = [
        write_backup_metrics(directory, success=True, duration_s=1.0, size_bytes=1, lsn=1),
        write_archive_metrics(directory, success=True, lag_seconds=0.0, lag_segments=0,
                              last_archived_lsn=1),
        write_drill_metrics(directory, success=True, rto_s=1.0, rpo_s=1.0),
    ]
    return {name for path in paths for name in exposed_names(path.read_text())}


def test_live_scrape_passes_promtool_check_metrics(live_text: str) -> None:
    r = run("check", "metrics", stdin=live_text)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_every_metric_in_the_rules_and_dashboard_is_exposed(
    live_text: str, textfile_names: set[str]
) -> None:
    exposed = exposed_names(live_text) | textfile_names
    exprs = [r["expr"] for r in rules()] + dashboard_exprs()
    used = {n for e in exprs for n in METRIC_NAME.findall(e)}
    assert len(used) > 20
    assert not used - exposed, f"used but not exposed: {sorted(used - exposed)}"


def test_rule_test_series_are_real_metrics(live_text: str, textfile_names: set[str]) -> None:
    """The rule unit tests feed series that the server or the ops jobs really expose
    (and ``up``)."""
    exposed = exposed_names(live_text) | textfile_names | {"up"}
    doc = yaml.safe_load(RULE_TESTS.read_text())
    fed = {
        re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s["series"]).group(0)  # type: ignore[union-attr]
        for t in doc["tests"]
        for s in t["input_series"]
    }
    assert not fed - exposed, sorted(fed - exposed)
