"""The apply's main thread keeps running signal handlers while it waits for a module: a SIGTERM
taken by a worker thread must stop the modules not yet started, not only after the first one.
(Found as a flaky process test: six of six modules created after a SIGTERM.)"""

from __future__ import annotations

import linecache
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lakeflow_job_meta.engine.targets.workspace import _result_of


def _main_thread_is_waiting(main_id: int) -> bool:
    """The main thread is at ``waiter.acquire()`` in ``Condition.wait``: blocked in C, where no
    Python signal handler runs until the call returns."""
    frame = sys._current_frames().get(main_id)
    if frame is None or frame.f_code.co_name != "wait":
        return False
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno).find("waiter.acquire(") >= 0


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads only")
def test_a_signal_taken_by_a_worker_runs_its_handler_while_the_main_thread_waits() -> None:
    handled = threading.Event()
    main_id = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.set())
    try:

        def module_in_flight() -> bool:
            deadline = time.monotonic() + 10
            while not _main_thread_is_waiting(main_id) and time.monotonic() < deadline:
                pass  # until the main thread waits for this module
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # taken by this worker
            # Python runs the handler in the main thread, which is waiting for this very module.
            return handled.wait(timeout=10)

        with ThreadPoolExecutor(max_workers=1) as pool:
            assert _result_of(pool.submit(module_in_flight)) is True
    finally:
        signal.signal(signal.SIGUSR1, previous)
