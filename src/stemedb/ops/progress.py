"""Progress bars of the ops commands."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)


def progress_bar(enabled: bool, *, bytes_: bool = True) -> Progress:
    """The one progress-bar style of the ops commands (off when not wanted or no TTY)."""
    columns: list[Any] = [TextColumn("[progress.description]{task.description}"), BarColumn()]
    columns.append(DownloadColumn() if bytes_ else TaskProgressColumn())
    columns.append(TimeRemainingColumn())
    return Progress(*columns, disable=not enabled, transient=True, console=Console(stderr=True))

