"""Progress for long commands: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import structlog
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = structlog.get_logger("usage_gateway.progress")

Advance = Callable[[str], None]


@contextlib.contextmanager
def progress_reporter(task: str, *, total: int) -> Iterator[Advance]:
    if sys.stderr.isatty():
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=False) as bar:
            task_id = bar.add_task(task, total=total)
            yield lambda _item: bar.advance(task_id)
        return
    done = 0

    def advance(item: str) -> None:
        nonlocal done
        done += 1
        log.info(task, done=done, total=total, item=item)

    yield advance
