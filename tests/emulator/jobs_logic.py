"""Pure Jobs API 2.2 logic of the emulator: validation, server-filled defaults, partial
update merge and array pagination. Every rule is listed, with its source, in
``docs/API_FACTS.md``."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

MAX_TASKS = 1000
MAX_TAGS = 25
MAX_CONCURRENT_RUNS = 1000
MAX_NAME_BYTES = 4096
MAX_DESCRIPTION_CHARS = 27_700
# SDK docstrings: DbtTask.commands "must start with dbt ... A maximum of up to 10 commands";
# WebhookNotifications.on_*: "A maximum of 3 destinations can be specified".
MAX_DBT_COMMANDS = 10
MAX_WEBHOOKS_PER_EVENT = 3
PAGE_SIZE = 100
PAGED_ARRAYS = ("tasks", "job_clusters", "environments", "parameters")

TASK_TYPE_FIELDS = (
    "ai_runtime_task",
    "alert_task",
    "clean_rooms_notebook_task",
    "condition_task",
    "dashboard_task",
    "dbt_cloud_task",
    "dbt_platform_task",
    "dbt_task",
    "for_each_task",
    "gen_ai_compute_task",
    "notebook_task",
    "pipeline_task",
    "power_bi_task",
    "python_operator_task",
    "python_wheel_task",
    "run_job_task",
    "spark_jar_task",
    "spark_python_task",
    "spark_submit_task",
    "sql_task",
)
RUN_IF_VALUES = (
    "ALL_SUCCESS",
    "ALL_DONE",
    "NONE_FAILED",
    "AT_LEAST_ONE_SUCCESS",
    "ALL_FAILED",
    "AT_LEAST_ONE_FAILED",
)
TASK_KEY_RE = re.compile(r"^[\w\-]{1,100}$", re.ASCII)
CLOUD_ATTRIBUTE_KEYS = ("aws_attributes", "azure_attributes", "gcp_attributes")
# Task blocks whose ``source`` the service fills (WORKSPACE, or GIT with a git_source).
SOURCE_TASK_BLOCKS = ("notebook_task", "spark_python_task", "dbt_task")
DEFAULT_AWS_ATTRIBUTES = {"availability": "SPOT_WITH_FALLBACK", "zone_id": "us-east-1c"}
GIT_PROVIDER_MESSAGE = (
    "git_source.git_provider must be one of: github,gitlab,bitbucketcloud,gitlabenterpriseedition,"
    "bitbucketserver,azuredevopsservices,githubenterprise,awscodecommit"
)


class ApiError(Exception):
    """An error reply: HTTP status + Databricks ``error_code`` + ``message``."""

    def __init__(self, status: int, error_code: str | None, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        out: dict[str, Any] = {}
        if self.error_code:
            out["error_code"] = self.error_code
        out["message"] = self.message
        return out


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def job_not_found(job_id: Any) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Job {job_id} does not exist.")


def owner_change_denied(job_id: Any, user: str) -> ApiError:
    """A non-admin caller moving a job's owner. The rule is the docs' ("Jobs access control": only
    an admin changes a job's owner); the 403 PERMISSION_DENIED and this wording are the
    emulator's (UNKNOWN: no source we could read records the service's reply)."""
    return ApiError(
        403,
        "PERMISSION_DENIED",
        f"User {user} is not a workspace admin: only an admin can change the owner of job {job_id}",
    )


def _check_webhooks(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        return
    for event, destinations in block.items():
        if isinstance(destinations, list) and len(destinations) > MAX_WEBHOOKS_PER_EVENT:
            raise invalid(
                f"{where}.{event}: at most {MAX_WEBHOOKS_PER_EVENT} destinations, got {len(destinations)}"
            )


def permission_denied_on_job(job_id: Any, user: str) -> ApiError:
    return ApiError(
        403,
        "PERMISSION_DENIED",
        f"User {user} does not have Admin or Manage or Owner permissions on job {job_id}",
    )


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------
def _check_int(settings: dict, key: str, lo: int, hi: int | None) -> None:
    if key not in settings:
        return
    v = settings[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise invalid(f"{key} must be an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise invalid(f"{key} must be {bound}, got {v}")


def _check_cluster_keys(settings: dict) -> set[str]:
    keys: set[str] = set()
    for jc in settings.get("job_clusters") or []:
        key = jc.get("job_cluster_key") if isinstance(jc, dict) else None
        if not key:
            raise invalid("job_clusters[].job_cluster_key is required")
        if key in keys:
            raise invalid(f"Duplicate job cluster key: {key}")
        if not isinstance(jc.get("new_cluster"), dict):
            raise invalid(f"Job cluster {key} must define new_cluster")
        keys.add(key)
    return keys


def _check_environment_keys(settings: dict) -> set[str]:
    keys: set[str] = set()
    for env in settings.get("environments") or []:
        key = env.get("environment_key") if isinstance(env, dict) else None
        if not key:
            raise invalid("environments[].environment_key is required")
        if key in keys:
            raise invalid(f"Duplicate environment key: {key}")
        keys.add(key)
    return keys


def _check_task(task: Any, where: str) -> str:
    if not isinstance(task, dict):
        raise invalid(f"{where} must be an object")
    key = task.get("task_key")
    if not key or not isinstance(key, str):
        raise invalid(f"{where}.task_key is required")
    if not TASK_KEY_RE.match(key):
        raise invalid(
            f"Invalid task_key '{key}': it must be 1-100 characters from letters, digits, '_' and '-'"
        )
    types = [f for f in TASK_TYPE_FIELDS if task.get(f) is not None]
    if not types:
        raise invalid(f"Task {key} must specify exactly one task type (for example notebook_task)")
    if len(types) > 1:
        raise invalid(f"Task {key} specifies more than one task type: {', '.join(types)}")
    if "run_if" in task and task["run_if"] not in RUN_IF_VALUES:
        raise invalid(f"Task {key}: invalid run_if value {task['run_if']!r}")
    _check_int(task, "timeout_seconds", 0, None)
    _check_int(task, "max_retries", -1, None)
    nb = task.get("notebook_task")
    if nb is not None and not (isinstance(nb, dict) and nb.get("notebook_path")):
        raise invalid(f"Task {key}: notebook_task.notebook_path is required")
    sql = task.get("sql_task")
    if sql is not None:
        if not isinstance(sql, dict) or not sql.get("warehouse_id"):
            raise invalid(f"Task {key}: sql_task.warehouse_id is required")
        if not any(sql.get(k) for k in ("query", "dashboard", "alert", "file")):
            raise invalid(f"Task {key}: sql_task needs one of query, dashboard, alert or file")
    dbt = task.get("dbt_task")
    if isinstance(dbt, dict):
        commands = dbt.get("commands") or []
        if not commands or len(commands) > MAX_DBT_COMMANDS:
            raise invalid(f"Task {key}: dbt_task.commands takes 1 to {MAX_DBT_COMMANDS} commands")
        if not all(isinstance(c, str) and c.split(" ", 1)[0] == "dbt" for c in commands):
            raise invalid(f"Task {key}: every dbt_task command must start with dbt")
    _check_webhooks(task.get("webhook_notifications"), f"Task {key}: webhook_notifications")
    fe = task.get("for_each_task")
    if fe is not None:
        if not isinstance(fe, dict) or "inputs" not in fe or not isinstance(fe.get("task"), dict):
            raise invalid(f"Task {key}: for_each_task needs inputs and task")
        _check_task(fe["task"], f"Task {key}.for_each_task.task")
    return key


def validate_settings(settings: Any) -> None:
    """Raise :class:`ApiError` (400 INVALID_PARAMETER_VALUE) where the service would."""
    if not isinstance(settings, dict):
        raise invalid("Job settings must be a JSON object")
    name = settings.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise invalid("name must be a string")
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise invalid(f"name is longer than {MAX_NAME_BYTES} bytes")
    desc = settings.get("description")
    if desc is not None and len(str(desc)) > MAX_DESCRIPTION_CHARS:
        raise invalid(f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
    tags = settings.get("tags")
    if tags is not None:
        if not isinstance(tags, dict):
            raise invalid("tags must be an object")
        if len(tags) > MAX_TAGS:
            raise invalid(f"A job can have at most {MAX_TAGS} tags, got {len(tags)}")
    _check_webhooks(settings.get("webhook_notifications"), "webhook_notifications")
    _check_int(settings, "max_concurrent_runs", 0, MAX_CONCURRENT_RUNS)
    _check_int(settings, "timeout_seconds", 0, None)
    if "edit_mode" in settings and settings["edit_mode"] not in ("UI_LOCKED", "EDITABLE"):
        raise invalid(f"Invalid edit_mode {settings['edit_mode']!r}")
    if "format" in settings and settings["format"] not in ("SINGLE_TASK", "MULTI_TASK"):
        raise invalid(f"Invalid format {settings['format']!r}")
    git = settings.get("git_source")
    if git is not None and not (isinstance(git, dict) and git.get("git_provider")):
        raise invalid(GIT_PROVIDER_MESSAGE)
    sched = settings.get("schedule")
    if sched is not None and not (
        isinstance(sched, dict) and sched.get("quartz_cron_expression") and sched.get("timezone_id")
    ):
        raise invalid("schedule needs quartz_cron_expression and timezone_id")
    cluster_keys = _check_cluster_keys(settings)
    env_keys = _check_environment_keys(settings)
    tasks = settings.get("tasks") or []
    if not isinstance(tasks, list):
        raise invalid("tasks must be an array")
    if len(tasks) > MAX_TASKS:
        raise invalid(f"A job can have at most {MAX_TASKS} tasks, got {len(tasks)}")
    keys: list[str] = []
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        key = _check_task(task, f"tasks[{i}]")
        if key in seen:
            raise invalid(f"Duplicate task key: {key}. Task keys must be unique within a job")
        seen.add(key)
        keys.append(key)
        jck = task.get("job_cluster_key")
        if jck is not None and jck not in cluster_keys:
            raise invalid(f"Task {key} refers to job_cluster_key {jck}, which is not defined in job_clusters")
        ek = task.get("environment_key")
        if ek is not None and ek not in env_keys:
            raise invalid(f"Task {key} refers to environment_key {ek}, which is not defined in environments")
    graph: dict[str, list[str]] = {}
    for task in tasks:
        key = task["task_key"]
        deps = []
        for dep in task.get("depends_on") or []:
            dk = dep.get("task_key") if isinstance(dep, dict) else None
            if not dk:
                raise invalid(f"Task {key}: depends_on[].task_key is required")
            if dk == key:
                raise invalid(f"Task {key} depends on itself")
            if dk not in seen:
                raise invalid(f"Task {key} depends on task {dk}, which does not exist in the job")
            deps.append(dk)
        graph[key] = deps
    cycle = find_cycle(graph)
    if cycle:
        raise invalid("The task dependency graph has a cycle: " + " -> ".join(cycle))


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle as a list of keys (first == last), or None. Iterative DFS."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for root in graph:
        if colour[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        colour[root] = grey
        path.append(root)
        while stack:
            node, idx = stack[-1]
            deps = graph.get(node, [])
            if idx < len(deps):
                stack[-1] = (node, idx + 1)
                nxt = deps[idx]
                if colour.get(nxt, black) == grey:
                    return [*path[path.index(nxt) :], nxt]
                if colour.get(nxt) == white:
                    colour[nxt] = grey
                    path.append(nxt)
                    stack.append((nxt, 0))
            else:
                colour[node] = black
                path.pop()
                stack.pop()
    return None


# ---------------------------------------------------------------------------------------
# server-filled defaults (applied when settings are stored, as the service does)
# ---------------------------------------------------------------------------------------
def _cluster_defaults(
    cluster: dict, user_name: str | None, policies: Mapping[str, Mapping[str, Any]]
) -> None:
    cluster.pop("apply_policy_default_values", None)
    for key, value in (policies.get(str(cluster.get("policy_id"))) or {}).items():
        cluster.setdefault(key, copy.deepcopy(value))
    if not any(k in cluster for k in CLOUD_ATTRIBUTE_KEYS):
        cluster["aws_attributes"] = dict(DEFAULT_AWS_ATTRIBUTES)
    cluster.setdefault("data_security_mode", "SINGLE_USER")
    if cluster["data_security_mode"] == "SINGLE_USER" and user_name:
        cluster.setdefault("single_user_name", user_name)
    cluster.setdefault("enable_elastic_disk", False)
    cluster.setdefault("enable_local_disk_encryption", False)
    if cluster.get("instance_pool_id"):
        cluster.setdefault("driver_instance_pool_id", cluster["instance_pool_id"])
    elif cluster.get("node_type_id"):
        cluster.setdefault("driver_node_type_id", cluster["node_type_id"])


def _task_defaults(task: dict, source: str, user_name: str | None, policies: Mapping[str, Mapping]) -> None:
    for block in SOURCE_TASK_BLOCKS:
        if isinstance(task.get(block), dict):
            task[block].setdefault("source", source)
    sql_file = (task.get("sql_task") or {}).get("file")
    if isinstance(sql_file, dict):
        sql_file.setdefault("source", source)
    pipeline = task.get("pipeline_task")
    if isinstance(pipeline, dict):
        pipeline.setdefault("full_refresh", False)
    fe = task.get("for_each_task")
    if isinstance(fe, dict) and isinstance(fe.get("task"), dict):
        _task_defaults(fe["task"], source, user_name, policies)
    if isinstance(task.get("new_cluster"), dict):
        _cluster_defaults(task["new_cluster"], user_name, policies)
    if task.get("depends_on"):
        task["depends_on"] = sorted(task["depends_on"], key=lambda d: d.get("task_key", ""))
    _notification_defaults(task)
    task.setdefault("run_if", "ALL_SUCCESS")
    task.setdefault("timeout_seconds", 0)
    task.setdefault("disabled", False)


def _notification_defaults(block: dict) -> None:
    """Empty blocks when absent; a set email block also gets ``no_alert_for_skipped_runs: false``."""
    email = block.setdefault("email_notifications", {})
    if isinstance(email, dict) and email:
        email.setdefault("no_alert_for_skipped_runs", False)
    block.setdefault("webhook_notifications", {})


def apply_server_defaults(
    settings: dict,
    *,
    user_name: str | None = None,
    cluster_policies: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict:
    """Return a copy of ``settings`` as the service stores it and returns it on get.

    ``user_name`` is the identity a single-user cluster is assigned to (run_as, else the
    creator); ``cluster_policies`` maps a ``policy_id`` to the values that policy injects into a
    cluster that omits them (``custom_tags``, ``cluster_log_conf``, ``node_type_id`` ...).
    """
    s = copy.deepcopy(settings)
    _notification_defaults(s)
    s.setdefault("timeout_seconds", 0)
    s.setdefault("max_concurrent_runs", 1)
    s.setdefault("format", "MULTI_TASK")
    s.setdefault("queue", {"enabled": True})
    s.setdefault("performance_target", "PERFORMANCE_OPTIMIZED")
    run_as = s.get("run_as") or {}
    cluster_user = run_as.get("user_name") or run_as.get("service_principal_name") or user_name
    policies = cluster_policies or {}
    source = "GIT" if s.get("git_source") else "WORKSPACE"
    for task in s.get("tasks") or []:
        _task_defaults(task, source, cluster_user, policies)
    for jc in s.get("job_clusters") or []:
        if isinstance(jc.get("new_cluster"), dict):
            _cluster_defaults(jc["new_cluster"], cluster_user, policies)
    # Empty arrays are not returned by the service.
    for key in PAGED_ARRAYS:
        if key in s and not s[key]:
            del s[key]
    return s


# ---------------------------------------------------------------------------------------
# jobs/update merge
# ---------------------------------------------------------------------------------------
# Arrays merged by key on update (SDK ``JobsAPI.update`` docstring: "arrays ... are merged");
# only tasks and job clusters can be removed one by one (``fields_to_remove``).
_MERGED_ARRAYS = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "environments": "environment_key",
    "parameters": "name",
}
_REMOVABLE_ARRAYS = ("tasks", "job_clusters")


def merge_update(current: dict, new_settings: dict | None, fields_to_remove: list | None) -> dict:
    """jobs/update: remove fields, then replace top-level fields, merging keyed arrays by key
    (entries with the same key are replaced whole; others kept)."""
    s = copy.deepcopy(current)
    for spec in fields_to_remove or []:
        if not isinstance(spec, str) or not spec:
            raise invalid(f"Invalid entry in fields_to_remove: {spec!r}")
        if "/" in spec:
            array, _, key = spec.partition("/")
            if array not in _REMOVABLE_ARRAYS:
                raise invalid(
                    f"Removing nested fields is not supported, except for tasks and job_clusters: {spec}"
                )
            key_field = _MERGED_ARRAYS[array]
            s[array] = [e for e in s.get(array) or [] if e.get(key_field) != key]
        else:
            s.pop(spec, None)
    for field_name, value in (new_settings or {}).items():
        if field_name in _MERGED_ARRAYS and isinstance(value, list):
            key_field = _MERGED_ARRAYS[field_name]
            merged = list(s.get(field_name) or [])
            index = {e.get(key_field): i for i, e in enumerate(merged)}
            for entry in value:
                k = entry.get(key_field) if isinstance(entry, dict) else None
                if k in index:
                    merged[index[k]] = copy.deepcopy(entry)
                else:
                    index[k] = len(merged)
                    merged.append(copy.deepcopy(entry))
            s[field_name] = merged
        else:
            s[field_name] = copy.deepcopy(value)
    return s


# ---------------------------------------------------------------------------------------
# pagination of array properties (jobs/get) and truncation (jobs/list?expand_tasks=true)
# ---------------------------------------------------------------------------------------
def page_of_settings(settings: dict, page: int, page_size: int = PAGE_SIZE) -> tuple[dict, bool]:
    """Settings for page ``page`` (0-based): every paged array sliced to its page; arrays
    with nothing on this page are omitted. Returns (settings, more_pages)."""
    out = {k: v for k, v in settings.items() if k not in PAGED_ARRAYS} if page else dict(settings)
    more = False
    lo, hi = page * page_size, (page + 1) * page_size
    for key in PAGED_ARRAYS:
        arr = settings.get(key) or []
        chunk = arr[lo:hi]
        if chunk:
            out[key] = chunk
        else:
            out.pop(key, None)
        if len(arr) > hi:
            more = True
    return out, more
