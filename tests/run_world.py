"""A small fleet for run-health tests: a volume with a module that has a ``health`` rule and
a broken edit of its file to come (the rejection names file:line), a policy
with webhooks, and a monitor against the Jobs API emulator on a FakeClock that reads runs every
60 s. Failed, long and good runs are injected into the emulator at chosen moments."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataMonitor
from tests.emulator.server import JobsEmulator
from tests.fakes import FakeClock

MODULE_YAML = """\
modules:
  - module_name: nightly_sales
    health:
      rules:
        - {metric: RUN_DURATION_SECONDS, op: GREATER_THAN, value: 600}
    sources:
      - source_id: sales_extract
        source_type: notebook
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/extract}
      - source_id: sales_publish
        source_type: notebook
        execution_order: 2
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/publish}
      - source_id: sales_report
        source_type: notebook
        execution_order: 3
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/report}
"""
# The same file broken by an edit (an unknown key at line 18): the monitor rejects it, naming
# sales.yaml:18, and keeps the module's rows as they were.
BROKEN_YAML = MODULE_YAML.replace(
    "        execution_order: 3\n", "        execution_order: 3\n        colour: blue\n"
)
BROKEN_LINE = 18
POLICY = """\
alerts:
  webhooks:
    - url: ${env:LJM_TEST_WEBHOOK}
      format: json
    - url: ${env:LJM_TEST_WEBHOOK}
      format: slack
      events: [run_too_long]
"""


def ms(seconds: float) -> int:
    return int(seconds * 1000)


@dataclass
class World:
    ctl: str
    clock: FakeClock
    emu: JobsEmulator
    monitor: MetadataMonitor
    volume: Path


def build_world(
    tmp_path: Path,
    emu: JobsEmulator,
    client: Any,
    webhook_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    clock_start: float = 1_700_000_000.0,
    extra_files: dict[str, str] | None = None,
) -> World:
    """One module loaded from a volume, a policy whose webhooks point at the sink, and a
    monitor that reads runs every 60 s of the fake clock."""
    monkeypatch.setenv("LJM_TEST_WEBHOOK", webhook_url)
    ctl = str(tmp_path / "etl_control")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "sales.yaml").write_text(MODULE_YAML)
    for name, text in (extra_files or {}).items():
        (volume / name).write_text(text)
    (tmp_path / "policy.yaml").write_text(POLICY)
    clock = FakeClock(start=clock_start)
    orchestrator = JobOrchestrator(
        ctl, client, target="workspace", clock=clock, policy=str(tmp_path / "policy.yaml")
    )
    monitor = MetadataMonitor(
        ctl,
        volume_path=str(volume),
        orchestrator=orchestrator,
        clock=clock,
        watch_mode="poll",
        runs_interval_seconds=60,
    )
    return World(ctl, clock, emu, monitor, volume)


def cycle(world: World, advance: float = 61) -> Any:
    world.clock.advance(advance)
    report = world.monitor.check_and_update()
    assert report.error is None and report.runs_error is None, report.summary()
    assert world.monitor.alerts is not None
    world.monitor.alerts.dispatcher.drain()
    return report


def job_id_of(world: World) -> int:
    (job_id,) = world.emu.job_ids("nightly_sales")
    return job_id


def failed_run(world: World, job_id: int, *, ago: float = 30, message: str = "cell 3: KeyError") -> int:
    start = world.clock.now() - ago
    return world.emu.add_run(
        job_id,
        active=False,
        result_state="FAILED",
        start_time=ms(start),
        end_time=ms(start + 20),
        state_message=message,
        trigger="PERIODIC",
    )


def good_run(world: World, job_id: int, *, took: float = 20) -> int:
    start = world.clock.now() - took - 5
    return world.emu.add_run(
        job_id, active=False, start_time=ms(start), end_time=ms(start + took), trigger="PERIODIC"
    )


@dataclass
class Sink:
    """A webhook receiver on loopback: records every JSON body it is sent."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def sink() -> Iterator[Sink]:
    received = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    received.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=received.server.serve_forever, daemon=True)
    thread.start()
    yield received
    received.server.shutdown()
    received.server.server_close()
    thread.join()
