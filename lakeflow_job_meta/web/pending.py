"""A module's pending diff on the status page: per target, what an apply would change in its job,
field by field, in the planning layer's own words (``FieldChange``, the lines ``plan`` prints).

Where the last applied settings come from, per target:

- a held ``sync: manual`` change: the diff the monitor's plan recorded in the state table when it
  held the change (against the live job, ACL lines included); it is shown as recorded;
- a bundle folder: the module's job file on disk against the file its compiled job renders to,
  compared as a bundle ``plan`` compares them;
- a workspace job: the live job (one ``jobs/get``) against the compiled job, as a workspace
  ``plan`` compares them, when the page has a workspace client (the Databricks App, ``serve
  --profile``); without one the page says so. The identity a module naming no ``run_as`` runs
  as is the writer's (the monitor's), which the page cannot know: the live one is kept.

Nothing here writes, and nothing is read from a workspace without a client given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lakeflow_job_meta.adapters.bundle import job_of_file, job_of_text, job_resource_key, render_job_files
from lakeflow_job_meta.engine.orchestrator import manual_hint
from lakeflow_job_meta.engine.targets.workspace import resolve_run_job_refs
from lakeflow_job_meta.errors import JobsApiError, LakeflowJobMetaError
from lakeflow_job_meta.planning.compiler import CompiledJob
from lakeflow_job_meta.planning.normalize import FieldChange, diff_settings
from lakeflow_job_meta.planning.plan import diff_against_live
from lakeflow_job_meta.vocabulary import PlanAction

Compile = Callable[[str], CompiledJob]
# (target key, job id) -> the live job's settings, or None when it is gone; raises JobsApiError,
# or LakeflowJobMetaError when the page cannot read that workspace.
LiveSettings = Callable[[str, int], Mapping[str, Any] | None]


def _fields(diff: list[FieldChange]) -> dict[str, Any]:
    return {"diff": [str(change) for change in diff], "fields": [change.as_dict() for change in diff]}


def _change(
    target: Mapping[str, Any], action: str, reason: str, source: str | None, **more: Any
) -> dict[str, Any]:
    return {
        "target": target.get("target"),
        "action": action,
        "reason": reason,
        "source": source,
        "diff": [],
        "fields": [],
        **more,
    }


def _recorded(module: str, target: Mapping[str, Any]) -> dict[str, Any]:
    held = target["pending"]
    return _change(
        target,
        str(held.get("action") or PlanAction.UPDATE),
        str(held.get("reason") or ""),
        "recorded",
        diff=[str(line) for line in held.get("diff") or []],
        detected_at=held.get("detected_at"),
        hint=manual_hint(module),
    )


def _bundle(target: Mapping[str, Any], job: CompiledJob, keys: Mapping[str, str]) -> dict[str, Any]:
    path = Path(str(target.get("file")))
    rendered = render_job_files(job, keys)
    text = next(body for relpath, body in rendered.items() if relpath.endswith(path.name))
    if not path.is_file():
        return _change(target, PlanAction.CREATE, "the job file is not in the folder", "job file")
    old = job_of_file(path)
    new = job_of_text(text)
    if old is None or new is None:
        return _change(target, PlanAction.UPDATE, "the job file is not one job the tool wrote", "job file")
    diff = diff_settings(new, old, server_defaults=False)
    action = PlanAction.UPDATE if diff else PlanAction.NOOP
    return _change(target, action, "metadata changed" if diff else "", "job file", **_fields(diff))


def _workspace(
    target: Mapping[str, Any],
    job: CompiledJob,
    lag: bool,
    job_ids: Mapping[str, int],
    live_settings: LiveSettings | None,
) -> dict[str, Any]:
    if not target.get("job_id"):
        return _change(target, PlanAction.CREATE, "no job yet", None)
    if "#env=" in str(target.get("target")):
        return _change(
            target, "unknown", "a development environment's job: compare it with `plan --env`", None
        )
    if live_settings is None:
        reason = "the page has no workspace client to read the live job (serve --profile, or the App)"
        return _change(target, "unknown", reason, None)
    try:
        live = live_settings(str(target["target"]), int(target["job_id"]))
    except (JobsApiError, LakeflowJobMetaError) as error:
        return _change(target, "unknown", f"could not read job {target['job_id']}: {error}", None)
    if live is None:
        return _change(
            target, PlanAction.CREATE, f"job {target['job_id']} is gone from the workspace", "live job"
        )
    resolved, _ = resolve_run_job_refs(job, job_ids)
    if "run_as" not in resolved.settings and "run_as" in live:
        resolved = _with_setting(resolved, "run_as", live["run_as"])
    diff = diff_against_live(resolved, live)
    if not diff:
        return _change(target, PlanAction.NOOP, "", "live job")
    reason = "metadata changed" if lag else "the job was changed outside the metadata"
    return _change(target, PlanAction.UPDATE, reason, "live job", drift=not lag, **_fields(diff))


def _with_setting(job: CompiledJob, key: str, value: Any) -> CompiledJob:
    return replace(job, settings={**job.settings, key: value})


def pending_changes(
    module: Mapping[str, Any],
    *,
    compile_one: Compile | None,
    job_ids: Callable[[str], Mapping[str, int]],
    live_settings: LiveSettings | None = None,
) -> dict[str, Any]:
    """The pending diff of ``module`` (its ``status`` entry): ``changes`` per target, and
    ``error`` when the module does not compile (its errors are shown above it on the page)."""
    targets = list(module.get("targets") or [])
    if not targets and module.get("active"):
        targets = [{"target": None, "kind": None}]
    changes: list[dict[str, Any]] = []
    job: CompiledJob | None = None
    error: str | None = None
    if compile_one is not None and module.get("in_metadata") and module.get("active"):
        try:
            job = compile_one(str(module["module"]))
        except LakeflowJobMetaError as failed:
            error = str(failed)
    keys: dict[str, str] | None = None

    def on_disk(target: Mapping[str, Any], job: CompiledJob) -> dict[str, Any]:
        nonlocal keys
        if keys is None:
            keys = _run_job_keys(job, compile_one) if compile_one is not None else {}
        return _bundle(target, job, keys)

    for target in targets:
        if target.get("pending"):
            held = _recorded(str(module["module"]), target)
            if not held["diff"] and job is not None and target.get("kind") == "bundle":
                # A bundle's held change is recorded without its diff: the job file has it.
                found = on_disk(target, job)
                held.update(source=found["source"], diff=found["diff"], fields=found["fields"])
            changes.append(held)
        elif job is None:
            action = PlanAction.ERROR if error else "unknown"
            changes.append(_change(target, action, error or "not in the metadata or inactive", None))
        elif target.get("kind") is None:
            changes.append(_change(target, PlanAction.CREATE, "not applied yet", None))
        elif target["kind"] == "bundle":
            changes.append(on_disk(target, job))
        else:
            ids = job_ids(str(target["target"]))
            changes.append(_workspace(target, job, bool(target.get("lag")), ids, live_settings))
    return {"error": error, "changes": changes}


def _run_job_keys(job: CompiledJob, compile_one: Compile) -> dict[str, str]:
    """The resource keys of the modules the job's run_job tasks name (a renamed one keeps its
    first name's key), as the bundle renders them; a module that does not compile keeps the
    default key."""
    keys: dict[str, str] = {}
    for name in set(job.run_job_refs.values()):
        try:
            keys[name] = job_resource_key(compile_one(name))
        except LakeflowJobMetaError:
            continue
    return keys
