"""Regenerate the measured figures in docs/operations/sizing.md from bench/results/latest.json
(and the steady-load figures from bench/results/soak.json).

Run after `make bench` or `make soak`: `.venv/bin/python scripts/gen_sizing.py`; `--check` only says
whether the doc is current (exit 1 and a diff if not; tests/unit/test_sizing_doc.py runs
it). Each figure lives between `<!-- sizing:NAME:start -->` and `<!-- sizing:NAME:end -->`;
the prose around the blocks is kept. The disk and memory-per-assertion figures come from
the probe in the doc itself, not from the benchmark, and are not generated.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations" / "sizing.md"
RESULTS = ROOT / "bench" / "results" / "latest.json"
SOAK = ROOT / "bench" / "results" / "soak.json"
BLOCK = re.compile(r"(<!-- sizing:([a-z-]+):start -->\n).*?(<!-- sizing:\2:end -->)", re.S)

# A node's budget in cores of the server's work (bursts, checkpoints, backups and scrapes
# need the rest); a workload within 0.1 of it is "at the limit".
BUDGET = 0.7
WIDTH = 90  # the doc's prose is wrapped at this width
EXAMPLES = [  # single writes/s, batched items/s, reads/s
    (100, 0, 500),
    (600, 0, 1000),
    (0, 1000, 1000),
]


class Results:
    """latest.json's figures, and when each was measured."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.meta: dict[str, Any] = data["meta"]

    def __getitem__(self, key: str) -> float:
        return float(self.data[key])

    def date(self, key: str) -> str:
        return str(self.meta.get("carried_over", {}).get(key) or self.meta["date"])[:10]


