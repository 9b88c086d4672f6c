"""A pre-warmed apply process for the crash-consistency test (not a test module).

Importing the SDK, delta-rs and pyarrow costs about 2 s of CPU here; forking a child per apply
from this single-threaded process (which never opens a table or a connection itself) makes 20+
SIGKILLed applies affordable. Reads one JSON command a line on stdin::

    {"control": PATH, "host": URL, "kill_at": N, "now": EPOCH_SECONDS}

and forks a child that runs ``run_all_modules()`` and SIGKILLs itself at the N-th *point* (just
before or just after one API call or one tracking-table write). Prints one JSON line per command:
``{"killed": bool, "code": int | null}``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import traceback
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

import lakeflow_job_meta.storage.delta_rs  # noqa: F401  (imported before forking)
from lakeflow_job_meta import JobOrchestrator
from lakeflow_job_meta.adapters import databricks_jobs
from lakeflow_job_meta.engine.targets import workspace_apply as workspace_target
from tests.fakes import FakeClock

# stdout is this worker's protocol (one JSON line per command): the package's logs go to stderr,
# and a configured handler keeps JobOrchestrator from adding its notebook handler on stdout.
logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

INSTRUMENTED = {
    databricks_jobs.WorkspaceJobs: (
        "get",
        "list_by_name",
        "create",
        "reset",
        "update",
        "delete",
        "set_permissions",
        "write_file",
        "delete_file",
    ),
    workspace_target.TrackingWriter: ("record", "forget"),
}


def apply_and_die(control: str, host: str, kill_at: int, now: float) -> None:
    """One apply on a fake clock at ``now`` (the test dates each restart after the killed
    holder's writer lease expired), SIGKILLed at its ``kill_at``-th point."""
    import faulthandler

    faulthandler.dump_traceback_later(40, exit=True)  # a hung child shows where, then exits
    points = [0]

    def point() -> None:
        points[0] += 1
        if points[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def instrument(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            point()
            result = original(*args, **kwargs)
            point()
            return result

        setattr(cls, name, wrapper)

    for cls, names in INSTRUMENTED.items():
        for name in names:
            instrument(cls, name)

    client = WorkspaceClient(config=Config(host=host, token="t", retry_timeout_seconds=10))
    orchestrator = JobOrchestrator(
        control, client, target="workspace", clock=FakeClock(start=now), max_workers=2
    )
    result = orchestrator.run_all_modules()
    sys.stdout.flush()
    os._exit(0 if result.ok else 1)


def main() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                apply_and_die(**command)
            except BaseException:
                traceback.print_exc()
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        print(json.dumps({"killed": killed, "code": code}), flush=True)


if __name__ == "__main__":
    main()
