"""docs/operations/sizing.md's measured figures match bench/results/latest.json."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "gen_sizing.py"


def gen_sizing() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sizing", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sizing_doc_matches_the_committed_bench_results() -> None:
    module = gen_sizing()
    doc = module.DOC.read_text(encoding="utf-8")
    assert module.render(doc, module.load()) == doc, (
        "docs/operations/sizing.md disagrees with bench/results/: "
        "run `.venv/bin/python scripts/gen_sizing.py`")


def test_a_changed_figure_makes_the_doc_stale() -> None:
    module = gen_sizing()
    doc = module.DOC.read_text(encoding="utf-8")
    results = module.load()
    results["ingest_single.server_cpu_us"] *= 2
    stale = module.render(doc, results)
    assert stale != doc
    cpu = results["ingest_single.server_cpu_us"]
    assert f"| single write, `POST /v1/assert` | {cpu:,.0f} µs |" in stale


def test_the_steady_load_figures_come_from_the_soak() -> None:
    module = gen_sizing()
    doc = module.DOC.read_text(encoding="utf-8")
    results = module.load()
    results["soak"]["criteria"]["p99_last_over_first"]["last_ms"] = 4321.0
    stale = module.render(doc, results)
    assert stale != doc and "4,321 ms in the last" in " ".join(stale.split())


def test_the_cluster_figures_come_from_the_bench() -> None:
    module = gen_sizing()
    doc = module.DOC.read_text(encoding="utf-8")
    results = module.load()
    results["cluster.postgres_cpu_us"] = 4321.0
    stale = module.render(doc, results)
    assert "| one node on PostgreSQL, in-process guards |" in stale
    assert " | 4,321 µs | " in stale
    assert "4.32 of a core per 1,000 writes/s" in " ".join(stale.split())  # wrapped prose
