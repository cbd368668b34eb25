"""One progress display for long stages (rich) on stderr, silent when asked or when stderr
is not a terminal (a log file gets the end line, not bar redraws and colour codes)."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


@contextlib.contextmanager
def progress_bar(title: str, total: float, unit: str = "", enabled: bool = True,
                 waiting: str = "") -> Iterator[Callable[[float], None]]:
    """Yields advance(amount). `waiting` is shown beside the title until the first advance
    (such as workers starting), so a bar at 0 does not look stuck."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda amount: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + unit),
        TimeElapsedColumn(), TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"{title} ({waiting})" if waiting else title, total=max(total, 1e-9))

        def advance(amount: float) -> None:
            bar.update(task, advance=amount, description=title)

        yield advance
