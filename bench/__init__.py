"""StemeDB benchmark harness: ``python -m bench.run`` (``make bench``).

One module per figure group (ingest, group_commit, reads, reindex, scale), helpers for
signed bodies (signer), server processes (servers) and the load generator (loadgen,
``wrk`` with ``wrk/replay.lua``). Results go to ``bench/results/latest.json`` and
``latest.md``; the method is described in ``docs/benchmarks.md``. The A/B runners, the
variants they compare and the profiler are in ``experiments/``.
"""
