"""What every benchmark group gets: scratch space, the signer, timings, and the results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .signer import Signer


@dataclass
class Context:
    work: Path  # scratch directory for data dirs and request files (removed at the end)
    results_dir: Path  # where latest.json / latest.md / profiles are written
    signer: Signer
    duration_s: float = 10.0  # each measured load run
    warmup_s: float = 2.0  # each warm-up run before a measured one
    profile: bool = True
    results: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)  # into meta
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, into meta

    def put(self, key: str, value: float, fmt: str = "{:,.1f}") -> None:
        self.results[key] = round(float(value), 4)
        log(f"  {key} = {fmt.format(value)}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"[{name}]")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 1)
            log(f"[{name}] {self.timings[name]:.1f} s")


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"{time.monotonic() - _T0:7.1f}s  {msg}", flush=True)
