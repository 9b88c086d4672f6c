"""A monitor's world: real delta-rs tables in ``tmp_path``, a volume folder, a FakeClock and the
Jobs API emulator through the real SDK (the ``env`` fixture), and the rows, files and lookups the
monitor tests write and read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataMonitor
from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.monitor import CycleReport
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.tables import ToolTables
from tests.emulator.server import JobsEmulator
from tests.fakes import FakeClock


def notebook_row(source_id: str, module: str, path: str = "/Workspace/x", order: int = 1) -> dict[str, Any]:
    """A control-table row as a SQL INSERT would write it (no source_file)."""
    return {
        "source_id": source_id,
        "module_name": module,
        "source_type": "notebook",
        "execution_order": order,
        "source_config": "{}",
        "target_config": "{}",
        "transformation_config": json.dumps({"task_type": "notebook", "notebook_path": path}),
        "is_active": True,
        "source_file": None,
    }


def module_yaml(
    module: str, notebook: str = "/Workspace/nb", *, scheduled: bool = True, n_sources: int = 1
) -> str:
    schedule = (
        "    schedule:\n"
        '      quartz_cron_expression: "0 0 5 * * ?"\n'
        "      timezone_id: UTC\n"
        "      pause_status: UNPAUSED\n"
        if scheduled
        else ""
    )
    sources = "".join(
        f"      - source_id: {module}_s{i}\n"
        "        source_type: notebook\n"
        f"        execution_order: {i}\n"
        "        transformation_config:\n"
        "          task_type: notebook\n"
        f"          notebook_path: {notebook}\n"
        for i in range(1, n_sources + 1)
    )
    return f"modules:\n  - module_name: {module}\n{schedule}    sources:\n{sources}"


def write_file(path: Path, text: str) -> Path:
    """Write via a temp name + rename, as careful producers (and `cp` to a volume) do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def job_ids_by_name(emu: JobsEmulator) -> dict[str, list[int]]:
    by_name: dict[str, list[int]] = {}
    for job_id, job in emu.jobs().items():
        by_name.setdefault(job["settings"]["name"], []).append(job_id)
    return by_name


def tracked_job_ids(tables: ToolTables) -> dict[str, int]:
    return {row["module_name"]: int(row["job_id"]) for row in tables.jobs.read_all() if row.get("job_id")}


def notebook_paths(job: dict) -> list[str]:
    return [t["notebook_task"]["notebook_path"] for t in job["settings"]["tasks"] if "notebook_task" in t]


@dataclass
class MonitorEnv:
    root: Path
    ctl: str
    volume: Path
    clock: FakeClock
    emu: JobsEmulator
    client: Any
    tables: ToolTables
    monitors: list[MetadataMonitor] = field(default_factory=list)

    def monitor(
        self,
        *,
        clock: Clock | None = None,
        volume: bool = True,
        prune: str = "pause",
        check_interval_seconds: float = 30,
        **kwargs: Any,
    ) -> MetadataMonitor:
        clock = clock or self.clock
        orchestrator = JobOrchestrator(self.ctl, self.client, target="workspace", clock=clock, prune=prune)
        monitor = MetadataMonitor(
            self.ctl,
            check_interval_seconds=check_interval_seconds,
            volume_path=str(self.volume) if volume else None,
            orchestrator=orchestrator,
            clock=clock,
            **kwargs,
        )
        self.monitors.append(monitor)
        return monitor


@pytest.fixture
def env(tmp_path: Path, jobs_emulator: JobsEmulator, workspace_client: Any) -> Iterator[MonitorEnv]:
    ctl = str(tmp_path / "etl_control")
    volume = tmp_path / "volume"
    volume.mkdir()
    tables = open_tables(ctl)
    tables.ensure_exists()
    e = MonitorEnv(tmp_path, ctl, volume, FakeClock(), jobs_emulator, workspace_client, tables)
    yield e
    for monitor in e.monitors:
        monitor.stop()
        monitor.close()


def converge(monitor: MetadataMonitor) -> CycleReport:
    report = monitor.check_and_update()
    assert report.error is None, report.error
    assert report.run is not None and report.run.ok, report.summary()
    return report
