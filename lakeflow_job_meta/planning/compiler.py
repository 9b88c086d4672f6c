"""Compile one :class:`Module` into Jobs API 2.2 job settings.

The output is exactly the JSON body ``jobs/create`` takes (minus ``access_control_list``), so the
applier can send it unchanged and the hash of it is stable.

The compiler is a translator: it takes a module that passed the schema and
:mod:`lakeflow_job_meta.metadata.validation` and checks none of their rules again. It reports only
what depends on the run rather than the metadata: the job name, once the environment's prefix is
added, must fit the Jobs API limit, and a notebook's ``base_parameters`` may not override the
``source_id``/``control_table`` the tool sets. A module with such an issue yields no job.

Decisions worth knowing:
- ``format`` is never emitted: the service sets ``MULTI_TASK`` for every Jobs API 2.2 job by itself.
- ``queue`` is always stated: enabled unless the metadata turns it off (the Jobs API 2.2 default).
- ``edit_mode`` defaults to ``UI_LOCKED``: the metadata is the source of truth, UI edits would be
  reverted as drift anyway, so we say so in the UI.
- Empty lists and dicts are never emitted (the SDK drops empty lists, so they would not round-trip
  through ``JobSettings``), with one exception: ``continuous: {}`` means "run continuously".
- A ``pause_status`` the metadata did not set is left out, so the applier keeps the live one; in a
  development environment schedules, triggers and continuous jobs are compiled PAUSED unless the
  metadata says otherwise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.dependencies import Dependency, resolve_dependencies
from lakeflow_job_meta.metadata.limits import MAX_NAME_BYTES
from lakeflow_job_meta.metadata.locations import table_location
from lakeflow_job_meta.metadata.models import (
    CLUSTER_TASK_TYPES,
    DEFAULT_ENVIRONMENT_KEY,
    ENVIRONMENT_TASK_TYPES,
    Module,
    Source,
    canonical_json,
    serverless_dependency,
)
from lakeflow_job_meta.metadata.task_keys import sanitize_task_key
from lakeflow_job_meta.planning.acl import PRINCIPAL_KEYS, RunIdentity, with_owner
from lakeflow_job_meta.planning.canonical import PAUSABLE_BLOCKS, scalar_text, spec_hash
from lakeflow_job_meta.planning.ownership import label_value, merge_tags
from lakeflow_job_meta.vocabulary import EnvironmentMode

DEFAULT_PRIORITY = 100
DEFAULT_EDIT_MODE = "UI_LOCKED"
# Jobs API 2.2 queues runs by default; stating it keeps bundle output (the CLI applies the same
# default) and the spec hash explicit.
DEFAULT_QUEUE = {"enabled": True}
DEFAULT_ENVIRONMENT_VERSION = "2"
RUN_JOB_PLACEHOLDER_ID = 0
_T = TypeVar("_T")
# The Jobs API's ``pause_status`` of a schedule, trigger or continuous block.
PauseStatus = Literal["PAUSED", "UNPAUSED"]

# Module settings copied into the job settings as they are (after dropping empty containers).
PASSTHROUGH_JOB_FIELDS: tuple[str, ...] = (
    "description",
    "schedule",
    "trigger",
    "continuous",
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
    "health",
    "timeout_seconds",
    "max_concurrent_runs",
    "queue",
    "run_as",
    "job_clusters",
    "environments",
)
# Task-level keys of transformation_config copied into the task as they are.
COMMON_TASK_FIELDS: tuple[str, ...] = (
    "description",
    "timeout_seconds",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
    "disabled",
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
    "health",
)

_SAFE_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


# A Unity Catalog ``catalog.schema.table`` name (parts optionally backquoted).
_CATALOG_TABLE = re.compile(r"(?:`[^`]+`|[A-Za-z0-9_-]+)(?:\.(?:`[^`]+`|[A-Za-z0-9_-]+)){2}")


def is_catalog_table_name(control_table: str) -> bool:
    """Whether the control table is named as a notebook on Databricks could read it. A local
    path (embedded mode, ``./ctl``) means nothing on a cluster, so it is never handed to a
    notebook task as its ``control_table`` parameter."""
    return _CATALOG_TABLE.fullmatch(control_table) is not None


@dataclass(frozen=True)
class CompileContext:
    """Everything about the run, not the metadata, that shapes the compiled job."""

    control_table: str
    control_table_id: str
    env_name: str | None = None
    env_mode: EnvironmentMode = EnvironmentMode.PRODUCTION
    default_warehouse_id: str | None = None
    # Workspace folder for inline-SQL files; defaults to a folder per control table.
    managed_sql_root: str | None = None
    default_pause_status: PauseStatus | None = None
    # Added to the development name prefix (``[dev alice] name``) so developers don't collide.
    user_name_prefix: str | None = None
    # Who runs the tool (read by the workspace adapter): the ``run_as`` of a module that names
    # none (``jobs/reset`` without ``run_as`` keeps the previous identity, so it is always sent)
    # and the owner of an ACL that names none. None for the bundle target, where the deploying
    # CLI is the default identity and adds itself as owner.
    run_identity: RunIdentity | None = None

    @property
    def sql_root(self) -> str:
        root = self.managed_sql_root or f"/Workspace/Shared/lakeflow_job_meta/{self.control_table_id}"
        return root.rstrip("/")

    @property
    def name_prefix(self) -> str:
        if self.env_mode != EnvironmentMode.DEVELOPMENT:
            return ""
        parts = [p for p in (self.env_name or "dev", self.user_name_prefix) if p]
        return f"[{' '.join(parts)}] "


@dataclass(frozen=True)
class CompiledJob:
    """One module compiled: the settings to send plus what the applier needs around them."""

    module_name: str
    job_name: str
    settings: dict[str, Any]
    # Workspace path -> SQL text, one file per inline sql_query task.
    managed_files: dict[str, str] = field(default_factory=dict)
    # task_key -> module_name of run_job tasks whose job_id is the placeholder 0.
    run_job_refs: dict[str, str] = field(default_factory=dict)
    # Access control list in jobs/create form (owner included): every job the tool manages in a
    # workspace has one (an owner-only one when the metadata grants nothing), so grants the
    # metadata no longer names are revoked. None for the bundle target when the metadata sets none.
    permissions: list[dict[str, str]] | None = None
    # The ACL as declared, before the running identity was made owner: what the spec hash sees,
    # so a different caller never looks like a metadata change (the ACL digest covers the PUT).
    declared_permissions: list[dict[str, str]] | None = None
    priority: int = DEFAULT_PRIORITY
    # Whether settings carry a pause_status decided by the metadata (or by development mode).
    explicit_pause: bool = False
    # Pause status to give a *new* job when the metadata set none (ctx.default_pause_status).
    pause_status_on_create: str | None = None
    # Take over the one same-name job without ownership tags instead of reporting a conflict.
    adopt_existing: bool = False
    # ``sync: manual``: the apply holds this module's changes until ``--module`` names it. Not
    # part of the spec hash: switching modes changes no job.
    sync_manual: bool = False
    # Job-settings paths whose live value the UI owns (never drift, kept on a reset).
    ignore_drift: list[str] = field(default_factory=list)
    # Earlier module names: a job tracked under one is taken over and renamed.
    renamed_from: list[str] = field(default_factory=list)

    @property
    def spec_hash(self) -> str:
        return spec_hash(
            self.settings,
            explicit_pause=self.explicit_pause,
            permissions=self.declared_permissions,
            run_job_refs=self.run_job_refs,
        )

    @property
    def managed_file_hashes(self) -> dict[str, str]:
        return {path: file_sha256(text) for path, text in sorted(self.managed_files.items())}


@dataclass(frozen=True)
class CompileResult:
    job: CompiledJob | None
    issues: list[MetadataIssue] = field(default_factory=list)


def file_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compile_module(module: Module, ctx: CompileContext) -> CompileResult:
    """Compile ``module``; an inactive module or one without active sources gives no job, no issue."""
    if module.settings.get("is_active", True) is False or not module.active_sources:
        return CompileResult(job=None, issues=[])
    compiler = _ModuleCompiler(module, ctx)
    job = compiler.compile()
    issues = sorted(set(compiler.issues))
    return CompileResult(job=None if issues else job, issues=issues)


@overload
def prune_empty(value: dict[str, Any]) -> dict[str, Any]: ...
@overload
def prune_empty(value: list[Any]) -> list[Any]: ...
@overload
def prune_empty(value: _T) -> _T: ...
def prune_empty(value: Any) -> Any:
    """Drop empty lists/dicts (recursively) that the SDK would not round-trip."""
    if isinstance(value, dict):
        pruned = {k: prune_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        pruned_items = [prune_empty(v) for v in value]
        return [v for v in pruned_items if v not in ({}, [], None)]
    return value


def iter_tasks(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every task of the job, for_each inner tasks included."""
    found: list[dict[str, Any]] = []
    pending = list(settings.get("tasks", []))
    while pending:
        task = pending.pop()
        found.append(task)
        inner = task.get("for_each_task", {}).get("task")
        if inner:
            pending.append(inner)
    return found


