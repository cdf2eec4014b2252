"""Progress of long operations, reported through a callback; whoever called draws it.

An ops function takes ``progress: Progress | None``. It reports each phase by name
(``"copying journal"``) with how much of it is done and its total (None while not
known), counted in bytes or records. Phases come one after another; within a phase
``done`` never goes down. The library draws nothing: the CLI turns these reports into
progress bars (:func:`stemedb.cli.output.progress_bars`), tests and benchmarks pass None.
"""

from __future__ import annotations

from typing import Literal, Protocol

Unit = Literal["bytes", "records"]


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int | None, unit: Unit) -> None: ...


class Meter:
    """One phase's running count, for code that learns its progress step by step.

    Announces the phase when made (``done`` 0); with no ``progress`` it only counts.
    """

    def __init__(
        self, progress: Progress | None, phase: str, total: int | None, unit: Unit = "bytes"
    ) -> None:
        self.progress, self.phase, self.unit = progress, phase, unit
        self.total = total
        self.done = 0
        self._report()

    def advance(self, n: int) -> None:
        self.done += n
        self._report()

    def update(self, done: int) -> None:
        self.done = done
        self._report()

    def set_total(self, total: int | None) -> None:
        self.total = total
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.phase, self.done, self.total, self.unit)
