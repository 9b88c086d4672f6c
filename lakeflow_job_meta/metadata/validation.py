"""Semantic checks the schema cannot express: across sources, files, SQL rows and modules.

Runs on the whole set the tables would hold (YAML sources plus rows INSERTed by SQL), so a
duplicate ``source_id`` between a file and a SQL row, or a cycle formed by both, is caught before
anything is written. Every problem blocks its module; there are no warnings. ``run_job`` naming an
unknown module is an error too: the job id it needs cannot be resolved, so the job would not
deploy.

Pass YAML sources freshly parsed from files and, from the table, only rows not replaced by those
files; passing both copies of a YAML source reports it as a duplicate. When the set is only part
of the control table (one file checked on its own), ``partial=True`` skips the checks that a
source or module defined elsewhere could satisfy: unknown ``depends_on`` targets (a SQL row of
the same module) and unknown ``run_job`` modules. A module's settings always come with its YAML
declaration, so cluster, environment and warehouse checks stay exact.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.cron import quartz_cron_error
from lakeflow_job_meta.metadata.dependencies import explicit_dependencies, find_cycles, resolve_dependencies
from lakeflow_job_meta.metadata.drift_paths import drift_path_problem
from lakeflow_job_meta.metadata.limits import MAX_TASKS_PER_JOB
from lakeflow_job_meta.metadata.locations import FieldPath, Locator, sorted_issues
from lakeflow_job_meta.metadata.models import (
    CLUSTER_TASK_TYPES,
    COMPUTE_FIELDS,
    ENVIRONMENT_TASK_TYPES,
    TASK_TYPES,
    ModuleSettings,
    Source,
    principal_of,
    serverless_dependency,
)
from lakeflow_job_meta.metadata.schema import did_you_mean
from lakeflow_job_meta.metadata.tags import Cloud, tag_issues
from lakeflow_job_meta.metadata.task_keys import sanitize_task_key

SQL_WAREHOUSE_BLOCKS = {"sql_query": "sql_task", "sql_file": "sql_task", "dbt": "dbt_task"}
_TRIGGER_KINDS = ("schedule", "trigger", "continuous")

_Model = TypeVar("_Model", Source, ModuleSettings)


def validate_all(
    sources: Iterable[Source],
    modules: Iterable[ModuleSettings],
    *,
    default_warehouse_id: str | None = None,
    control_table: str | None = None,
    locator: Locator | None = None,
    partial: bool = False,
    cloud: Cloud | None = None,
    known_source_ids: set[str] | None = None,
) -> list[MetadataIssue]:
    """Every semantic problem of this set of sources and module settings, sorted.

    ``default_warehouse_id`` is the run-wide fallback for SQL and dbt tasks; ``control_table``
    names the table in locations of SQL rows; ``locator`` (from the loader) gives exact lines;
    ``partial`` is explained in the module docstring; ``cloud`` picks the tag rules (None: the
    rules every cloud accepts, see :mod:`lakeflow_job_meta.metadata.tags`). ``known_source_ids``
    (the checked part of a file whose other sources have schema errors): a ``depends_on`` target
    among them is not judged, one outside them is unknown even when ``partial``.
    """
    located = (locator or Locator()).with_table(control_table)
    checker = _Checker(list(sources), list(modules), located, default_warehouse_id, partial)
    checker.cloud = cloud
    checker.known_source_ids = known_source_ids
    return checker.run()


class _Checker:
    def __init__(
        self,
        sources: list[Source],
        modules: list[ModuleSettings],
        locator: Locator,
        default_warehouse_id: str | None,
        partial: bool,
    ):
        self.partial = partial
        self.cloud: Cloud | None = None
        self.sources = sources
        self.modules = modules
        self.locator = locator
        self.default_warehouse_id = default_warehouse_id
        self.issues: list[MetadataIssue] = []
        self.settings_of: dict[str, ModuleSettings] = {}
        self.known_source_ids: set[str] | None = None
        declared = Counter(module.module_name for module in modules)
        self.declared_twice = {name for name, count in declared.items() if count > 1}
        for module in modules:
            self.settings_of.setdefault(module.module_name, module)
        self.by_id: dict[str, Source] = {}
        self.members: dict[str, list[Source]] = {}
        for source in sources:
            self.by_id.setdefault(source.source_id, source)
            self.members.setdefault(source.module_name, []).append(source)
        # A source_id given twice is reported as a duplicate; the dependency graph, keyed by id,
        # would merge the copies into one node, so cycles through it are not reported as well.
        ids = Counter(source.source_id for source in sources)
        self.duplicated_ids = {source_id for source_id, count in ids.items() if count > 1}
        self.known_modules = set(self.settings_of) | set(self.members)

    def run(self) -> list[MetadataIssue]:
        self._check_duplicates(
            self.sources,
            "source_id '{}'",
            lambda s: s.source_id,
            self._source_issue,
            self.locator.describe_source,
        )
        self._check_duplicates(
            self.modules,
            "module '{}'",
            lambda m: m.module_name,
            self._module_issue,
            self.locator.describe_module,
        )
        for module in self.modules:
            self._check_module_settings(module)
        for source in self.sources:
            self._check_source(source)
        for name, members in self.members.items():
            self._check_module_tasks(name, members)
        if not self.partial:
            self._check_run_job_cycles()
        return sorted_issues(self.issues)

    def _check_run_job_cycles(self) -> None:
        """Modules running each other's jobs in a loop can never be created: each needs the
        other's job id first."""
        callers: dict[tuple[str, str], list[tuple[Source, FieldPath]]] = {}
        graph: dict[str, set[str]] = {name: set() for name in self.members}
        for source in self.sources:
            for target, field in run_job_targets(source.transformation_config, ("transformation_config",)):
                if target != source.module_name and target in graph:
                    graph[source.module_name].add(target)
                    callers.setdefault((source.module_name, target), []).append((source, field))
        for cycle in find_cycles(graph):
            text = " -> ".join(cycle)
            for caller, target in itertools.pairwise(cycle):
                for source, field in callers.get((caller, target), []):
                    self._source_issue(source, field, f"run_job modules form a cycle: {text}")

    # -- helpers ---------------------------------------------------------------------------------
    def _source_issue(self, source: Source, field: FieldPath, message: str) -> None:
        self.issues.append(self.locator.source_issue(source, field, message))

    def _module_issue(self, module: ModuleSettings, field: FieldPath, message: str) -> None:
        self.issues.append(self.locator.module_issue(module, field, message))

    def _module_settings(self, module_name: str) -> Mapping[str, Any]:
        module = self.settings_of.get(module_name)
        return module.settings if module else {}

    # -- duplicates ------------------------------------------------------------------------------
    def _check_duplicates(
        self,
        items: Sequence[_Model],
        label: str,
        key: Callable[[_Model], str],
        report: Callable[[_Model, FieldPath, str], None],
        describe: Callable[[_Model], str],
    ) -> None:
        """Report every repeat of a key. YAML is blamed when it clashes with a SQL row, because
        loading YAML never overwrites what SQL inserted; among YAML copies, rows read back from
        the table (no line) count as the original, so the freshly parsed file is blamed."""
        groups: dict[str, list[_Model]] = {}
        for item in items:
            groups.setdefault(key(item), []).append(item)
        for name, group in groups.items():
            if len(group) < 2:
                continue
            what = label.format(name)
            from_yaml = sorted(
                (i for i in group if i.source_file is not None),
                key=lambda i: (i.line is not None, i.source_file or "", i.line or 0),
            )
            from_sql = [i for i in group if i.source_file is None]
            if from_sql:
                for item in from_yaml:
                    report(
                        item,
                        (),
                        f"{what} already exists in {describe(from_sql[0])}; YAML never overwrites such rows",
                    )
                for item in from_sql[1:]:
                    report(item, (), f"{what} appears in {len(from_sql)} rows")
                continue
            first = from_yaml[0].source_file
            for item in from_yaml[1:]:
                report(item, (), f"duplicate {what} (also at {describe(from_yaml[0])})")
                if first is not None:  # the first copy's file is as much to blame
                    self.issues[-1] = replace(self.issues[-1], related_files=(first,))

    # -- module settings -------------------------------------------------------------------------
    def _check_module_settings(self, module: ModuleSettings) -> None:
        settings = module.settings
        # An empty ``continuous: {}`` still makes a job continuous; empty schedule/trigger say nothing.
        triggers = [
            k for k in _TRIGGER_KINDS if settings.get(k) or (k == "continuous" and settings.get(k) == {})
        ]
        if len(triggers) > 1:
            self._module_issue(
                module, (triggers[1],), f"{', '.join(triggers)} are mutually exclusive: keep one"
            )
        schedule = settings.get("schedule")
        if isinstance(schedule, Mapping) and not schedule.get("timezone_id"):
            self._module_issue(module, ("schedule", "timezone_id"), "is required")
        if isinstance(schedule, Mapping) and "quartz_cron_expression" in schedule:
            problem = quartz_cron_error(schedule["quartz_cron_expression"])
            if problem:
                self._module_issue(
                    module,
                    ("schedule", "quartz_cron_expression"),
                    f"invalid Quartz cron expression: {problem}",
                )
        for list_field, key_field in (
            ("job_clusters", "job_cluster_key"),
            ("environments", "environment_key"),
            ("parameters", "name"),
        ):
            seen: set[Any] = set()
            for index, entry in enumerate(_list(settings.get(list_field))):
                value = entry.get(key_field) if isinstance(entry, Mapping) else None
                if value in seen:
                    self._module_issue(
                        module, (list_field, index, key_field), f"duplicate {key_field} '{value}'"
                    )
                seen.add(value)
        self._check_permissions(module)
        self._check_tags(module)
        self._check_ignore_drift(module)
        self._check_renamed_from(module)

    def _check_ignore_drift(self, module: ModuleSettings) -> None:
        """A path outside the known job settings would silently ignore nothing: an error with
        the nearest known path."""
        for index, path in enumerate(_list(module.settings.get("ignore_drift"))):
            problem = drift_path_problem(str(path))
            if problem:
                self._module_issue(module, ("ignore_drift", index), problem)

    def _check_renamed_from(self, module: ModuleSettings) -> None:
        """An old name still in use belongs to that module; two modules claiming one old name
        would both take over its job."""
        for index, old in enumerate(_list(module.settings.get("renamed_from"))):
            if old == module.module_name:
                self._module_issue(module, ("renamed_from", index), "names the module itself")
            elif old in self.known_modules:
                self._module_issue(
                    module,
                    ("renamed_from", index),
                    f"module '{old}' still exists; remove it (its job is renamed to this module) or drop it here",
                )
            else:
                claimants = sorted(
                    m.module_name
                    for m in self.modules
                    if m.module_name != module.module_name and old in _list(m.settings.get("renamed_from"))
                )
                if claimants:
                    self._module_issue(
                        module,
                        ("renamed_from", index),
                        f"'{old}' is also listed by module {', '.join(claimants)}: one job cannot become two",
                    )

    def _check_permissions(self, module: ModuleSettings) -> None:
        """A job has exactly one owner, a user or a service principal; the tool adds the one
        that runs it when none is named. Each principal gets one level: the service keeps only
        the last of two, which may silently drop the owner."""
        first_owner: int | None = None
        seen: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(_list(module.settings.get("permissions"))):
            if not isinstance(entry, Mapping):
                continue
            principal = principal_of(entry)
            if principal is not None:
                if principal in seen:
                    self._module_issue(
                        module,
                        ("permissions", index),
                        f"{principal[0]} '{principal[1]}' is listed twice (also permissions[{seen[principal]}]); "
                        "give each principal one permission_level",
                    )
                seen.setdefault(principal, index)
            if entry.get("permission_level") != "IS_OWNER":
                continue
            if principal is not None and principal[0] == "group_name":
                self._module_issue(
                    module,
                    ("permissions", index, "group_name"),
                    "a group cannot own a job: make a user_name or service_principal_name the IS_OWNER",
                )
            elif first_owner is not None:
                self._module_issue(
                    module,
                    ("permissions", index, "permission_level"),
                    f"a job has exactly one IS_OWNER (also permissions[{first_owner}])",
                )
            else:
                first_owner = index

    def _check_tags(self, module: ModuleSettings) -> None:
        tags = module.settings.get("tags")
        if not isinstance(tags, Mapping):
            return
        for field, message in tag_issues(tags, self.cloud):
            self._module_issue(module, ("tags", *field), message)

    # -- one source ------------------------------------------------------------------------------
    def _check_source(self, source: Source) -> None:
        order = source.execution_order
        if not isinstance(order, int) or isinstance(order, bool) or order < 0:
            self._source_issue(source, ("execution_order",), "must be an integer >= 0")
        if not isinstance(source.transformation_config, Mapping):
            self._source_issue(source, ("transformation_config",), "must be a mapping")
            return
        self._check_task(source, source.transformation_config, ("transformation_config",))

    def _check_task(self, source: Source, config: Mapping[str, Any], path: FieldPath) -> None:
        task_type = config.get("task_type")
        if task_type not in TASK_TYPES:
            self._source_issue(
                source,
                (*path, "task_type"),
                f"unknown task type '{task_type}' (expected one of: {', '.join(TASK_TYPES)})"
                + did_you_mean(str(task_type), list(TASK_TYPES)),
            )
            return
        settings = self._module_settings(source.module_name)
        # A row-shaped file checked on its own carries no module settings: they live in the
        # modules table or another file, so checks that need them wait for the whole set.
        # A module declared twice (reported as a duplicate) has no settings to trust either:
        # checking against the first copy would blame sources for the other copy's settings.
        settings_elsewhere = (
            self.partial and source.module_name not in self.settings_of
        ) or source.module_name in self.declared_twice
        if task_type == "notebook":
            self._check_absolute(source, config.get("notebook_path"), (*path, "notebook_path"))
        sql_task = _mapping(config.get("sql_task"))
        if task_type == "sql_file":
            self._check_absolute(source, sql_task.get("sql_file_path"), (*path, "sql_task", "sql_file_path"))
        if task_type in SQL_WAREHOUSE_BLOCKS:
            block = SQL_WAREHOUSE_BLOCKS[task_type]
            has_default = settings.get("default_warehouse_id") or self.default_warehouse_id
            if (
                not _mapping(config.get(block)).get("warehouse_id")
                and not has_default
                and not settings_elsewhere
            ):
                self._source_issue(
                    source,
                    (*path, block, "warehouse_id"),
                    f"is required for {task_type} tasks (or set default_warehouse_id on the module or for the run)",
                )
        self._check_compute(source, config, path, None if settings_elsewhere else settings, task_type)
        if task_type == "run_job":
            target = _mapping(config.get("run_job_task")).get("module_name")
            field = (*path, "run_job_task", "module_name")
            if target == source.module_name:
                self._source_issue(source, field, "a module cannot run its own job")
            elif target is not None and target not in self.known_modules and not self.partial:
                self._source_issue(source, field, f"names unknown module '{target}'")
        if task_type == "for_each":
            nested = _mapping(config.get("for_each_task")).get("task")
            if isinstance(nested, Mapping):
                self._check_task(source, nested, (*path, "for_each_task", "task"))

    def _check_absolute(self, source: Source, value: Any, path: FieldPath) -> None:
        if isinstance(value, str) and not value.startswith("/"):
            self._source_issue(
                source, path, f"must be an absolute workspace path starting with '/', got '{value}'"
            )

    def _check_compute(
        self,
        source: Source,
        config: Mapping[str, Any],
        path: FieldPath,
        settings: Mapping[str, Any] | None,
        task_type: str,
    ) -> None:
        """``settings`` None: the module's settings are not in the set; skip key lookups."""
        cluster_key, cluster_id = config.get("job_cluster_key"), config.get("existing_cluster_id")
        if cluster_key and cluster_id:
            self._source_issue(
                source, (*path, "job_cluster_key"), "set job_cluster_key or existing_cluster_id, not both"
            )
        if task_type == "spark_jar" and not (cluster_key or cluster_id):
            self._source_issue(
                source,
                path,
                "spark_jar tasks need a cluster: set job_cluster_key or existing_cluster_id (serverless cannot run JARs)",
            )
        for key_field, list_field, what in (
            ("job_cluster_key", "job_clusters", "job cluster"),
            ("environment_key", "environments", "environment"),
        ):
            if settings is None:
                break
            wanted = config.get(key_field)
            if wanted is None:
                continue
            defined = [e.get(key_field) for e in _list(settings.get(list_field)) if isinstance(e, Mapping)]
            if wanted not in defined:
                listed = ", ".join(str(d) for d in defined) if defined else f"the module has no {list_field}"
                self._source_issue(
                    source, (*path, key_field), f"names no {what} of module '{source.module_name}' ({listed})"
                )
        self._check_compute_placement(source, config, path, settings, task_type)

    def _check_compute_placement(
        self,
        source: Source,
        config: Mapping[str, Any],
        path: FieldPath,
        settings: Mapping[str, Any] | None,
        task_type: str,
    ) -> None:
        """Compute settings only on task types that take them; on serverless, libraries only
        through an environment (the module's, or the one the compiler generates). ``settings``
        None: the module's environments are not known here, so where libraries belong is not
        judged."""
        if task_type not in CLUSTER_TASK_TYPES:
            for key in COMPUTE_FIELDS:
                if config.get(key) not in (None, [], ""):
                    self._source_issue(source, (*path, key), f"{task_type} tasks take no compute settings")
            return
        libraries = _list(config.get("libraries"))
        if config.get("job_cluster_key") or config.get("existing_cluster_id"):
            if config.get("environment_key"):
                self._source_issue(
                    source, (*path, "environment_key"), "is for serverless tasks; this task runs on a cluster"
                )
            return
        if task_type not in ENVIRONMENT_TASK_TYPES:
            if libraries:
                self._source_issue(
                    source,
                    (*path, "libraries"),
                    "libraries need a cluster; serverless tasks take dependencies from an environment",
                )
            return
        if settings is None:
            return
        environments = sorted(
            str(e.get("environment_key"))
            for e in _list(settings.get("environments"))
            if isinstance(e, Mapping)
        )
        if environments:
            if libraries:
                self._source_issue(
                    source,
                    (*path, "libraries"),
                    "serverless task: put these in the module environment's dependencies",
                )
            if not config.get("environment_key") and len(environments) > 1:
                self._source_issue(
                    source,
                    (*path, "environment_key"),
                    f"is required: the module has environments {environments}",
                )
            return
        for index, library in enumerate(libraries):
            if serverless_dependency(library) is None:
                self._source_issue(
                    source,
                    (*path, "libraries", index),
                    "only whl, pypi (package) and requirements libraries work on serverless",
                )

    # -- one module's tasks ----------------------------------------------------------------------
    def _check_module_tasks(self, module_name: str, members: list[Source]) -> None:
        keys: dict[str, Source] = {}
        for source in members:
            key = sanitize_task_key(source.source_id)
            other = keys.setdefault(key, source)
            if other is not source and other.source_id != source.source_id:
                self._source_issue(
                    source,
                    ("source_id",),
                    f"source_id '{source.source_id}' becomes task key '{key}', like source '{other.source_id}' "
                    f"at {self.locator.describe_source(other)}; rename one",
                )
        active = [s for s in members if s.is_active]
        if len(active) > MAX_TASKS_PER_JOB:
            message = f"module '{module_name}' has {len(active)} active sources; a job holds at most {MAX_TASKS_PER_JOB} tasks"
            if module_name in self.settings_of:
                self._module_issue(self.settings_of[module_name], (), message)
            else:
                self._source_issue(active[0], (), message)
        for source in members:
            self._check_depends_on(source)
        upstream = resolve_dependencies(members)
        graph = {source_id: [d.source_id for d in deps] for source_id, deps in upstream.items()}
        for cycle in find_cycles(graph):
            if self.duplicated_ids.intersection(cycle):
                continue  # derived from the duplicate, which is reported on its own
            first = next(s for s in active if s.source_id == cycle[0])
            field = (
                ("transformation_config", "depends_on")
                if explicit_dependencies(first) is not None
                else ("execution_order",)
            )
            self._source_issue(
                first, field, "dependency cycle: " + " -> ".join(cycle) + " (each waits for the next)"
            )

    def _check_depends_on(self, source: Source) -> None:
        dependencies = explicit_dependencies(source)
        seen: set[str] = set()
        for index, dependency in enumerate(dependencies or []):
            field = ("transformation_config", "depends_on", index)
            upstream = self.by_id.get(dependency.source_id)
            if dependency.source_id in seen:
                self._source_issue(source, field, f"lists '{dependency.source_id}' more than once")
            seen.add(dependency.source_id)
            if upstream is None:
                known = self.known_source_ids
                if (known is None and not self.partial) or (
                    known is not None and dependency.source_id not in known
                ):
                    self._source_issue(source, field, f"depends on unknown source '{dependency.source_id}'")
                continue
            if upstream.module_name != source.module_name:
                self._source_issue(
                    source,
                    field,
                    f"depends on '{dependency.source_id}' of module '{upstream.module_name}'; dependencies must stay within one module",
                )
                continue
            if source.is_active and not upstream.is_active:
                self._source_issue(source, field, f"depends on inactive source '{dependency.source_id}'")
            if dependency.outcome is not None and upstream.task_type != "condition":
                self._source_issue(
                    source,
                    field,
                    f"outcome is only allowed on a condition task, and '{dependency.source_id}' is a {upstream.task_type} task",
                )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def run_job_targets(config: Any, path: FieldPath = ("transformation_config",)) -> list[tuple[str, FieldPath]]:
    """Modules a task (or the task inside its for_each) runs by ``run_job_task.module_name``."""
    config = _mapping(config)
    found: list[tuple[str, FieldPath]] = []
    target = _mapping(config.get("run_job_task")).get("module_name")
    if isinstance(target, str):
        found.append((target, (*path, "run_job_task", "module_name")))
    nested = _mapping(config.get("for_each_task")).get("task")
    if nested is not None:
        found += run_job_targets(nested, (*path, "for_each_task", "task"))
    return found
