"""A progress bar for applies, on stderr, only where a person watches it (a terminal) and only
when there is something to wait for (more than a few modules). Results still go to stdout."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from lakeflow_job_meta.engine.results import ModuleResult

# Fewer modules than this apply in a blink: no bar.
MIN_MODULES = 5


class ProgressBar:
    """``ApplyProgress`` drawn with rich; a no-op when ``stream`` is not a terminal."""

    def __init__(self, stream: TextIO | None = None, *, min_modules: int = MIN_MODULES):
        self.stream = stream or sys.stderr
        self.min_modules = min_modules
        self._progress: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def start(self, total: int) -> None:
        if not self.enabled or total < self.min_modules:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("Applying"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[module]}"),
                    TimeElapsedColumn(),
                    console=Console(file=self.stream),
                    transient=False,
                )
                self._progress.start()
                self._task = self._progress.add_task("apply", total=total, module="")
            else:  # a later wave of run_job dependants: more to do
                self._progress.update(self._task, total=(self._progress.tasks[0].total or 0) + total)

    def advance(self, result: ModuleResult) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.update(self._task, advance=1, module=getattr(result, "module", ""))

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