def num(value: float) -> str:
    """1,162 / 26 / 9.7 / 0.28: thousands separated, about three significant digits."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def per_core(cpu_us: float) -> str:
    return num(round(1e6 / cpu_us, -1))


def duration(seconds: float) -> str:
    return f"≈ {seconds:.0f} s" if seconds < 120 else f"≈ {seconds / 60:.1f} min"


def prose(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def machine(r: Results) -> str:
    m = r.meta["machine"]
    return prose(f"**The reference machine**: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} "
            f"GiB, local disk; the throughput and CPU figures were measured on "
            f"{r.date('ingest_single.rate')} (`bench/results/latest.json`, last written "
            f"{r.meta['date'][:10]} at commit `{r.meta['git_commit'][:12]}`), the 5-million "
            f"store figures on {r.date('scale.ratio_5m')}.")


def cpu(r: Results) -> str:
    batch_p50 = r["ingest_batch.request_p50_ms"] / 1000
    rows = [
        ("single write, `POST /v1/assert`", r["ingest_single.server_cpu_us"], "writes/s",
         f"{num(r['ingest_single.rate'])} writes/s (32 connections)",
         f"p50 {num(r['ingest_single.p50_ms'])} ms, p99 {num(r['ingest_single.p99_ms'])} ms "
         "at 32 connections"),
        ("batched write, `POST /v1/assert/batch` (1000 items)",
         r["ingest_batch.server_cpu_us"], "items/s",
         f"{num(r['ingest_batch.rate'])} items/s (4 connections)",
         f"{num(batch_p50)} s per 1000-item request (p50)"),
        ("point read, `GET /v1/assertions/{id}`", r["read.server_cpu_us"], "reads/s",
         f"{num(r['read.rate'])} reads/s (32 connections)",
         f"p99 {num(r['read.one_connection_p99_ms'])} ms on one connection; at a steady "
         f"{num(r['read.open_rate'])}/s p50 {num(r['read.open_p50_ms'])} ms, p99 "
         f"{num(r['read.open_p99_ms'])} ms"),
        ("beliefs, `GET /v1/beliefs`", r["beliefs.server_cpu_us"], "/s",
         f"{num(r['beliefs.rate'])}/s",
         f"p50 {num(r['beliefs.p50_ms'])} ms, p99 {num(r['beliefs.p99_ms'])} ms"),
        ("the bare HTTP stack (no StemeDB work)", r["ingest_single.ceiling_cpu_us"], "/s",
         f"{num(r['ingest_single.ceiling_rate'])}/s", ""),
    ]
    lines = ["| operation | server CPU per operation | one core's worth | measured rate (2 cores) "
             "| latency |", "| --- | ---: | ---: | ---: | --- |"]
    for what, cpu_us, unit, rate, latency in rows:
        space = "" if unit.startswith("/") else " "
        per = " per item" if unit == "items/s" else ""
        lines.append(f"| {what} | {num(cpu_us)} µs{per} | ≈ {per_core(cpu_us)}{space}{unit} "
                     f"| {rate} | {latency} |".replace("|  |", "| |"))
    return "\n".join(lines)


def costs(r: Results) -> str:
    return prose(f"Other measured costs: a group commit makes "
            f"{num(r['ingest_single.records_per_fsync'])} writes durable per `fsync` under "
            f"the single-write load and 1000 per batch; a content-defense verdict takes "
            f"{num(r['defense.median_us'])} µs (`defense.median_us`), and content defense "
            f"as a whole {num(100 * r['defense.ingest_cpu_cost_ratio'])} % of a single "
            f"write's CPU (`defense.ingest_cpu_cost_ratio`); metrics "
            f"{num(100 * r['metrics.cpu_overhead_ratio'])} % (`metrics.cpu_overhead_ratio`, "
            f"within the noise of the A/B runs); rate limit and breaker checks "
            f"{num(r['guards.overhead_us'])} µs per request (`guards.overhead_us`). A store "
            f"of 5 million assertions ingests single writes at {r['scale.ratio_5m']:.2f} × "
            f"the rate of an empty one ({num(r['scale.rate_5m'])} vs "
            f"{num(r['scale.rate_empty'])} writes/s, `scale.ratio_5m`, measured "
            f"{r.date('scale.ratio_5m')}).")


def coefficients(r: Results) -> tuple[float, float, float]:
    """Core-seconds per single write, batched item and read, to three significant digits."""
    return tuple(float(f"{r[k] / 1e6:.3g}") for k in (  # type: ignore[return-value]
        "ingest_single.server_cpu_us", "ingest_batch.server_cpu_us", "read.server_cpu_us"))


def rule(r: Results) -> str:
    single, batch, read = coefficients(r)
    lines = [prose(f"**Rule of thumb**: core-seconds per second ≈ `single writes/s × {single:g} "
                   f"+ batched items/s × {batch:g} + reads/s × {read:g}`, and keep it **under "
                   f"{BUDGET}** for one node, leaving room for bursts, checkpoints, backups "
                   "and scrapes; halve the rates if your cores are slower. Examples:"), "",
             "| workload | core use | fits one node? |", "| --- | ---: | --- |"]
    for writes, items, reads in EXAMPLES:
        parts = [(writes, single, "single writes/s"), (items, batch, "items/s in batches"),
                 (reads, read, "reads/s")]
        used = [(n, n * c, label) for n, c, label in parts if n]
        total = sum(u for _, u, _ in used)
        workload = " + ".join(f"{n:,} {label}" for n, _, label in used)
        use = " + ".join(f"{u:.2f}" for _, u, _ in used) + f" = {total:.2f}"
        advice = ": batch the writes" if writes else ""
        fits = ("yes" if total <= BUDGET - 0.1 else f"at the limit{advice}"
                if total <= BUDGET + 0.1 else f"no{advice or ': split the data'}")
        lines.append(f"| {workload} | {use} | {fits} |")
    return "\n".join(lines)


def startup(r: Results) -> str:
    rows = [("`stemedb reindex` (index rebuilt from the journal)", "reindex.rate"),
            ("restore from a backup (index rebuilt from its journal)", "restore.rate"),
            ("backup", "backup.rate"),
            ("index catch-up at start, when the index is behind the journal",
             "scale.catchup_rate_5m")]
    lines = ["| operation | measured | 1 million records |", "| --- | ---: | ---: |"]
    for what, key in rows:
        lines.append(f"| {what} | {num(r[key])} records/s (`{key}`) | "
                     f"{duration(1e6 / r[key])} |")
    return "\n".join(lines)


def guards_memory(r: Results) -> str:
    return prose(f"The in-memory guards are bounded: a flood of 1,000,000 distinct keys through the "
            f"rate limiter and breakers grows the process by {num(r['guards.rss_mb_1m_keys'])} "
            f"MiB at most, with the default `max_keys` / `max_agents` of 100,000 "
            f"(`guards.rss_mb_1m_keys`).")


CRITERIA = {"errors": "failed requests", "rss_anon_growth": "memory growth",
            "p99_last_over_first": "the last minute's p99",
            "p99_worst_over_first": "the worst minute's p99"}


def soak(r: Results) -> str:
    s = r.data["soak"]
    c, minutes = s["criteria"], s["per_minute"]
    p99, growth = c["p99_last_over_first"], c["rss_anon_growth"]
    worst = max(minutes, key=lambda m: m["p99_ms"])
    p50s = [m["p50_ms"] for m in minutes]
    errors = c["errors"]["value"]
    verdict = "passed" if s["passed"] else "failed on " + " and ".join(
        CRITERIA.get(name, name) for name, v in c.items() if not v["met"])
    return prose(
        f"Measured on the reference machine ({s['meta']['machine']['cores']} cores) on "
        f"{s['meta']['date'][:10]} at commit `{s['meta']['git_commit'][:12]}`: "
        f"{s['meta']['minutes']} minutes at {num(s['offered_writes_per_s'])} writes/s and "
        f"{num(s['offered_reads_per_s'])} reads/s ({s['rate_fraction']:.0%} of a calibrated "
        f"{num(s['single_ingest_rate'])} requests/s), the index growing by "
        f"{num(sum(m['writes'] for m in minutes))} assertions: "
        f"{'no failed request' if errors == 0 else f'{errors} failed requests'}; anonymous "
        f"RSS {num(growth['from_mib'])} MiB after the warm-up and {num(growth['to_mib'])} MiB "
        f"at the end ({growth['value']:+.1%}); p99 {num(p99['first_ms'])} ms in the first "
        f"minute and {num(p99['last_ms'])} ms in the last ({p99['value']} ×), "
        f"{num(worst['p99_ms'])} ms in the worst (minute {worst['minute']}); p50 "
        f"{num(min(p50s))}–{num(max(p50s))} ms{disk(minutes)}. The soak {verdict} "
        f"(`bench/results/soak.json`){over_first(minutes, p99['first_ms'], s['passed'])}.")


def disk(minutes: list[dict[str, Any]]) -> str:
    """The disk's writes per minute, when the soak.json has them."""
    if any("disk_write_mb_s" not in m for m in minutes):
        return ""
    mb = [m["disk_write_mb_s"] for m in minutes]
    ms = [m["disk_write_ms"] for m in minutes]
    return (f"; the disk holding the data wrote {num(min(mb))}–{num(max(mb))} MB/s at "
            f"{num(min(ms))}–{num(max(ms))} ms a write")