class _ModuleCompiler:
    """Holds the state of one module's compilation so the per-task builders stay small."""

    def __init__(self, module: Module, ctx: CompileContext):
        self.module = module
        self.ctx = ctx
        self.settings_in: dict[str, Any] = dict(module.settings)
        self.issues: list[MetadataIssue] = []
        self.managed_files: dict[str, str] = {}
        self.run_job_refs: dict[str, str] = {}
        self.default_env_used = False
        self.default_env_deps: set[str] = set()
        self.sources = sorted(module.active_sources, key=lambda s: sanitize_task_key(s.source_id))
        self.task_keys = {s.source_id: sanitize_task_key(s.source_id) for s in self.sources}
        self.module_location = f"module {module.name}"
        self.environment_keys = sorted(
            str(e["environment_key"]) for e in self.settings_in.get("environments") or []
        )

    # -- issues -------------------------------------------------------------------------------

    def module_issue(self, field_name: str, message: str) -> None:
        self.issues.append(MetadataIssue(self.module_location, field_name, message, module=self.module.name))

    def source_issue(self, source: Source, field_name: str, message: str) -> None:
        if source.source_file:
            location = f"{source.source_file}:{source.line}" if source.line else source.source_file
        else:
            location = table_location(self.ctx.control_table, "source_id", source.source_id)
        self.issues.append(MetadataIssue(location, field_name, message, module=self.module.name))

    # -- job level ------------------------------------------------------------------------------

    def compile(self) -> CompiledJob:
        s_in = self.settings_in
        job_name = f"{self.ctx.name_prefix}{self.module.name}"
        if len(job_name.encode("utf-8")) > MAX_NAME_BYTES:
            self.module_issue("module_name", f"job name is longer than {MAX_NAME_BYTES} bytes")
        settings: dict[str, Any] = {"name": job_name}
        for name in PASSTHROUGH_JOB_FIELDS:
            if name in s_in and s_in[name] is not None:
                value = prune_empty(copy.deepcopy(s_in[name]))
                if value not in ({}, [], "") or name == "continuous":
                    settings[name] = value
        if "run_as" not in settings and self.ctx.run_identity is not None:
            identity = self.ctx.run_identity
            settings["run_as"] = {identity.kind: identity.name}
        settings["edit_mode"] = s_in.get("edit_mode") or DEFAULT_EDIT_MODE
        settings.setdefault("queue", dict(DEFAULT_QUEUE))
        explicit_pause = self._apply_pause(settings)
        parameters = self._parameters(s_in.get("parameters"))
        if parameters:
            settings["parameters"] = parameters
        tags, _ = merge_tags(  # validation checked the user's tags
            s_in.get("tags") if isinstance(s_in.get("tags"), dict) else None,
            self.ctx.control_table_id,
            self.module.name,
            location=self.module_location,
        )
        settings["tags"] = tags
        tasks = self._tasks()
        if tasks:
            settings["tasks"] = tasks
        if self.default_env_used:
            spec: dict[str, Any] = {"environment_version": DEFAULT_ENVIRONMENT_VERSION}
            if self.default_env_deps:
                spec["dependencies"] = sorted(self.default_env_deps)
            settings["environments"] = [{"environment_key": DEFAULT_ENVIRONMENT_KEY, "spec": spec}]
        has_pausable = any(block in settings for block in PAUSABLE_BLOCKS)
        declared = self._permissions(s_in.get("permissions"))
        return CompiledJob(
            module_name=self.module.name,
            job_name=job_name,
            settings=settings,
            managed_files=dict(sorted(self.managed_files.items())),
            run_job_refs=dict(sorted(self.run_job_refs.items())),
            permissions=(
                sorted(with_owner(declared or [], self.ctx.run_identity), key=canonical_json)
                if declared or self.ctx.run_identity is not None
                else None
            ),
            declared_permissions=declared,
            priority=self._priority(),
            explicit_pause=explicit_pause,
            pause_status_on_create=(
                self.ctx.default_pause_status if has_pausable and not explicit_pause else None
            ),
            adopt_existing=self._adopt_existing(),
            sync_manual=s_in.get("sync") == "manual",
            ignore_drift=sorted({str(p) for p in s_in.get("ignore_drift") or []}),
            renamed_from=[str(n) for n in s_in.get("renamed_from") or [] if n != self.module.name],
        )

    def _apply_pause(self, settings: dict[str, Any]) -> bool:
        """Pause in development unless the metadata says. Returns whether settings carry a status."""
        explicit = False
        for block in PAUSABLE_BLOCKS:
            value = settings.get(block)
            if not isinstance(value, dict):
                continue
            if "pause_status" in value:
                explicit = True
            elif self.ctx.env_mode == EnvironmentMode.DEVELOPMENT:
                value["pause_status"] = "PAUSED"
                explicit = True
        return explicit

    def _parameters(self, value: Any) -> list[dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        for item in value if isinstance(value, list) else []:
            result[item["name"]] = {"name": item["name"], "default": scalar_text(item["default"])}
        return [result[name] for name in sorted(result)]

    def _permissions(self, value: Any) -> list[dict[str, str]] | None:
        """The declared ACL in jobs/create form (validation checked every entry)."""
        if value is None:
            return None
        acl = [
            {k: str(item[k]) for k in (*PRINCIPAL_KEYS, "permission_level") if k in item} for item in value
        ]
        return sorted(acl, key=canonical_json) or None

    def _adopt_existing(self) -> bool:
        return self.settings_in.get("adopt_existing", False) is True  # its type is the schema's

    def _priority(self) -> int:
        return int(self.settings_in.get("priority", DEFAULT_PRIORITY))

    def _warehouse(self, explicit: Any) -> str | None:
        return explicit or self.settings_in.get("default_warehouse_id") or self.ctx.default_warehouse_id

    # -- tasks ------------------------------------------------------------------------------------

    def _tasks(self) -> list[dict[str, Any]]:
        upstream = resolve_dependencies(self.sources)
        tasks: list[dict[str, Any]] = []
        for source in self.sources:
            tc = source.transformation_config
            task = self._task(source, tc, self.task_keys[source.source_id], "transformation_config")
            depends_on = self._depends_on(upstream[source.source_id])
            if depends_on:
                task["depends_on"] = depends_on
            tasks.append(task)
        return sorted(tasks, key=lambda t: t["task_key"])

    def _depends_on(self, upstream: tuple[Dependency, ...]) -> list[dict[str, str]]:
        """``depends_on`` of a task from its resolved upstream sources (execution_order or the
        explicit list; validation checked they are active sources of this module, not a cycle)."""
        result: dict[str, dict[str, str]] = {}
        for dependency in upstream:
            dep = {"task_key": self.task_keys[dependency.source_id]}
            if dependency.outcome is not None:
                dep["outcome"] = dependency.outcome
            result[dep["task_key"]] = dep
        return [result[k] for k in sorted(result)]

    def _task(self, source: Source, tc: dict[str, Any], task_key: str, prefix: str) -> dict[str, Any]:
        """One task from a transformation_config (or the inner task of a for_each)."""
        task_type = str(tc["task_type"])
        task: dict[str, Any] = {"task_key": task_key}
        self._builders()[task_type](source, tc, task, prefix)
        for name in COMMON_TASK_FIELDS:
            if tc.get(name) is not None:
                value = prune_empty(copy.deepcopy(tc[name]))
                if value not in ({}, []):
                    task[name] = value
        if "run_if" in tc:
            task["run_if"] = tc["run_if"]
        self._compute(tc, task, task_type)
        return task

    def _builders(self) -> dict[str, Callable[[Source, dict[str, Any], dict[str, Any], str], None]]:
        return {
            "notebook": self._notebook,
            "sql_query": self._sql_query,
            "sql_file": self._sql_file,
            "python_wheel": self._python_wheel,
            "spark_python": self._spark_python,
            "spark_jar": self._spark_jar,
            "pipeline": self._pipeline,
            "run_job": self._run_job,
            "dbt": self._dbt,
            "condition": self._condition,
            "for_each": self._for_each,
        }

    @staticmethod
    def _str_map(value: Any) -> dict[str, str]:
        return {str(k): scalar_text(v) for k, v in sorted((value or {}).items(), key=lambda kv: str(kv[0]))}

    @staticmethod
    def _str_list(value: Any) -> list[str]:
        return [scalar_text(v) for v in value or []]

    def _notebook(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        user_params = self._str_map(tc.get("base_parameters"))
        ours = {"source_id": source.source_id}
        if is_catalog_table_name(self.ctx.control_table):
            ours["control_table"] = self.ctx.control_table
        for key, value in ours.items():  # the control table's name is the run's, not the metadata's
            if key in user_params and user_params[key] != value:
                self.source_issue(
                    source, f"{prefix}.base_parameters.{key}", "is set by the tool and cannot be overridden"
                )
        params = dict(sorted({**user_params, **ours}.items()))
        task["notebook_task"] = {"notebook_path": tc["notebook_path"], "base_parameters": params}

    def _sql_common(self, block: dict[str, Any]) -> dict[str, Any]:
        sql_task: dict[str, Any] = {}
        warehouse = self._warehouse(block.get("warehouse_id"))
        if warehouse:  # validation guarantees one (the block's, the module's or the run's)
            sql_task["warehouse_id"] = str(warehouse)
        params = self._str_map(block.get("parameters"))
        if params:
            sql_task["parameters"] = params
        return sql_task

    def _sql_query(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["sql_task"]
        sql_task = self._sql_common(block)
        module_dir = (
            self.module.name if _SAFE_PATH_SEGMENT.match(self.module.name) else label_value(self.module.name)
        )
        path = f"{self.ctx.sql_root}/{module_dir}/{task['task_key']}.sql"
        self.managed_files[path] = block["sql_query"]
        sql_task["file"] = {"path": path, "source": "WORKSPACE"}
        task["sql_task"] = sql_task

    def _sql_file(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["sql_task"]
        sql_task = self._sql_common(block)
        sql_task["file"] = {"path": block["sql_file_path"], "source": "WORKSPACE"}
        task["sql_task"] = sql_task

    def _python_wheel(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["python_wheel_task"]
        out: dict[str, Any] = {"package_name": block["package_name"], "entry_point": block["entry_point"]}
        params = self._str_list(block.get("parameters"))
        named = self._str_map(block.get("named_parameters"))
        if params:
            out["parameters"] = params
        if named:
            out["named_parameters"] = named
        task["python_wheel_task"] = out

    def _spark_python(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["spark_python_task"]
        out: dict[str, Any] = {"python_file": block["python_file"]}
        params = self._str_list(block.get("parameters"))
        if params:
            out["parameters"] = params
        task["spark_python_task"] = out

    def _spark_jar(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["spark_jar_task"]
        out: dict[str, Any] = {"main_class_name": block["main_class_name"]}
        params = self._str_list(block.get("parameters"))
        if params:
            out["parameters"] = params
        task["spark_jar_task"] = out

    def _pipeline(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["pipeline_task"]
        out: dict[str, Any] = {"pipeline_id": block["pipeline_id"]}
        if "full_refresh" in block:
            out["full_refresh"] = block["full_refresh"]
        task["pipeline_task"] = out

    def _run_job(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        """``module_name`` compiles to the placeholder job id the applier resolves; ``job_id``
        (an integer or a string of digits) passes through."""
        block = tc["run_job_task"]
        out: dict[str, Any] = {"job_id": RUN_JOB_PLACEHOLDER_ID}
        if "module_name" in block:
            self.run_job_refs[task["task_key"]] = block["module_name"]
        else:
            out["job_id"] = int(block["job_id"])
        params = self._str_map(block.get("job_parameters"))
        if params:
            out["job_parameters"] = params
        task["run_job_task"] = out

    def _dbt(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["dbt_task"]
        out: dict[str, Any] = {"commands": self._str_list(block["commands"])}
        for key in ("project_directory", "warehouse_id", "catalog", "schema", "profiles_directory"):
            if block.get(key) is not None:
                out[key] = scalar_text(block[key])
        task["dbt_task"] = out

    def _condition(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        block = tc["condition_task"]
        task["condition_task"] = {
            "op": block["op"],
            "left": scalar_text(block["left"]),
            "right": scalar_text(block["right"]),
        }

    def _for_each(self, source: Source, tc: dict[str, Any], task: dict[str, Any], prefix: str) -> None:
        """A YAML list of inputs becomes the JSON string the Jobs API takes; the inner task
        (never a for_each, never with dependencies) gets a key of its own."""
        block = tc["for_each_task"]
        inputs = block["inputs"]
        if isinstance(inputs, list):
            inputs = json.dumps(inputs, ensure_ascii=False, separators=(",", ":"))
        out: dict[str, Any] = {"inputs": inputs}
        if "concurrency" in block:
            out["concurrency"] = block["concurrency"]
        inner_key = sanitize_task_key(f"{task['task_key']}_iteration")
        out["task"] = self._task(source, block["task"], inner_key, f"{prefix}.for_each_task.task")
        task["for_each_task"] = out

    # -- compute ----------------------------------------------------------------------------------

    def _compute(self, tc: dict[str, Any], task: dict[str, Any], task_type: str) -> None:
        if task_type not in CLUSTER_TASK_TYPES:
            return
        cluster_key, cluster_id = tc.get("job_cluster_key"), tc.get("existing_cluster_id")
        libraries = tc.get("libraries") if isinstance(tc.get("libraries"), list) else None
        if cluster_key or cluster_id:
            self._cluster_compute(tc, task, libraries)
        else:  # serverless (validation gives spark_jar tasks a cluster)
            self._serverless_compute(tc, task, task_type, libraries)

    def _cluster_compute(self, tc: dict[str, Any], task: dict[str, Any], libraries: list[Any] | None) -> None:
        if tc.get("job_cluster_key"):
            task["job_cluster_key"] = str(tc["job_cluster_key"])
        else:
            task["existing_cluster_id"] = str(tc["existing_cluster_id"])
        if libraries:
            task["libraries"] = prune_empty(copy.deepcopy(libraries))

    def _serverless_compute(
        self, tc: dict[str, Any], task: dict[str, Any], task_type: str, libraries: list[Any] | None
    ) -> None:
        """Serverless: dbt takes the default warehouse; Python tasks get the module's environment
        or the generated default one, which carries their libraries (validation checked them)."""
        if task_type == "dbt" and not task["dbt_task"].get("warehouse_id"):
            warehouse = self._warehouse(None)
            if warehouse:
                task["dbt_task"]["warehouse_id"] = str(warehouse)
        env_key = tc.get("environment_key")
        if env_key:
            if env_key == DEFAULT_ENVIRONMENT_KEY and not self.environment_keys:
                self.default_env_used = True
            task["environment_key"] = str(env_key)
        if task_type not in ENVIRONMENT_TASK_TYPES:
            return
        if self.environment_keys:
            if not env_key and len(self.environment_keys) == 1:
                task["environment_key"] = self.environment_keys[0]
            return
        # No module environments: the generated default environment carries the libraries.
        self.default_env_used = True
        task["environment_key"] = DEFAULT_ENVIRONMENT_KEY
        for library in libraries or []:
            dependency = serverless_dependency(library)
            if dependency is not None:
                self.default_env_deps.add(dependency)
