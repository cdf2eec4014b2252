"""The operations docs, the roadmap and the README's cluster-mode block: links reach their
targets, every command, flag, setting and metric they name exists, the pilot criteria's
PromQL parses, and the walkthrough matches the shipped load-balancer and systemd files.

Cluster mode (PostgreSQL storage, Redis guards, a shared dashboard session secret) lands
in parts. A name the docs use for a part that has not landed yet is allowed to be absent
(``PENDING``); once its part has landed (its settings section, or any session setting,
exists) the name must exist exactly as written, so the docs cannot drift from it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml
from click.testing import CliRunner

from stemedb.cli import main
from stemedb.ops.textfile import write_archive_metrics, write_backup_metrics, write_drill_metrics
from stemedb.settings import all_settings
from tests.deploy.live import METRIC_NAME, exposed_names
from tests.deploy.proxies import NGINX_SITE, parse_nginx, require
from tests.e2e.conftest import DashboardServer
from tests.helpers import ROOT

OPERATIONS = ROOT / "docs" / "operations"
OPERATIONS_DOCS = ("deployment.md", "tls.md", "sizing.md", "incident-response.md",
                   "topologies.md", "pilot-success-criteria.md")
TOPOLOGIES = OPERATIONS / "topologies.md"
PILOT = OPERATIONS / "pilot-success-criteria.md"
ROADMAP = ROOT / "docs" / "roadmap.md"
README = ROOT / "README.md"
SRC = ROOT / "src" / "stemedb"
TEMPLATE_UNIT = ROOT / "deploy" / "systemd" / "stemedb-api@.service"


# -- what has landed ------------------------------------------------------------------------


def _sections() -> set[str]:
    return {s.section for s in all_settings()}


LANDED: dict[str, Callable[[], bool]] = {
    "guards": lambda: "guards" in _sections(),
    "storage": lambda: "storage" in _sections(),
    "session": lambda: any("session" in s.key for s in all_settings()),
}
# Names of cluster mode the docs use, by the part that brings them.
PENDING = {
    "--redis-url": "guards",
    "STEMEDB_REDIS_URL": "guards",
    "[guards] redis_url": "guards",
    "stemedb_guards_shared": "guards",
    "stemedb_guards_fallbacks_total": "guards",
    "--database-url": "storage",
    "STEMEDB_DATABASE_URL": "storage",
    "[storage] database_url": "storage",
    "stemedb db status": "storage",
    "stemedb storage copy": "storage",
    "STEMEDB_SESSION_SECRET": "session",
    "[admin] session_secret": "session",
}


def missing(names: set[str], known: set[str]) -> set[str]:
    """The names that do not exist and may not be absent any longer (a pending option is
    pending on every command, ``stemedb verify --database-url``, and a pending command's
    options with it, ``stemedb storage copy --from``)."""
    def pending(name: str) -> bool:
        command = name.rsplit(" --", 1)[0]
        part = PENDING.get(name) or PENDING.get(name.split()[-1]) or PENDING.get(command)
        return part is not None and not LANDED[part]()
    return {n for n in names - known if not pending(n)}


# -- reading the docs -------------------------------------------------------------------------


def cluster_readme() -> str:
    text = README.read_text()
    return text[text.index("## Cluster mode"):text.index("## Documentation")]


def code_blocks(markdown: str, lang: str) -> list[str]:
    """The fenced blocks of one language, also those indented in a list, dedented."""
    return [textwrap.dedent(block) for block in
            re.findall(rf"^ *```{lang}\n(.*?)^ *```", markdown, re.S | re.M)]


def commands(markdown: str) -> list[list[str]]:
    """Every ``stemedb`` command line in code blocks and inline code, as argv without
    the program (continuation lines joined; only where stemedb is the command)."""
    lines = []
    for block in code_blocks(markdown, "sh"):
        lines += block.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`([^`\n]*)`", markdown)
    out = []
    for line in lines:
        m = re.match(r"\s*(?:\S*/bin/)?stemedb\s+(.*)", line.split("#")[0].split("&")[0])
        if m:
            out.append(shlex.split(m.group(1).replace("…", "X").replace("[", "").replace("]", "")))
    return out


def cli_names(markdown: str) -> tuple[set[str], set[str]]:
    """(every name used, those the CLI knows): ``stemedb <command>`` and
    ``stemedb <command> --option``."""
    used, known = set(), set()
    for argv in commands(markdown):
        words = [w for w in argv[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
        words = words[:1] if len(argv) < 2 or argv[1].startswith("-") else words
        command = "stemedb " + " ".join(words)
        options = {f"{command} {a.split('=')[0]}" for a in argv if a.startswith("--")}
        used |= {command, *options}
        result = CliRunner().invoke(main, [*words, "--help"])
        if result.exit_code == 0:
            known.add(command)
            known |= {o for o in options
                      if re.search(rf"{re.escape(o.split()[-1])}\b", result.output)}
    return used, known


def setting_names(markdown: str) -> set[str]:
    """``STEMEDB_*`` variables, ``[section] key`` mentions and the keys of TOML blocks."""
    names = set(re.findall(r"\bSTEMEDB_[A-Z0-9_]+", markdown))
    names |= {f"[{s}] {k}" for s, k in re.findall(r"`\[(\w+)\] (\w+)`", markdown)}
    for block in code_blocks(markdown, "toml"):
        for section, values in tomllib.loads(block).items():
            names |= {f"[{section}] {key}" for key in values}
    return names


def known_settings() -> set[str]:
    return {s.env for s in all_settings()} | {f"[{s.section}] {s.key}" for s in all_settings()}


# -- links ----------------------------------------------------------------------------------


def _anchors(markdown: str) -> set[str]:
    markdown = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)  # no code comments
    out = set(re.findall(r"\{#([a-z0-9-]+)\}", markdown))
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        text = re.sub(r"\{#[^}]*\}", "", heading).strip().lower()
        out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return out


def check_links(doc: Path) -> None:
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: {target}"
        assert file.is_relative_to(ROOT), f"{doc.name}: {target} is outside the repository"
        if anchor:
            assert anchor in _anchors(file.read_text()), f"{doc.name}: {target}"


def test_operations_docs_links_resolve() -> None:
    """Every relative link of the operations docs and the roadmap reaches a file in the
    repository (and a heading), and the README lists each doc."""
    readme = README.read_text()
    for name in OPERATIONS_DOCS:
        assert f"(docs/operations/{name})" in readme, name
        check_links(OPERATIONS / name)
    assert "(docs/roadmap.md)" in readme
    check_links(ROADMAP)
    deployment = (OPERATIONS / "deployment.md").read_text()
    for path in ("deploy/nginx/stemedb.conf", "deploy/envoy/envoy.yaml",
                 "deploy/systemd/stemedb-api@.service"):
        assert path in deployment, path


# -- topologies and the README ------------------------------------------------------------------


def test_cluster_docs_name_only_commands_and_settings_that_exist() -> None:
    text = TOPOLOGIES.read_text() + cluster_readme()
    used, known = cli_names(text)
    assert {"stemedb serve --database-url", "stemedb serve --redis-url",
            "stemedb storage copy --from", "stemedb db status --database-url",
            "stemedb backup create --database-url", "stemedb restore --to-time"} <= used
    assert not missing(used, known), sorted(missing(used, known))
    settings = setting_names(text)
    assert {"STEMEDB_ADMIN_TOKEN", "STEMEDB_SESSION_SECRET", "[storage] database_url",
            "[guards] redis_url", "[rate_limit] trusted_proxies"} <= settings
    assert not missing(settings, known_settings()), sorted(missing(settings, known_settings()))


def test_topologies_cover_the_three_architectures() -> None:
    text = TOPOLOGIES.read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    for start in ("(a) Single node", "(b) Two or more API nodes", "(c) Managed PostgreSQL"):
        (heading,) = [h for h in headings if h.startswith(start)]
        section = text.split(f"## {heading}")[1].split("\n## ")[0]
        assert "```toml" in section, heading  # a config example
        assert "─" in section or "──►" in section, heading  # a diagram
        assert "| what fails |" in section, heading  # failure modes
        assert "PITR" in section or "point in time" in section.lower(), heading
        assert "Sizing" in section, heading
    for key in ("cluster.ingest_single.rate", "cluster.cpu_per_record_ratio",
                "cluster.records_per_txn_64", "cluster.two_nodes_rate"):
        assert f"`{key}`" in text, key
    for failure in ("API node", "PostgreSQL primary", "promote the replica", "Redis", "balancer"):
        assert failure in text, failure
    assert "pgBackRest" in text and "stemedb backup" in text


def walkthrough() -> str:
    text = TOPOLOGIES.read_text()
    return text[text.index("## Walkthrough"):]


def test_walkthrough_matches_the_shipped_configs() -> None:
    """The walkthrough's two nodes are the nodes the nginx template lists, it installs
    the template unchanged, and it kills a node and reads back through the balancer."""
    text = walkthrough()
    nodes = [(argv[argv.index("--port") + 1], argv[argv.index("--dashboard-port") + 1],
              argv[argv.index("--data-dir") + 1])
             for argv in commands(text) if argv[0] == "serve"]
    site = parse_nginx(NGINX_SITE.read_text())
    upstreams = {u.args[0]: [s.args[0].split(":")[1] for s in u.all("server")]
                 for u in site.all("upstream")}
    assert [n[:2] for n in nodes[:2]] == list(zip(upstreams["stemedb_api"],
                                                  upstreams["stemedb_dashboard"], strict=True))
    assert len({n[2] for n in nodes[:2]}) == 2  # a data directory each
    serve = [argv for argv in commands(text) if argv[0] == "serve"]
    for argv in serve:
        assert {"--database-url", "--redis-url"} <= set(argv), argv
    assert "STEMEDB_ADMIN_TOKEN=" in text and "STEMEDB_SESSION_SECRET=" in text
    for step in ("apt-get install -y postgresql redis-server nginx", "createdb",
                 "install -m 644 deploy/nginx/stemedb.conf /etc/nginx/conf.d/stemedb.conf",
                 "nginx -t", "/v1/assert", "kill -9", "/v1/assertions/$ID"):
        assert step in text, step
    assert "stemedb-api@.service" in text and "node-18181.env" in text
    assert "/etc/stemedb/node-%i.env" in TEMPLATE_UNIT.read_text()


# -- the pilot criteria ---------------------------------------------------------------------------


def pilot_queries() -> list[str]:
    """Each PromQL expression of the pilot criteria (a block may hold several, one per
    unindented line; indented lines continue the one before)."""
    out: list[str] = []
    for block in code_blocks(PILOT.read_text(), "promql"):
        for line in block.splitlines():
            if line.strip() and (line[0].isspace() or line.startswith(")")) and out:
                out[-1] += "\n" + line
            elif line.strip():
                out.append(line)
    return out


def test_pilot_criteria_queries_are_valid_promql(tmp_path: Path) -> None:
    queries = pilot_queries()
    assert len(queries) >= 15
    doc = {"groups": [{"name": "pilot", "rules": [
        {"record": f"pilot:query_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "pilot_rules.yml"
    path.write_text(yaml.safe_dump(doc))
    promtool = require("promtool", shutil.which("promtool"),
                       "scripts/system-deps.sh installs Debian's prometheus")
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_pilot_criteria_cover_what_was_asked() -> None:
    text = PILOT.read_text()
    for criterion in ("ingest latency", "false-positive rate", "queue size", "RPO", "RTO",
                      "availability"):
        assert criterion in text, criterion
    queries = "\n".join(pilot_queries())
    for name in ("stemedb_http_request_duration_seconds_bucket", "stemedb_quarantine_approved_total",
                 "stemedb_quarantine_rejected_total", "stemedb_quarantine_pending",
                 "stemedb_dr_drill_rpo_seconds", "stemedb_dr_drill_rto_seconds", "stemedb_ready"):
        assert name in queries, name
    # The thresholds quoted from the alert rules are the rules' own.
    rules = {r["alert"]: r["expr"] for g in yaml.safe_load(
        (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    for alert, threshold, quoted in (("StemeDBQuarantineOverflow", "> 100", "alert's"),
                                     ("StemeDBHighFalsePositiveRate", "> 0.3", "30%"),
                                     ("StemeDBHighP99Latency", "> 0.5", "500 ms")):
        assert threshold in rules[alert] and alert in text and quoted in text, alert


def test_pilot_criteria_use_real_metrics(tmp_path: Path, api: DashboardServer) -> None:
    """Every metric the queries use is exposed by a server, or written by the backup,
    archive and drill jobs for node_exporter's textfile collector. Metrics a test server
    does not expose (those only with Redis) count when stemedb/metrics.py declares them."""
    exposed = exposed_names(httpx.get(api.url + "/metrics", timeout=10).text)
    declared = re.findall(r'"(stemedb_[a-z0-9_]+)"', (SRC / "metrics.py").read_text())
    exposed |= {*declared, *(f"{n}_total" for n in declared)}
    write_backup_metrics(tmp_path, success=True, duration_s=1, size_bytes=1, lsn=1)
    write_archive_metrics(tmp_path, success=True, lag_seconds=0, lag_segments=0,
                          last_archived_lsn=1)
    write_drill_metrics(tmp_path, success=True, rto_s=1, rpo_s=1)
    for path in tmp_path.glob("*.prom"):
        exposed |= exposed_names(path.read_text())
    used = {n for q in pilot_queries() for n in METRIC_NAME.findall(q)}
    assert not missing(used, exposed), sorted(missing(used, exposed))
