"""The ``bundle:DIR`` target: the jobs as a Databricks Asset Bundle on disk.

The actual state is the folder itself, so plan compares rendered files with the files there and
apply writes only the files whose bytes differ: an unchanged module is re-written byte-identically
(in fact, not at all).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lakeflow_job_meta.adapters.bundle import (
    JOB_FILE_SUFFIX,
    RESOURCES_DIR,
    bundle_stem,
    is_managed_file,
    module_of_bundle_path,
    render_bundle,
    write_bundle,
)
from lakeflow_job_meta.engine.results import OUTCOME_ERROR, ModuleResult, RunResult
from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.planning.plan import Plan, PlannedChange

if TYPE_CHECKING:
    from lakeflow_job_meta.engine.metadata_manager import DesiredState
    from lakeflow_job_meta.engine.orchestrator import JobOrchestrator
    from lakeflow_job_meta.planning.compiler import CompiledJob


def _bundle_name(orchestrator: JobOrchestrator) -> str:
    return f"lakeflow_job_meta_{orchestrator.table_id}"


def _stem_names(*groups: Iterable[str]) -> dict[str, str]:
    """Bundle file stem -> module name, for every module the metadata knows. A stem differs from
    its module name when the name is not path-safe (``"Sales Daily"`` -> ``Sales_Daily_<hash>``)."""
    return {bundle_stem(name): name for group in groups for name in group}


def _name_of_job_file(path: Path, stem: str, name_prefix: str) -> str:
    """The module name of a job file we wrote for a module the metadata no longer knows: the job's
    ``name`` without the environment prefix, trusted only if it maps back to the file's stem."""
    if not path.name.endswith(JOB_FILE_SUFFIX):
        return stem
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        (job,) = document["resources"]["jobs"].values()
        name = str(job["name"])
    except Exception:  # a hand-edited or foreign file: fall back to the stem
        return stem
    if name_prefix and name.startswith(name_prefix):
        name = name[len(name_prefix) :]
    return name if bundle_stem(name) == stem else stem


def _module_actions(
    directory: str,
    files: Mapping[str, str],
    names: Mapping[str, str],
    keep: Collection[str],
    name_prefix: str = "",
) -> dict[str, str]:
    """create/update/noop per module (by name) from rendered files; delete for modules whose
    managed files remain on disk but are no longer rendered. ``keep`` holds the module names whose
    files stay as they are (modules with errors); files without our marker are never ours."""
    root = Path(directory)
    keep_stems = {bundle_stem(name) for name in keep}
    actions: dict[str, str] = {}
    rendered: set[str] = set()
    for relpath, text in files.items():
        stem = module_of_bundle_path(relpath)
        if stem is None:
            continue
        rendered.add(stem)
        module = names.get(stem, stem)
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
        for path in sorted(resources.rglob("*")):
            relpath = path.relative_to(root).as_posix()
            stem = module_of_bundle_path(relpath)
            if (
                stem is None
                or stem in rendered
                or stem in keep_stems
                or not path.is_file()
                or not is_managed_file(path)
            ):
                continue
            job_file = root / RESOURCES_DIR / f"{stem}{JOB_FILE_SUFFIX}"
            module = names.get(stem) or _name_of_job_file(job_file, stem, name_prefix)
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
    names = _stem_names(desired.known, compiled, issues)
    actions = _module_actions(directory, files, names, set(issues), orchestrator.context.name_prefix)
    changes = [
        PlannedChange(
            module=m,
            action=a,
            job_id=None,
            job_name=compiled[m].job_name if m in compiled else None,
            shown=compiled.get(m) if a == "create" else None,
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
    names = _stem_names(desired.known, compiled, issues)
    actions = _module_actions(directory, files, names, set(issues), orchestrator.context.name_prefix)
    written = write_bundle(directory, files, keep_modules=set(issues))
    writes_by_stem: dict[str, int] = {}
    for path in [*written.written, *written.deleted]:
        stem = module_of_bundle_path(path)
        if stem is not None:
            writes_by_stem[stem] = writes_by_stem.get(stem, 0) + 1
    result = RunResult(run_id=run_id, target=orchestrator.target_key)
    for module, action in sorted(actions.items()):
        job = compiled.get(module)
        result.results.append(
            ModuleResult(
                module=module,
                action=action,
                job_name=job.job_name if job else None,
                other_writes=writes_by_stem.get(bundle_stem(module), 0),
            )
        )
    for module, found in sorted(issues.items()):
        result.results.append(
            ModuleResult(
                module=module, action="error", outcome=OUTCOME_ERROR, error="; ".join(str(i) for i in found)
            )
        )
    return result
