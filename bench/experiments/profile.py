"""Sampling profile of a running server with py-spy, summarised into hot spots.

py-spy samples every non-idle thread (``--threads``, raw "folded" stacks). The summary
gives, per thread kind, the share of samples, and over all samples the functions with the
most self time (leaf frame) and the most inclusive time (anywhere on the stack).
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
_WRAPPER = re.compile(r"\(stemedb/(cli/|__main__|server\.py)")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    if PY_SPY.exists():
        return str(PY_SPY)
    return shutil.which("py-spy")


class Recording:
    """``py-spy record`` of one pid for a fixed time, in the background."""

    def __init__(self, pid: int, seconds: float, out: Path, gil_only: bool = False) -> None:
        exe = py_spy()
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        if exe is None:
            return
        argv = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                "--rate", "100", "--format", "raw", "--threads", "--nonblocking",
                "--output", str(out)]
        if gil_only:
            argv.append("--gil")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 60.0) -> bool:
        """True when the profile was written."""
        if self.proc is None:
            return False
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return False
        if self.proc.returncode != 0 and not self.out.exists():
            print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", flush=True)
        return self.out.exists() and self.out.stat().st_size > 0


def compress(raw: Path) -> Path:
    """Replaces ``x.folded`` by ``x.folded.gz`` (a tenth of the size) and returns it."""
    out = raw.with_name(raw.name + ".gz")
    with open(raw, "rb") as src, gzip.open(out, "wb", compresslevel=9) as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return out


@dataclass(frozen=True)
class Summary:
    samples: int
    threads: list[tuple[str, float]]  # (thread kind, share of samples)
    layers: list[tuple[str, float]]  # (package or StemeDB module of the leaf frame, share)
    self_time: list[tuple[str, float]]  # (function, share)
    lines: list[tuple[str, float]]  # (function and line, share) of the leaf frame
    inclusive: list[tuple[str, float]]  # (StemeDB function, share)


def _layer(frame: str) -> str:
    """The package a frame belongs to: ``stemedb/index``, ``fastapi``, ``nacl``..."""
    m = _FRAME.match(frame)
    file = m.group("file") if m else ""
    if file.startswith("stemedb/"):
        parts = file.split("/")
        return "/".join(parts[:2]) if len(parts) > 2 else file
    if file.startswith("<") or "/" not in file:
        return "python stdlib" if file else "?"
    top = file.split("/", 1)[0]
    return "python stdlib" if top in _STDLIB_DIRS else top


_STDLIB_DIRS = {"asyncio", "concurrent", "json", "email", "http", "logging", "urllib",
                "importlib", "collections", "re", "sqlite3", "encodings"}


def _short(frame: str, line: bool = False) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    if line and m.group("line"):
        file = f"{file}:{m.group('line')}"
    return f"{m.group('func')} ({file})"


def _thread_kind(first: str) -> str:
    """Names a thread from py-spy's ``thread (TID): NAME`` frame, numbering stripped."""
    name = first.split("): ", 1)[1] if "): " in first else first
    return re.sub(r"[_-]\d+(_\d+)?$", "", name).strip()


def summarise(raw: Path, top: int = 15) -> Summary:
    total = 0
    by_thread: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    self_t: Counter[str] = Counter()
    hot_lines: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        frames = stack.split(";")
        kind = "?"
        while frames and (frames[0].startswith("process ") or frames[0].startswith("thread (")):
            kind = _thread_kind(frames[0])
            frames = frames[1:]
        if not frames:
            continue
        total += n
        by_thread[kind] += n
        self_t[_short(frames[-1])] += n
        hot_lines[_short(frames[-1], line=True)] += n
        layers[_layer(frames[-1])] += n
        for f in {_short(f) for f in frames if "(stemedb/" in f and not _WRAPPER.search(f)}:
            incl[f] += n
    if total == 0:
        return Summary(0, [], [], [], [], [])

    def share(c: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, n / total) for name, n in c.most_common(k)]

    return Summary(total, share(by_thread, 10), share(layers, 12), share(self_t, top),
                   share(hot_lines, 10), share(incl, top))


def to_markdown(title: str, s: Summary, note: str = "") -> str:
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += [f"{s.samples} samples.", "",
              "| thread | share of samples |", "| --- | ---: |"]
    lines += [f"| {name} | {p:.1%} |" for name, p in s.threads]
    lines += ["", "Self time by package (leaf frame):", "",
              "| package | share |", "| --- | ---: |"]
    lines += [f"| {name} | {p:.1%} |" for name, p in s.layers]
    lines += ["", "Self time (the function itself was running):", "",
              "| function | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {p:.1%} |" for name, p in s.self_time]
    lines += ["", "Hottest lines (self time; C code such as SQLite, libsodium or uvloop is "
              "charged to the Python line that called it):", "",
              "| line | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {p:.1%} |" for name, p in s.lines]
    lines += ["", "Inclusive time of StemeDB functions (on the stack):", "",
              "| function | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {p:.1%} |" for name, p in s.inclusive]
    return "\n".join(lines) + "\n"
