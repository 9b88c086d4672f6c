"""The ``bundle:DIR`` target: the jobs as a Databricks Asset Bundle on disk.

The actual state is the folder itself, so plan compares rendered files with the files there and
apply writes only the files whose bytes differ: an unchanged module is re-written byte-identically
(in fact, not at all).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lakeflow_job_meta.adapters.bundle import module_of_bundle_path, render_bundle, write_bundle
from lakeflow_job_meta.engine.results import OUTCOME_ERROR, ModuleResult, RunResult
from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.planning.plan import Plan, PlannedChange

if TYPE_CHECKING:
    from lakeflow_job_meta.engine.metadata_manager import DesiredState
    from lakeflow_job_meta.engine.orchestrator import JobOrchestrator
    from lakeflow_job_meta.planning.compiler import CompiledJob


def _bundle_name(orchestrator: JobOrchestrator) -> str:
    return f"lakeflow_job_meta_{orchestrator.table_id}"


def _module_actions(directory: str, files: Mapping[str, str], known: set[str]) -> dict[str, str]:
    """create/update/noop per module from rendered files; delete for modules whose files remain
    on disk but are no longer rendered."""
    root = Path(directory)
    actions: dict[str, str] = {}
    for relpath, text in files.items():
        module = module_of_bundle_path(relpath)
        if module is None:
            continue
        path = root / relpath
        if not path.exists():
            action = "create" if relpath.endswith(".job.yml") else "update"
        elif path.read_text(encoding="utf-8") != text:
            action = "update"
        else:
            action = "noop"
        previous = actions.get(module, "noop")
        if previous == "noop" or (previous == "update" and action == "create"):
            actions[module] = action
    resources = root / "resources"
    if resources.is_dir():
        for path in resources.rglob("*"):
            relpath = path.relative_to(root).as_posix()
            module = module_of_bundle_path(relpath)
            if module is not None and module not in actions and path.is_file() and module not in known:
                actions[module] = "delete"
    return actions


def plan_bundle(
    orchestrator: JobOrchestrator,
    compiled: dict[str, CompiledJob],
    issues: dict[str, list[MetadataIssue]],
    desired: DesiredState,
) -> Plan:
    directory = orchestrator.target.bundle_dir or "bundle"
    files = render_bundle(list(compiled.values()), _bundle_name(orchestrator))
    actions = _module_actions(directory, files, set(issues))
    changes = [
        PlannedChange(
            module=m, action=a, job_id=None, job_name=compiled[m].job_name if m in compiled else None
        )
        for m, a in sorted(actions.items())
    ]
    changes += [
        PlannedChange(module=m, action="error", job_id=None, reason="; ".join(str(i) for i in found))
        for m, found in sorted(issues.items())
    ]
    return Plan(changes=changes)


def apply_bundle(
    orchestrator: JobOrchestrator,
    compiled: dict[str, CompiledJob],
    issues: dict[str, list[MetadataIssue]],
    desired: DesiredState,
    run_id: str,
) -> RunResult:
    directory = orchestrator.target.bundle_dir or "bundle"
    os.makedirs(directory, exist_ok=True)
    # A module with errors keeps its last good files: render it from what is on disk.
    files = render_bundle(list(compiled.values()), _bundle_name(orchestrator))
    actions = _module_actions(directory, files, set(issues))
    written = write_bundle(directory, files, keep_modules=set(issues))
    result = RunResult(run_id=run_id, target=orchestrator.target_key)
    for module, action in sorted(actions.items()):
        job = compiled.get(module)
        result.results.append(
            ModuleResult(
                module=module,
                action=action,
                job_name=job.job_name if job else None,
                other_writes=sum(
                    1 for p in [*written.written, *written.deleted] if module_of_bundle_path(p) == module
                ),
            )
        )
    for module, found in sorted(issues.items()):
        result.results.append(
            ModuleResult(
                module=module, action="error", outcome=OUTCOME_ERROR, error="; ".join(str(i) for i in found)
            )
        )
    return result