def over_first(minutes: list[dict[str, Any]], first_ms: float, passed: bool) -> str:
    """The middle minutes whose p99 was over 1.5 × the first minute's, named beside the
    verdict (``p99_worst_over_first`` fails on the worst of them; a soak.json from before
    that criterion could pass and still have fallen behind midway)."""
    slow = [m["minute"] for m in minutes[1:-1] if m["p99_ms"] > 1.5 * first_ms]
    if not slow:
        return ""
    return (f"{', but' if passed else '; also'} minute{'s' if len(slow) > 1 else ''} "
            f"{', '.join(map(str, slow))} had a p99 over 1.5 × the first minute's")


def cluster(r: Results) -> str:
    """The cluster figures: CPU per write on the node and in PostgreSQL (and Redis)."""
    cores = r.meta["machine"]["cores"]
    node, pg = r["cluster.node_cpu_us"], r["cluster.postgres_cpu_us"]
    two_nodes, two_all = r["cluster.two_nodes_node_cpu_us"], r["cluster.two_nodes_cpu_us_per_record"]
    other = r["cluster.other_cpu_cores"]
    busy = (f"other work using {num(other)} of its {cores} cores (the rates are low by about "
            f"that share)" if other >= 0.05 else "no other work on it")
    intro = prose(f"Measured on the reference machine on {r.date('cluster.ingest_single.rate')}, "
                  f"with {busy}; CPU per stored write:")
    table = "\n".join([
        f"| setup | node CPU per write | PostgreSQL CPU per write | rate ({cores} cores, shared) |",
        "| --- | ---: | ---: | ---: |",
        f"| embedded (for comparison) | {num(r['cluster.embedded_cpu_us'])} µs | | "
        f"{num(r['cluster.embedded_rate'])} writes/s |",
        f"| one node on PostgreSQL, in-process guards | {num(node)} µs | {num(pg)} µs | "
        f"{num(r['cluster.ingest_single.rate'])} writes/s |",
        f"| two nodes, shared guards, behind nginx | {num(two_nodes)} µs (the two nodes) | "
        f"{num(two_all - two_nodes)} µs with Redis and nginx | "
        f"{num(r['cluster.two_nodes_rate'])} writes/s |",
    ])
    after = prose(
        f"Keys: `cluster.embedded_cpu_us`, `cluster.node_cpu_us`, `cluster.postgres_cpu_us`, "
        f"`cluster.two_nodes_node_cpu_us`, `cluster.two_nodes_cpu_us_per_record`, "
        f"`cluster.ingest_single.rate`, `cluster.two_nodes_rate`. Node plus PostgreSQL is "
        f"{r['cluster.cpu_per_record_ratio']:.2f} × the embedded CPU per write "
        f"(`cluster.cpu_per_record_ratio`). The database host needs {num(pg / 1000)} of a "
        f"core per 1,000 writes/s at {num(r['cluster.ingest_single.records_per_txn'])} "
        f"records per transaction (32 writers on one node; "
        f"{num(r['cluster.two_nodes_records_per_txn'])} with two nodes behind the balancer: "
        f"smaller transactions cost more per write).")
    return f"{intro}\n\n{table}\n\n{after}"


