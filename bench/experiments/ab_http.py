"""A/B of one feature's cost on single ingest, measured the way ``ingest_single.rate`` is:
real ``stemedb serve`` processes, ``wrk`` with 32 keep-alive connections posting signed
single writes, each body sent once, server CPU read from ``/proc``.

One server runs with everything in, the other with the feature taken out
(``variant_server``); both start through the same launcher. Rates on a shared
2-core machine drift by more than the effects measured here, from one run to the next
and from one server process to the next. So each round starts a fresh pair of servers
side by side, warms both, then alternates short measured bursts between them (A B, B A,
...), so the two runs of a pair see the same machine. ``compare`` reports the median
over all pairs of the rate ratio and of the CPU-per-write ratio (every thread, user +
system: much less sensitive than the rate to what other processes do).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from .. import loadgen
from ..context import Context, log
from ..ingest import SINGLE_CONNECTIONS, _bodies_needed, cpu_us, measured_run
from ..servers import Process, StemeServer, wait_idle
from ..signer import Signer

ROUNDS = 5  # fresh server pairs
BURSTS = 4  # measured pairs of runs per round
SECONDS = 3.0  # each measured run
WARMUP = 2.0


def _warm(ctx: Context, server: Process, name: str) -> float:
    """A warm-up run; returns its rate (at least 1,000/s: it sizes the measured runs)."""
    f = ctx.work / f"{name}-warm.txt"
    loadgen.write_posts(f, "/v1/assert", ctx.signer.sign(_bodies_needed(3000, ctx.warmup_s, 4000)))
    r = loadgen.run_wrk(server.url, f, connections=SINGLE_CONNECTIONS, duration_s=ctx.warmup_s)
    wait_idle(server.pid)
    return max(1000.0, r.new_writes_rate)


def _burst(ctx: Context, server: Process, rate: float, name: str
           ) -> tuple[float, float, float]:
    """One measured run: (stored writes/s, server CPU µs per stored write, CPU cores
    other processes used meanwhile). ``rate``: the fastest rate seen so far; twice the
    bodies it needs are signed, so a run never runs out."""
    f = ctx.work / f"{name}.txt"
    loadgen.write_posts(f, "/v1/assert",
                        ctx.signer.sign(_bodies_needed(2 * rate, ctx.duration_s, 3000)))
    r, info = measured_run(server, f, SINGLE_CONNECTIONS, ctx.duration_s)
    if r.wrapped:
        raise loadgen.LoadError(f"{name} ran out of bodies")
    wait_idle(server.pid)
    return r.new_writes_rate, cpu_us(info, r.c201 + r.c202), info["other_cpu_cores"]


def compare(feature: str, rounds: int = ROUNDS, bursts: int = BURSTS,
            seconds: float = SECONDS, warmup: float = WARMUP) -> dict[str, float]:
    """``ratio``: median over pairs of 1 − rate_with / rate_without (the share of
    single-ingest throughput the feature takes); ``cpu_ratio``: median of cpu_with /
    cpu_without − 1; ``ratio_min`` / ``ratio_max``: the spread of the pairs; ``rate_on``
    / ``rate_off``, ``cpu_us_on`` / ``cpu_us_off``: medians over the runs;
    ``other_cpu_cores``: the mean CPU other processes used during the runs (well above 0:
    re-measure on a quiet machine)."""
    ratios, cpu_ratios = [], []
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpus: dict[str, list[float]] = {"on": [], "off": []}
    others: list[float] = []
    signer = Signer()
    try:
        with tempfile.TemporaryDirectory(prefix=f"stemedb-ab-{feature}-") as d:
            ctx = Context(work=Path(d), results_dir=Path(d), signer=signer,
                          duration_s=seconds, warmup_s=warmup, profile=False)
            for i in range(rounds):
                with StemeServer(ctx.work / f"on{i}", without="nothing") as on, \
                        StemeServer(ctx.work / f"off{i}", without=feature) as off:
                    servers = {"on": on.start(), "off": off.start()}
                    warm = {label: _warm(ctx, s, f"{feature}-{label}{i}")
                            for label, s in servers.items()}
                    for b in range(bursts):
                        got = {}
                        order = ["on", "off"] if (i + b) % 2 == 0 else ["off", "on"]
                        for label in order:
                            got[label] = _burst(ctx, servers[label], warm[label],
                                                f"{feature}-{label}{i}-{b}")
                            warm[label] = max(warm[label], got[label][0])
                            rates[label].append(got[label][0])
                            cpus[label].append(got[label][1])
                            others.append(got[label][2])
                        ratios.append(1 - got["on"][0] / got["off"][0])
                        cpu_ratios.append(got["on"][1] / got["off"][1] - 1)
                        log(f"  {feature} round {i} pair {b}: on {got['on'][0]:,.0f}/s "
                            f"{got['on'][1]:,.0f} µs, off {got['off'][0]:,.0f}/s "
                            f"{got['off'][1]:,.0f} µs: rate ratio {ratios[-1]:+.3f}, "
                            f"CPU ratio {cpu_ratios[-1]:+.3f}; other processes "
                            f"{got['on'][2]:.2f} / {got['off'][2]:.2f} cores")
    finally:
        signer.close()
    # Medians are reported as measured: one below 0 means the difference is below noise.
    return {"ratio": round(statistics.median(ratios), 4),
            "cpu_ratio": round(statistics.median(cpu_ratios), 4),
            "ratio_min": round(min(ratios), 4), "ratio_max": round(max(ratios), 4),
            "rate_on": round(statistics.median(rates["on"]), 1),
            "rate_off": round(statistics.median(rates["off"]), 1),
            "cpu_us_on": round(statistics.median(cpus["on"]), 1),
            "cpu_us_off": round(statistics.median(cpus["off"]), 1),
            "other_cpu_cores": round(statistics.mean(others), 2)}


def keyed(r: dict[str, float], prefix: str, names: dict[str, str]) -> dict[str, float]:
    """``compare``'s answer under a figure module's key names: ``prefix + names[field]``."""
    return {prefix + name: r[field] for field, name in names.items()}
