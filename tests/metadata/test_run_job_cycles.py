"""Modules that run each other's jobs in a loop can never be created: each needs the other's
job id first. Validation rejects the loop and names every task in it."""

from __future__ import annotations

from pathlib import Path

from lakeflow_job_meta.metadata.loader import parse_files


def _module(name: str, runs: str, *, nested: bool = False) -> str:
    task = f"""          task_type: run_job
          run_job_task: {{module_name: {runs}}}"""
    if nested:
        task = f"""          task_type: for_each
          for_each_task:
            inputs: "[1, 2]"
            task:
              task_type: run_job
              run_job_task: {{module_name: {runs}}}"""
    return f"""  - module_name: {name}
    sources:
      - source_id: {name}_task
        source_type: job
        execution_order: 1
        transformation_config:
{task}
"""


def test_two_modules_running_each_other_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("modules:\n" + _module("a", "b") + _module("b", "a"))
    _, issues = parse_files([str(path)])
    messages = [str(i) for i in issues]
    assert messages == [
        f"{path}:9: modules[0].sources[0].transformation_config.run_job_task.module_name: "
        "run_job modules form a cycle: a -> b -> a",
        f"{path}:17: modules[1].sources[0].transformation_config.run_job_task.module_name: "
        "run_job modules form a cycle: a -> b -> a",
    ]
    assert {i.module for i in issues} == {"a", "b"}


def test_a_loop_through_a_for_each_task_is_found(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("modules:\n" + _module("a", "b", nested=True) + _module("b", "c") + _module("c", "a"))
    _, issues = parse_files([str(path)])
    assert len(issues) == 3
    assert all("run_job modules form a cycle: a -> b -> c -> a" in i.message for i in issues)
    assert any(i.field.endswith("for_each_task.task.run_job_task.module_name") for i in issues)


def test_a_chain_without_a_loop_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "chain.yaml"
    last = _module("c", "placeholder").replace("{module_name: placeholder}", "{job_id: 42}")
    path.write_text("modules:\n" + _module("a", "b") + _module("b", "c") + last)
    _, issues = parse_files([str(path)])
    assert issues == []
