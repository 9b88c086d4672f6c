"""A corpus of bad metadata files, each with the specific, located message it must yield.

The expected line is the one marked ``# <<`` in the YAML (or given explicitly for byte-level
cases), so the corpus reads like the files users write. ``tests/metadata/test_bad_inputs.py``
reads every case through ``parse_files``; ``tests/engine/test_metadata_manager.py`` checks that
none of them changes a table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MARK = "# <<"


@dataclass(frozen=True)
class Case:
    id: str
    content: str | bytes
    message: str  # substring of the expected message
    field: str = ""
    line: int | None = None  # None: the line marked with MARK
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    count: int | None = 1  # exact number of issues, None to skip the check


def module(body: str, name: str = "m1", settings: str = "") -> str:
    """A one-module file; ``body`` is the sources list (already indented by 6)."""
    return f"modules:\n  - module_name: {name}\n{settings}    sources:\n{body}"


NOTEBOOK_A = """\
      - source_id: a
        source_type: notebook
        execution_order: 1
        transformation_config:
          task_type: notebook
          notebook_path: /Workspace/a
"""

S0 = "modules[0].sources[0]"
S1 = "modules[0].sources[1]"
TC0 = f"{S0}.transformation_config"


def src(source_id: str, order: int, task: str, extra: str = "", mark: str = "") -> str:
    """A source whose transformation_config lines are given (indented by 10)."""
    return (
        f"      - source_id: {source_id}{mark}\n"
        f"        source_type: x\n"
        f"        execution_order: {order}\n"
        f"        transformation_config:\n{task}{extra}"
    )


def nb(path: str = "/Workspace/n") -> str:
    return f"          task_type: notebook\n          notebook_path: {path}\n"


def bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 7):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\nmodules: []\n"


def many_aliases() -> str:
    lines = ["base: &b 1", "values:"]
    lines += ["  - *b"] * 100
    lines.append(f"  - *b  {MARK}")
    return "\n".join(lines) + "\nmodules: []\n"


def thousand_and_one() -> str:
    sources = "".join(
        f"      - {{source_id: s{i}, source_type: x, execution_order: 0, "
        f"transformation_config: {{task_type: notebook, notebook_path: /n}}}}\n"
        for i in range(1001)
    )
    return f"modules:\n  - module_name: big  {MARK}\n    sources:\n{sources}"


CASES = [
    # -- syntax and loading limits ---------------------------------------------------------------
    Case("malformed_flow", "modules: [\n  {module_name: m1,\n", "invalid YAML: ", line=3),
    Case(
        "bad_indentation",
        "modules:\n  - module_name: m1\n   sources: []  " + MARK + "\n",
        "invalid YAML: expected <block end>, but found '<block mapping start>'",
    ),
    Case("alias_bomb", bomb(), "expands to more than 100000 nodes", line=1),
    Case("too_many_aliases", many_aliases(), "more than 100 aliases"),
    Case(
        "oversize",
        module(NOTEBOOK_A) + "# padding\n" * 30,
        "over the limit of 200 bytes",
        line=1,
        kwargs={"max_bytes": 200},
    ),
    Case(
        "non_utf8",
        b"modules:\n  - module_name: m1\n    description: caf\xe9\n",
        "not valid UTF-8: byte 0xe9 at offset 49",
        line=3,
    ),
    Case("empty", "", "file is empty", line=1),
    Case("only_comments", "# nothing here\n\n# still nothing\n", "file is empty", line=1),
    # A top-level list is the control table's row shape: each row needs a source's fields.
    Case(
        "top_level_list_of_rows",
        "- module_name: m1  " + MARK + "\n",
        "is required",
        field="[0].execution_order",
        count=4,  # source_id, source_type, execution_order, transformation_config
    ),
    Case("top_level_list_of_scalars", "- just text  " + MARK + "\n", "must be", field="[0]", count=None),
    Case("top_level_scalar", "\n\njust text  " + MARK + "\n", "top level must be a mapping"),
    Case(
        "unsafe_python_tag",
        "modules:\n  - module_name: !!python/object/apply:os.system ['echo pwned']  " + MARK + "\n",
        "unsupported YAML tag '!!python/object/apply:os.system'",
        field="modules[0].module_name",
    ),
    Case(
        "custom_tag",
        "modules:\n  - module_name: m1\n    tags: !include other.yaml  " + MARK + "\n",
        "unsupported YAML tag '!include'",
        field="modules[0].tags",
    ),
    Case(
        "duplicate_key",
        module(
            "      - source_id: a\n        source_type: x\n        execution_order: 1\n"
            f"        source_id: b  {MARK}\n        transformation_config: {{task_type: notebook, notebook_path: /n}}\n"
        ),
        "duplicate key 'source_id' (lines 4 and 7)",
        field=S0,
    ),
    Case("two_documents", "modules: []\n---  " + MARK + "\nmodules: []\n", "expected a single document"),
    Case(
        "key_read_as_bool",
        module(NOTEBOOK_A, settings="    trigger:\n      on: {}  " + MARK + "\n"),
        "key 'on' is read as a boolean, not a string; quote it",
        field="modules[0].trigger",
    ),
    Case(
        "nan_value",
        module(NOTEBOOK_A, settings=f"    timeout_seconds: .nan  {MARK}\n"),
        "is not a finite number",
        field="modules[0].timeout_seconds",
    ),
    # -- schema ----------------------------------------------------------------------------------
    Case("missing_modules", "variables: {}  " + MARK + "\n", "is required", field="modules"),
    Case(
        "unknown_top_level",
        "modulez: []  " + MARK + "\n",
        "unknown field 'modulez' (did you mean 'modules'?)",
        count=2,
    ),
    Case(
        "negative_execution_order",
        module(src("a", -1, nb()).replace("execution_order: -1", f"execution_order: -1  {MARK}")),
        "must be an integer >= 0",
        field=f"{S0}.execution_order",
    ),
    Case(
        "bool_execution_order",
        module(src("a", 1, nb()).replace("execution_order: 1", f"execution_order: true  {MARK}")),
        "must be an integer >= 0",
        field=f"{S0}.execution_order",
    ),
    Case(
        "float_execution_order",
        module(src("a", 1, nb()).replace("execution_order: 1", f"execution_order: 1.0  {MARK}")),
        "must be an integer >= 0",
        field=f"{S0}.execution_order",
    ),
    Case(
        "missing_source_id",
        module(
            f"      - source_type: x  {MARK}\n        execution_order: 1\n        transformation_config: {{task_type: notebook, notebook_path: /n}}\n"
        ),
        "is required",
        field=f"{S0}.source_id",
    ),
    Case(
        "unknown_task_type",
        module(src("a", 1, f"          task_type: python_script  {MARK}\n          python_file: /x.py\n")),
        "must be one of: notebook, sql_query, sql_file, python_wheel",
        field=f"{TC0}.task_type",
    ),
    Case(
        "unknown_module_setting",
        module(NOTEBOOK_A, settings=f"    schedual: {{quartz_cron_expression: '0 0 1 * * ?'}}  {MARK}\n"),
        "unknown field 'schedual' (did you mean 'schedule'?)",
        field="modules[0]",
    ),
    Case(
        "unknown_sql_task_key",
        module(
            src(
                "a",
                1,
                f"          task_type: sql_query\n          sql_task:\n            sql_query: SELECT 1\n            warehouse: w  {MARK}\n",
            )
        ),
        "unknown field 'warehouse' (did you mean 'warehouse_id'?)",
        field=f"{TC0}.sql_task",
    ),
    Case(
        "key_of_other_task_type",
        module(src("a", 1, nb(), f"          sql_task: {{sql_query: SELECT 1}}  {MARK}\n")),
        "unknown field 'sql_task'",
        field=TC0,
    ),
    Case(
        "missing_per_type_key",
        module(src("a", 1, "          task_type: pipeline\n")),
        "is required",
        field=f"{TC0}.pipeline_task",
        line=7,  # a missing key is reported where its parent mapping starts
    ),
    Case(
        "tags_as_list",
        module(NOTEBOOK_A, settings=f"    tags: [a, b]  {MARK}\n"),
        "must be a mapping",
        field="modules[0].tags",
    ),
    Case(
        "tag_value_int",
        module(NOTEBOOK_A, settings=f"    tags:\n      cost: 12  {MARK}\n"),
        "must be a string",
        field="modules[0].tags.cost",
    ),
    Case(
        "edit_mode_enum",
        module(NOTEBOOK_A, settings=f"    edit_mode: LOCKED  {MARK}\n"),
        "must be one of: UI_LOCKED, EDITABLE",
        field="modules[0].edit_mode",
    ),
    Case(
        "run_as_both",
        module(
            NOTEBOOK_A,
            settings=f"    run_as:  {MARK}\n      user_name: a@b.c\n      service_principal_name: sp\n",
        ),
        "must set exactly one of: user_name, service_principal_name",
        field="modules[0].run_as",
    ),
    Case(
        "trigger_two_kinds",
        module(
            NOTEBOOK_A,
            settings=f"    trigger:  {MARK}\n      periodic: {{interval: 1, unit: HOURS}}\n      file_arrival: {{url: /Volumes/x/}}\n",
        ),
        "must set exactly one of: file_arrival, table_update, periodic",
        field="modules[0].trigger",
    ),
    Case(
        "max_concurrent_runs_range",
        module(NOTEBOOK_A, settings=f"    max_concurrent_runs: 5000  {MARK}\n"),
        "must be an integer between 0 and 1000",
        field="modules[0].max_concurrent_runs",
    ),
    Case(
        "outcome_unquoted_bool",
        module(
            src(
                "c",
                1,
                "          task_type: condition\n          condition_task: {op: EQUAL_TO, left: '1', right: '1'}\n",
            )
            + src(
                "d",
                2,
                nb(),
                f"          depends_on:\n            - {{source_id: c, outcome: true}}  {MARK}\n",
            )
        ),
        'must be one of: "true", "false" (quote the value in YAML)',
        field=f"{S1}.transformation_config.depends_on[0].outcome",
    ),
    Case(
        "nested_for_each",
        module(
            src(
                "a",
                1,
                "          task_type: for_each\n          for_each_task:\n            inputs: '[1]'\n            task:\n"
                f"              task_type: for_each  {MARK}\n",
            )
        ),
        "must be one of: notebook, sql_query",
        field=f"{TC0}.for_each_task.task.task_type",
    ),
    Case(
        "bad_variable_name",
        "variables:\n  bad name:  " + MARK + "\n    default: 1\nmodules: []\n",
        "invalid name 'bad name'",
        field="variables",
    ),
    # -- variables and environments ----------------------------------------------------------------
    Case(
        "undefined_variable",
        module(src("a", 1, nb("${var.nb_root}/x").replace("x\n", f"x  {MARK}\n"))),
        "undefined variable 'nb_root'",
        field=f"{TC0}.notebook_path",
    ),
    Case(
        "variable_without_value",
        "variables:\n  root: {description: no default}\n"
        + module(src("a", 1, nb("${var.root}").replace("}\n", "}  " + MARK + "\n"))),
        "variable 'root' has no value",
        field=f"{TC0}.notebook_path",
    ),
    Case(
        "unknown_environment",
        "environments:  "
        + MARK
        + "\n  dev: {mode: development}\n  prod: {mode: production}\n"
        + module(NOTEBOOK_A),
        "environment 'stage' is not defined (dev, prod)",
        field="environments",
        kwargs={"env": "stage"},
    ),
    Case(
        "environment_sets_undeclared_variable",
        "variables:\n  wh: {default: x}\nenvironments:\n  dev:\n    variables:\n      wharehouse: y  "
        + MARK
        + "\n"
        + module(NOTEBOOK_A),
        "variable 'wharehouse' is not declared under variables",
        field="environments.dev.variables.wharehouse",
    ),
    Case(
        "mode_enum",
        "environments:\n  dev: {mode: staging}  " + MARK + "\n" + module(NOTEBOOK_A),
        "must be one of: development, production",
        field="environments.dev.mode",
    ),
    # -- semantic --------------------------------------------------------------------------------
    Case(
        "duplicate_source_id_in_file",
        module(NOTEBOOK_A + NOTEBOOK_A.replace("source_id: a", f"source_id: a  {MARK}")),
        "duplicate source_id 'a' (also at {path}:4)",
        field=S1,
    ),
    Case(
        "task_key_collision",
        module(src("a_b", 1, nb()) + src("a.b", 1, nb(), mark=f"  {MARK}")),
        "source_id 'a.b' becomes task key 'a_b', like source 'a_b' at {path}:4; rename one",
        field=f"{S1}.source_id",
    ),
    Case(
        "depends_on_unknown",
        module(NOTEBOOK_A + src("b", 2, nb(), f"          depends_on: [zzz]  {MARK}\n")),
        "depends on unknown source 'zzz'",
        field=f"{S1}.transformation_config.depends_on[0]",
    ),
    Case(
        "depends_on_other_module",
        module(NOTEBOOK_A)
        + "  - module_name: m2\n    sources:\n"
        + src("b", 1, nb(), f"          depends_on: [a]  {MARK}\n"),
        "depends on 'a' of module 'm1'; dependencies must stay within one module",
        field="modules[1].sources[0].transformation_config.depends_on[0]",
    ),
    Case(
        "depends_on_cycle",
        module(
            src("a", 1, nb(), f"          depends_on: [b]  {MARK}\n")
            + src("b", 1, nb(), "          depends_on: [c]\n")
            + src("c", 1, nb(), "          depends_on: [a]\n")
        ),
        "dependency cycle: a -> b -> c -> a",
        field=f"{TC0}.depends_on",
    ),
    Case(
        "cycle_through_execution_order",
        module(src("a", 1, nb(), f"          depends_on: [b]  {MARK}\n") + src("b", 2, nb())),
        "dependency cycle: a -> b -> a",
        field=f"{TC0}.depends_on",
    ),
    Case(
        "depends_on_inactive",
        module(
            src("a", 1, nb()).replace("execution_order: 1", "execution_order: 1\n        is_active: false")
            + src("b", 2, nb(), f"          depends_on: [a]  {MARK}\n")
        ),
        "depends on inactive source 'a'",
        field=f"{S1}.transformation_config.depends_on[0]",
    ),
    Case(
        "outcome_on_non_condition",
        module(
            NOTEBOOK_A
            + src("b", 2, nb(), f"          depends_on: [{{source_id: a, outcome: 'true'}}]  {MARK}\n")
        ),
        "outcome is only allowed on a condition task, and 'a' is a notebook task",
        field=f"{S1}.transformation_config.depends_on[0]",
    ),
    Case(
        "sql_query_without_warehouse",
        module(
            src(
                "a",
                1,
                f"          task_type: sql_query\n          sql_task:  {MARK}\n            sql_query: SELECT 1\n",
            )
        ),
        "is required for sql_query tasks (or set default_warehouse_id",
        field=f"{TC0}.sql_task.warehouse_id",
    ),
    Case(
        "dbt_without_warehouse",
        module(
            src(
                "a",
                1,
                f"          task_type: dbt\n          dbt_task:  {MARK}\n            commands: [dbt run]\n",
            )
        ),
        "is required for dbt tasks",
        field=f"{TC0}.dbt_task.warehouse_id",
    ),
    Case(
        "relative_notebook_path",
        module(
            src("a", 1, f"          task_type: notebook\n          notebook_path: notebooks/ingest  {MARK}\n")
        ),
        "must be an absolute workspace path starting with '/', got 'notebooks/ingest'",
        field=f"{TC0}.notebook_path",
    ),
    Case(
        "relative_sql_file_path",
        module(
            src(
                "a",
                1,
                "          task_type: sql_file\n          sql_task:\n            warehouse_id: w\n"
                f"            sql_file_path: queries/q.sql  {MARK}\n",
            )
        ),
        "must be an absolute workspace path",
        field=f"{TC0}.sql_task.sql_file_path",
    ),
    Case(
        "too_many_tasks",
        thousand_and_one(),
        "has 1001 active sources; a job holds at most 1000 tasks",
        field="modules[0]",
    ),
    Case(
        "invalid_cron",
        module(
            NOTEBOOK_A,
            settings=f"    schedule:\n      timezone_id: UTC\n      quartz_cron_expression: '0 5 * * *'  {MARK}\n",
        ),
        "invalid Quartz cron expression: expected 6 or 7 fields",
        field="modules[0].schedule.quartz_cron_expression",
    ),
    Case(
        "cron_both_day_fields",
        module(
            NOTEBOOK_A,
            settings=f"    schedule:\n      timezone_id: UTC\n      quartz_cron_expression: '0 0 5 * * MON'  {MARK}\n",
        ),
        "exactly one of day-of-month and day-of-week must be '?'",
        field="modules[0].schedule.quartz_cron_expression",
    ),
    Case(
        "schedule_and_continuous",
        module(
            NOTEBOOK_A,
            settings=f"    schedule: {{quartz_cron_expression: '0 0 5 * * ?', timezone_id: UTC}}\n    continuous: {{pause_status: PAUSED}}  {MARK}\n",
        ),
        "schedule, continuous are mutually exclusive",
        field="modules[0].continuous",
    ),
    Case(
        "run_job_unknown_module",
        module(
            src(
                "a",
                1,
                f"          task_type: run_job\n          run_job_task:\n            module_name: ghost  {MARK}\n",
            )
        ),
        "names unknown module 'ghost'",
        field=f"{TC0}.run_job_task.module_name",
    ),
    Case(
        "run_job_own_module",
        module(
            src(
                "a", 1, f"          task_type: run_job\n          run_job_task: {{module_name: m1}}  {MARK}\n"
            )
        ),
        "a module cannot run its own job",
        field=f"{TC0}.run_job_task.module_name",
    ),
    Case(
        "spark_jar_without_cluster",
        module(
            src(
                "a",
                1,
                "          task_type: spark_jar\n          spark_jar_task: {main_class_name: com.x.Main}\n",
            )
        ),
        "spark_jar tasks need a cluster",
        field=TC0,
        line=7,
    ),
    Case(
        "unknown_job_cluster_key",
        module(src("a", 1, nb(), f"          job_cluster_key: big  {MARK}\n")),
        "names no job cluster of module 'm1' (the module has no job_clusters)",
        field=f"{TC0}.job_cluster_key",
    ),
    Case(
        "group_owner",
        module(
            NOTEBOOK_A,
            settings=(
                "    permissions:\n"
                "      - {user_name: a@example.com, permission_level: CAN_MANAGE}\n"
                f"      - {{group_name: data-engineers, permission_level: IS_OWNER}}  {MARK}\n"
            ),
        ),
        "a group cannot own a job: make a user_name or service_principal_name the IS_OWNER",
        field="modules[0].permissions[1].group_name",
    ),
    Case(
        "two_owners",
        module(
            NOTEBOOK_A,
            settings=(
                "    permissions:\n"
                "      - {user_name: a@example.com, permission_level: IS_OWNER}\n"
                f"      - {{service_principal_name: 9f8e7d6c-0000-1111-2222-333344445555, permission_level: IS_OWNER}}  {MARK}\n"
            ),
        ),
        "a job has exactly one IS_OWNER (also permissions[0])",
        field="modules[0].permissions[1].permission_level",
    ),
    Case(
        "principal_listed_twice",
        module(
            NOTEBOOK_A,
            settings=(
                "    permissions:\n"
                "      - {user_name: a@example.com, permission_level: IS_OWNER}\n"
                "      - {group_name: analysts, permission_level: CAN_VIEW}\n"
                f"      - {{user_name: a@example.com, permission_level: CAN_MANAGE}}  {MARK}\n"
            ),
        ),
        "user_name 'a@example.com' is listed twice (also permissions[0]); give each principal one permission_level",
        field="modules[0].permissions[2]",
    ),
    Case(
        "tag_key_not_a_label",
        module(NOTEBOOK_A, settings=f"    tags:\n      Cost Center: '1234'  {MARK}\n"),
        "tag key 'Cost Center' does not match GCP's pattern ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]",
        field='modules[0].tags["Cost Center"]',
    ),
    Case(
        "tag_value_ends_with_dash",
        module(NOTEBOOK_A, settings=f"    tags:\n      team: sales-  {MARK}\n"),
        "tag value 'sales-' does not match GCP's pattern",
        field="modules[0].tags.team",
    ),
    Case(
        "tag_value_too_long",
        module(NOTEBOOK_A, settings=f"    tags:\n      team: {'x' * 64}  {MARK}\n"),
        "tag value is 64 bytes; GCP allows at most 63",
        field="modules[0].tags.team",
    ),
    Case(
        "tag_value_outside_latin1",
        module(NOTEBOOK_A, settings=f"    tags:\n      team: 営業  {MARK}\n"),
        "tag value has characters outside Latin-1, which GCP does not allow",
        field="modules[0].tags.team",
    ),
    Case(
        "tag_reserved_for_ownership",
        module(NOTEBOOK_A, settings=f"    tags:\n      ljm_module: other  {MARK}\n"),
        "is reserved for the tool's ownership tags",
        field="modules[0].tags.ljm_module",
    ),
    Case(
        "too_many_tags",
        module(
            NOTEBOOK_A,
            settings=f"    tags:  {MARK}\n" + "".join(f"      t{i}: v\n" for i in range(22)),
        ),
        "at most 21 tags: a job holds 25 and the tool may add 4 (3 ownership tags, and ljm_removed",
        field="modules[0].tags",
    ),
    # -- task rules the compiler once repeated (the other four: depends_on_unknown,
    # depends_on_inactive, outcome_on_non_condition, nested_for_each) -----------------------------
    Case(
        "depends_on_itself",
        module(NOTEBOOK_A + src("b", 2, nb(), f"          depends_on: [b]  {MARK}\n")),
        "dependency cycle: b -> b (each waits for the next)",
        field=f"{S1}.transformation_config.depends_on",
    ),
    Case(
        "outcome_neither_true_nor_false",
        module(
            src(
                "c",
                1,
                "          task_type: condition\n          condition_task: {op: EQUAL_TO, left: '1', right: '1'}\n",
            )
            + src(
                "d",
                2,
                nb(),
                f"          depends_on:\n            - {{source_id: c, outcome: maybe}}  {MARK}\n",
            )
        ),
        'must be one of: "true", "false"',
        field=f"{S1}.transformation_config.depends_on[0].outcome",
    ),
    Case(
        "depends_on_not_a_list",
        module(NOTEBOOK_A + src("b", 2, nb(), f"          depends_on: a  {MARK}\n")),
        "must be a list",
        field=f"{S1}.transformation_config.depends_on",
    ),
    Case(
        "depends_on_entry_typo",
        module(NOTEBOOK_A + src("b", 2, nb(), f"          depends_on: [{{sourceid: a}}]  {MARK}\n")),
        "unknown field 'sourceid' (did you mean 'source_id'?)",
        field=f"{S1}.transformation_config.depends_on[0]",
        count=2,  # and source_id is required
    ),
    Case(
        "empty_sql_query",
        module(
            src(
                "a",
                1,
                f"          task_type: sql_query\n          sql_task:\n            warehouse_id: w\n            sql_query: ''  {MARK}\n",
            )
        ),
        "must not be empty",
        field=f"{TC0}.sql_task.sql_query",
    ),
    Case(
        "sql_query_typo",
        module(
            src(
                "a",
                1,
                f"          task_type: sql_query\n          sql_task:\n            warehouse_id: w\n            sql_qeury: SELECT 1  {MARK}\n",
            )
        ),
        "unknown field 'sql_qeury' (did you mean 'sql_query'?)",
        field=f"{TC0}.sql_task",
        count=2,  # and sql_query is required
    ),
    Case(
        "run_if_enum",
        module(src("a", 1, nb(), f"          run_if: SOMETIMES  {MARK}\n")),
        "must be one of: ALL_SUCCESS, ALL_DONE, NONE_FAILED, AT_LEAST_ONE_SUCCESS, ALL_FAILED, AT_LEAST_ONE_FAILED",
        field=f"{TC0}.run_if",
    ),
    Case(
        "timeout_seconds_string",
        module(src("a", 1, nb(), f"          timeout_seconds: '10'  {MARK}\n")),
        "must be an integer >= 0",
        field=f"{TC0}.timeout_seconds",
    ),
    Case(
        "condition_op_enum",
        module(
            src(
                "a",
                1,
                "          task_type: condition\n          condition_task:\n"
                f"            op: LIKE  {MARK}\n            left: a\n            right: b\n",
            )
        ),
        "must be one of: EQUAL_TO, NOT_EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL",
        field=f"{TC0}.condition_task.op",
    ),
    Case(
        "run_job_both_targets",
        module(
            src(
                "a",
                1,
                f"          task_type: run_job\n          run_job_task: {{job_id: 1, module_name: x}}  {MARK}\n",
            )
        ),
        "must set exactly one of: module_name, job_id",
        field=f"{TC0}.run_job_task",
    ),
    Case(
        "dbt_eleven_commands",
        module(
            src(
                "a",
                1,
                "          task_type: dbt\n          dbt_task:\n            warehouse_id: w\n"
                f"            commands: [{', '.join(['dbt run'] * 11)}]  {MARK}\n",
            )
        ),
        "must have at most 10 items",
        field=f"{TC0}.dbt_task.commands",
    ),
    Case(
        "dbt_command_not_dbt",
        module(
            src(
                "a",
                1,
                "          task_type: dbt\n          dbt_task:\n            warehouse_id: w\n"
                f"            commands: [dbt deps, ls -la]  {MARK}\n",
            )
        ),
        'must start with dbt (a dbt command such as "dbt run"), got the string "ls -la"',
        field=f"{TC0}.dbt_task.commands[1]",
    ),
    Case(
        "four_webhooks_on_one_event",
        module(
            NOTEBOOK_A,
            settings="    webhook_notifications:\n"
            f"      on_failure: [{{id: a}}, {{id: b}}, {{id: c}}, {{id: d}}]  {MARK}\n",
        ),
        "must have at most 3 items",
        field="modules[0].webhook_notifications.on_failure",
    ),
    Case(
        "dbt_without_commands",
        module(
            src(
                "a",
                1,
                f"          task_type: dbt\n          dbt_task:\n            warehouse_id: w\n            commands: []  {MARK}\n",
            )
        ),
        "must not be empty",
        field=f"{TC0}.dbt_task.commands",
    ),
    Case(
        "full_refresh_not_bool",
        module(
            src(
                "a",
                1,
                f"          task_type: pipeline\n          pipeline_task:\n            pipeline_id: p\n            full_refresh: 'yes'  {MARK}\n",
            )
        ),
        "must be true or false",
        field=f"{TC0}.pipeline_task.full_refresh",
    ),
    Case(
        "duplicate_module_in_file",
        module(NOTEBOOK_A) + f"  - module_name: m1  {MARK}\n",
        "duplicate module 'm1' (also at {path}:2)",
        field="modules[1]",
    ),
]
