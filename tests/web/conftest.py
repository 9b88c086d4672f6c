"""A served fleet: the tool's real local tables after a monitor run against the Jobs API emulator
with failed and long runs and a rejected edit, and the real status page (uvicorn) on a
loopback port. Shared by the HTTP tests and the browser test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.server import JobsEmulator
from tests.fakes import AFTER_ANY_REAL_CLOCK, FakeClock
from tests.run_world import BROKEN_YAML, Sink, build_world, cycle, failed_run, good_run, job_id_of, ms

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

ORDERS_YAML = """\
modules:
  - module_name: hourly_orders
    sources:
      - source_id: orders_bronze
        source_type: notebook
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/orders_bronze}
      - source_id: orders_silver
        source_type: notebook
        execution_order: 2
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/orders_silver}
"""
# A sync: manual module: applied once by name, then edited; the monitor holds the edit (and
# records its diff) until `apply --module weekly_report`.
REPORTS_YAML = """\
modules:
  - module_name: weekly_report
    sync: manual
    sources:
      - source_id: weekly_summary
        source_type: notebook
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/weekly}
"""
REPORTS_EDIT = ("/Workspace/Shared/weekly", "/Workspace/Shared/weekly_v2")
# The fleet's fake clock starts after any real clock the suite runs on: the tables' audit columns
# (when the metadata changed) are written on the real clock, the applies on the fake one, and the
# page judges on the fake one too, so the fleet reads as applied after its last change, not as
# lagging.


@dataclass
class Served:
    url: str
    ctl: str
    failing_run_error: str
    clock: FakeClock


def _fleet(
    tmp_path: Path, emu: JobsEmulator, client: Any, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, FakeClock]:
    world = build_world(
        tmp_path,
        emu,
        client,
        sink.url,
        monkeypatch,
        clock_start=AFTER_ANY_REAL_CLOCK,
        extra_files={"orders.yaml": ORDERS_YAML, "reports.yaml": REPORTS_YAML},
    )
    try:
        cycle(world, advance=0)
        assert world.monitor.orchestrator.create_or_update_job("weekly_report").outcome == "ok"
        sales = job_id_of(world)
        (orders,) = emu.job_ids("hourly_orders")
        for _ in range(3):
            good_run(world, orders, took=40)
            cycle(world, advance=3600)
        failed_run(world, sales, message="cell 3: KeyError: 'region'")
        failed_run(world, sales, ago=20, message="cell 3: KeyError: 'region'")
        emu.add_run(orders, start_time=ms(world.clock.now() - 10), trigger="PERIODIC")  # will run long
        cycle(world)
        (world.volume / "sales.yaml").write_text(BROKEN_YAML)
        (world.volume / "reports.yaml").write_text(REPORTS_YAML.replace(*REPORTS_EDIT))
        report = cycle(world, advance=600)
        assert list(report.files_rejected) == ["sales.yaml"], report.summary()
        assert report.unhealthy == {"nightly_sales": "failing", "hourly_orders": "too_long"}, report.summary()
    finally:
        world.monitor.stop()
        world.monitor.close()
    return world.ctl, world.clock


@pytest.fixture
def served(
    tmp_path: Path,
    jobs_emulator: JobsEmulator,
    workspace_client: Any,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Served]:
    """The status page over the fleet's tables, on a loopback socket that listens before the
    server thread starts (a request waits in the backlog: no polling for readiness)."""
    import uvicorn

    from lakeflow_job_meta.web.serve import create_app

    ctl, clock = _fleet(tmp_path, jobs_emulator, workspace_client, sink, monkeypatch)
    # The page's workspace client reads a job's live settings for its pending diff.
    app = create_app(ctl, clock=clock, workspace=lambda: workspace_client)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", ctl, "cell 3: KeyError: 'region'", clock)
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