BLOCKS: dict[str, Callable[[Results], str]] = {
    "machine": machine, "cpu": cpu, "costs": costs, "rule": rule, "startup": startup,
    "guards-memory": guards_memory, "soak": soak, "cluster": cluster,
}


def load() -> dict[str, Any]:
    """latest.json's figures with soak.json's under ``soak``."""
    data: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8"))
    data["soak"] = json.loads(SOAK.read_text(encoding="utf-8"))
    return data


def render(doc: str, data: dict[str, Any]) -> str:
    """``doc`` with every generated block rewritten from ``data``."""
    results = Results(data)
    found: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r} in sizing.md")
        found.add(name)
        return f"{match.group(1)}{BLOCKS[name](results)}\n{match.group(3)}"

    out = BLOCK.sub(fill, doc)
    missing = set(BLOCKS) - found
    if missing:
        raise KeyError(f"sizing.md lacks the generated blocks {sorted(missing)}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the doc is not current")
    args = p.parse_args(argv)
    doc = DOC.read_text(encoding="utf-8")
    new = render(doc, load())
    if args.check:
        if new == doc:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            doc.splitlines(keepends=True), new.splitlines(keepends=True),
            "docs/operations/sizing.md", "generated from bench/results/"))
        print("\nsizing.md is stale: run `.venv/bin/python scripts/gen_sizing.py`")
        return 1
    if new != doc:
        DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
