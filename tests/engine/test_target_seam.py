"""The orchestrator plans and applies through any ``Target``: here a recording one in memory,
with real delta-rs tables, so the seam is exercised without HTTP or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.engine.orchestrator import Orchestrator
from lakeflow_job_meta.wiring import RunSettings, build_parts, orchestrator_parts
from tests.fakes import RecordingTarget

pytest.importorskip("deltalake")

YAML = """\
modules:
  - module_name: {name}
    sources:
      - source_id: {name}_s
        source_type: x
        execution_order: 1
        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb}}
"""


def _orchestrator(ctl: str, target: RecordingTarget) -> Orchestrator:
    settings = RunSettings(ctl, target="bundle:unused")
    return Orchestrator(**{**orchestrator_parts(settings, build_parts(settings)), "target": target})


def test_plan_apply_and_history_go_through_the_target(tmp_path: Path) -> None:
    target = RecordingTarget()
    ctl = str(tmp_path / "ctl")
    orchestrator = _orchestrator(ctl, target)
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(YAML.format(name=name))
        orchestrator.manager.load_yaml(str(tmp_path / f"{name}.yaml"))

    assert {c.module: c.action for c in orchestrator.plan().changes} == {"a": "create", "b": "create"}
    result = orchestrator.run_all_modules()
    assert result.target == "recording:memory" and result.ok
    assert sorted(target.jobs) == ["a", "b"] and target.applied[0][1] == {"a", "b"}
    history = orchestrator.tables.history.read_all()
    assert sorted((r["module_name"], r["action"]) for r in history) == [("a", "create"), ("b", "create")]

    assert {c.action for c in orchestrator.plan().changes} == {"noop"}
    assert orchestrator.describe_target() == "target: in memory"


def test_a_stop_request_is_honoured_by_the_target_guard(tmp_path: Path) -> None:
    target = RecordingTarget()
    orchestrator = _orchestrator(str(tmp_path / "ctl"), target)
    orchestrator.tables.ensure_exists()
    (tmp_path / "a.yaml").write_text(YAML.format(name="a"))
    orchestrator.manager.load_yaml(str(tmp_path / "a.yaml"))
    orchestrator.stop_requested.set()
    result = orchestrator.run_all_modules()
    assert [(r.module, r.outcome) for r in result] == [("a", "skipped")]
    assert target.jobs == {}
