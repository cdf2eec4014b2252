"""Results: targets, merge with the previous run, atomic JSON + markdown output."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

# key -> (comparison, target). Keys without a target are reported for context.
TARGETS: dict[str, tuple[str, float]] = {
    "ingest_single.ratio": (">=", 0.6),
    "ingest_batch.rate": (">=", 15_000),
    "ingest_batch.ratio": (">=", 0.7),
    "group_commit.records_per_fsync_64": (">=", 8),
    "read.p99_ms": ("<=", 5),
    "reindex.rate": (">=", 50_000),
    # Stated by the figure modules (bench/*_bench.py) in their docstrings.
    "dashboard.quarantine_ms": ("<=", 300),
    "beliefs.p50_ms": ("<=", 20),
    "beliefs.p99_ms": ("<=", 50),
    "cluster.cpu_per_record_ratio": ("<=", 1.3),
    "ingest_single.naive_ratio": (">=", 1.5),
    "index.bytes_per_assertion": ("<=", 900),
    "cluster.records_per_txn_64": (">=", 8),
}

# Display order; other keys follow alphabetically.
ORDER = [
    "ingest_single.rate", "ingest_single.ceiling_rate", "ingest_single.ratio",
    "ingest_single.cpu_ratio",
    "ingest_single.p50_ms", "ingest_single.p99_ms", "ingest_single.ceiling_p99_ms",
    "ingest_single.records_per_fsync", "ingest_single.server_cpu_us",
    "ingest_single.ceiling_cpu_us",
    "ingest_single.naive_rate", "ingest_single.naive_ratio", "ingest_single.naive_p99_ms",
    "ingest_single.naive_cpu_us",
    "ingest_batch.rate", "ingest_batch.verify_only_rate", "ingest_batch.ratio",
    "ingest_batch.request_p50_ms", "ingest_batch.server_cpu_us",
    "group_commit.records_per_fsync_1", "group_commit.records_per_fsync_8",
    "group_commit.records_per_fsync_64", "group_commit.rate_1", "group_commit.rate_8",
    "group_commit.rate_64", "group_commit.fsync_p50_ms",
    "read.p50_ms", "read.p99_ms", "read.rate", "read.server_cpu_us",
    "read.one_connection_p99_ms",
    "reindex.rate", "index.bytes_per_assertion",
    "scale.ratio_5m", "scale.rate_empty", "scale.rate_5m",
    "guards.overhead_us", "guards.rss_mb_1m_keys",
    "backup.rate", "restore.rate",
    "dashboard.quarantine_ms", "dashboard.quarantine_items_ms", "dashboard.quarantine_agent_ms",
    "dashboard.quarantine_page_ms", "dashboard.overview_ms",
    "drill.rto_s_1m", "drill.restore_s_1m", "drill.startup_s_1m",
    "cluster.ingest_single.rate", "cluster.embedded_rate", "cluster.cpu_per_record_ratio",
    "cluster.server_cpu_us", "cluster.node_cpu_us", "cluster.postgres_cpu_us",
    "cluster.embedded_cpu_us", "cluster.ingest_single.p50_ms", "cluster.ingest_single.p99_ms",
    "cluster.ingest_single.records_per_txn", "cluster.records_per_txn_64", "cluster.rate_64",
    "cluster.two_nodes_rate", "cluster.two_nodes_cpu_us_per_record",
    "cluster.two_nodes_node_cpu_us", "cluster.two_nodes_p99_ms",
    "cluster.two_nodes_records_per_txn", "cluster.other_cpu_cores",
]

DOCS_START = "<!-- bench:results:start -->"
DOCS_END = "<!-- bench:results:end -->"


def met(key: str, value: float) -> bool | None:
    t = TARGETS.get(key)
    if t is None:
        return None
    op, target = t
    return value >= target if op == ">=" else value <= target


def ordered(keys: list[str]) -> list[str]:
    first = [k for k in ORDER if k in keys]
    return first + sorted(k for k in keys if k not in ORDER)


def merge(old_path: Path, new: dict[str, float], meta: dict[str, Any]) -> dict[str, Any]:
    """New results plus the previous run's keys this run did not measure (e.g. the
    --scale figure after a plain run); ``meta.carried_over`` says from which run."""
    merged: dict[str, Any] = dict(new)
    carried: dict[str, str] = {}
    try:
        old = json.loads(old_path.read_text())
    except (OSError, ValueError):
        old = {}
    old_meta = old.get("meta", {}) if isinstance(old.get("meta"), dict) else {}
    for k, v in old.items():
        if k == "meta" or k in new or not isinstance(v, int | float):
            continue
        merged[k] = v
        carried[k] = old_meta.get("carried_over", {}).get(k) or old_meta.get("date", "?")
    meta["carried_over"] = carried
    return {"meta": meta, **{k: merged[k] for k in ordered(list(merged))}}


def fmt(key: str, value: float) -> str:
    v = abs(value)
    if v >= 1000:
        return f"{value:,.0f}"
    if v >= 100:
        return f"{value:.0f}"
    if v >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"


def target_text(key: str) -> str:
    t = TARGETS.get(key)
    if t is None:
        return ""
    op, v = t
    return f"{'≥' if op == '>=' else '≤'} {v:,g}"


def table(data: dict[str, Any]) -> str:
    carried = data.get("meta", {}).get("carried_over", {})
    lines = ["| key | value | target | met? |", "| --- | ---: | --- | --- |"]
    for k in ordered([k for k in data if k != "meta"]):
        v = data[k]
        ok = met(k, v)
        mark = "" if ok is None else ("yes" if ok else "**no**")
        note = f" (from {carried[k][:10]})" if k in carried else ""
        lines.append(f"| `{k}`{note} | {fmt(k, v)} | {target_text(k)} | {mark} |")
    return "\n".join(lines)


def other_load(meta: dict[str, Any]) -> str:
    """One sentence on the CPU other processes used during the measured HTTP runs."""
    parts = []
    for note, label in (("ingest_single", "single ingest"), ("ingest_single_ceiling", "ceiling"),
                        ("ingest_batch", "batch"), ("read", "reads"),
                        ("ingest_batch_verify_only", "verify only")):
        other = (meta.get("notes", {}).get(note) or {}).get("other_cpu_cores")
        if other is not None:
            parts.append(f"{label} {other:.2f}")
    if not parts:
        return ""
    return ("CPU used by other processes during the measured runs, in cores (of 2): "
            + ", ".join(parts) + ". Well above 0 means the rates are low by that share.")


def markdown(data: dict[str, Any]) -> str:
    m = data["meta"]
    machine = m.get("machine", {})
    head = [
        "# StemeDB benchmark results",
        "",
        f"Run {m.get('date', '?')} at commit `{m.get('git_commit', '?')[:12]}`"
        f"{' (with local changes)' if m.get('git_dirty') else ''}; "
        f"{machine.get('cores', '?')} cores ({machine.get('cpu', '?')}), "
        f"{machine.get('memory_gib', '?')} GiB, Python {m.get('python', '?')}, "
        f"{m.get('wrk', '?')}. Load average at start: {m.get('load_average_at_start', '?')}. "
        f"Took {m.get('total_s', '?')} s.",
        "",
        "Server, load generator and (for group commit, verify-only and reindex) the "
        "benchmark process share the same cores. Method: `docs/benchmarks.md`.",
        "",
    ]
    if other_load(m):
        head += [other_load(m), ""]
    for group, error in (m.get("failed") or {}).items():
        head += [f"**FAILED: {group}** — {error.splitlines()[0] if error else '?'} "
                 "(its keys keep their previous values)", ""]
    return "\n".join(head) + "\n" + table(data) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write(results_dir: Path, new: dict[str, float], meta: dict[str, Any]) -> dict[str, Any]:
    results_dir.mkdir(parents=True, exist_ok=True)
    data = merge(results_dir / "latest.json", new, meta)
    write_atomic(results_dir / "latest.json", json.dumps(data, indent=2) + "\n")
    write_atomic(results_dir / "latest.md", markdown(data))
    return data


def update_docs(docs: Path, data: dict[str, Any]) -> bool:
    """Replaces the table between the result markers in docs/benchmarks.md, if present."""
    try:
        text = docs.read_text(encoding="utf-8")
    except OSError:
        return False
    if DOCS_START not in text or DOCS_END not in text:
        return False
    m = data["meta"]
    block = (f"{DOCS_START}\nMeasured {m.get('date', '?')[:10]} at commit "
             f"`{m.get('git_commit', '?')[:12]}` on {m.get('machine', {}).get('cores', '?')} "
             f"cores (copied from `bench/results/latest.md` by `make bench`). "
             f"{other_load(m)}\n\n"
             f"{table(data)}\n{DOCS_END}")
    pattern = re.compile(re.escape(DOCS_START) + ".*?" + re.escape(DOCS_END), re.S)
    write_atomic(docs, pattern.sub(lambda _: block, text, count=1))
    return True
