"""The apply's main thread keeps running signal handlers while it waits for a module: a SIGTERM
taken by a worker thread must stop the modules not yet started, not only after the first one.
(Found as a flaky process test: six of six modules created after a SIGTERM.)"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future

import pytest

from lakeflow_job_meta.engine.targets.workspace import _result_of
from tests.helpers.waiting import SAFETY_NET_SECONDS


class WatchedFuture(Future):
    """A future that says when the main thread has started waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = threading.Event()

    def result(self, timeout: float | None = None):
        self.waited_on.set()
        return super().result(timeout)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads only")
def test_a_signal_taken_by_a_worker_runs_its_handler_while_the_main_thread_waits() -> None:
    handled = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.set())
    module = WatchedFuture()

    def module_in_flight() -> None:
        module.waited_on.wait()  # the main thread waits for this very module
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # taken by this worker
        # Python runs the handler in the main thread: it must not need this module to finish.
        module.set_result(handled.wait(SAFETY_NET_SECONDS))

    worker = threading.Thread(target=module_in_flight, daemon=True)
    try:
        worker.start()
        assert _result_of(module) is True
    finally:
        worker.join(SAFETY_NET_SECONDS)
        signal.signal(signal.SIGUSR1, previous)
