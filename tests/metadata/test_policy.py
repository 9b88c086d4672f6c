"""The identity and code policy: loading (safe, capped, errors with file:line and field) and its
checks against modules (run_as allow-list, code path prefixes, defaults)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.policy import (
    Policy,
    is_allowed_path,
    load_policy,
    parse_policy,
    policy_issues,
    with_policy_defaults,
)
from tests.helpers.policies import SAMPLE_POLICY, SP
from tests.planning.builders import TASK_TYPE_SOURCES, mod, src


@pytest.fixture
def policy() -> Policy:
    return parse_policy(SAMPLE_POLICY, "policy.yaml")


def test_the_sample_policy_loads(policy: Policy, tmp_path: Path):
    assert policy.run_as_allowed == ("etl-prod@example.com", SP)
    assert policy.run_as_default == {"service_principal_name": SP}
    assert policy.run_as_default_for("dev") == {"user_name": "etl-prod@example.com"}
    assert policy.run_as_default_for("prod") == {"service_principal_name": SP}
    assert policy.code_prefixes == ("/Workspace/Shared/", "/Volumes/main/")
    assert policy.default_permissions == ({"group_name": "data-eng", "permission_level": "CAN_VIEW"},)
    assert (policy.mass_change_max_jobs, policy.mass_change_max_fraction, policy.allow_mass_change) == (
        2,
        0.2,
        False,
    )
    path = tmp_path / "policy.yaml"
    path.write_text(SAMPLE_POLICY)
    assert replace(load_policy(str(path)), source="policy.yaml") == policy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "run_as: {allowed: [a], default: {user_name: b}}",
            "policy.yaml:1: run_as.default: 'b' is not in run_as.allowed",
        ),
        ("run_as:\n  alowed: [a]\n", "policy.yaml:2: run_as.alowed: unknown key"),
        (
            "code_paths:\n  allowed_prefixes: [Workspace/x]\n",
            "code_paths.allowed_prefixes[0]: must be an absolute path",
        ),
        (
            "permissions:\n  default: [{group_name: g, permission_level: IS_OWNER}]\n",
            "permission_level: must be one of",
        ),
        (
            "permissions:\n  default: [{group_name: g, user_name: u, permission_level: CAN_VIEW}]\n",
            "exactly one of",
        ),
        ("mass_change: {max_fraction: 2}", "mass_change.max_fraction: must be a number between 0 and 1"),
        ("allow_mass_change: yes please", "allow_mass_change: must be true or false"),
        ("", "policy.yaml:1: the policy file is empty"),
        ("- a\n- b\n", "policy.yaml:1"),
        ("a: &x [1]\nb: !!python/object:os.system [ls]\n", "policy.yaml:2"),
    ],
)
def test_bad_policies_name_file_line_and_field(text: str, expected: str):
    with pytest.raises(ConfigurationError) as caught:
        parse_policy(text, "policy.yaml")
    assert expected in str(caught.value)


def test_size_cap_and_missing_file(tmp_path: Path):
    big = tmp_path / "big.yaml"
    big.write_text("run_as:\n  allowed:\n" + "    - someone@example.com\n" * 5000)
    with pytest.raises(ConfigurationError, match="over the limit of 64 KiB"):
        load_policy(str(big))
    with pytest.raises(ConfigurationError, match=r"cannot read policy .*missing\.yaml"):
        load_policy(str(tmp_path / "missing.yaml"))


def test_prefixes_cannot_be_escaped():
    prefixes = ["/Workspace/Shared/", "dbfs:/libs/"]
    assert is_allowed_path("/Workspace/Shared/etl/nb", prefixes)
    assert not is_allowed_path("/Workspace/Shared/../Users/eve/nb", prefixes)
    assert not is_allowed_path("/Workspace/SharedX/nb", ["/Workspace/Shared"])
    assert is_allowed_path("/Workspace/Shared", ["/Workspace/Shared/"])
    assert is_allowed_path("dbfs:/libs/a.whl", prefixes)
    assert not is_allowed_path("dbfs:/libs/../tmp/a.whl", prefixes)
    assert not is_allowed_path("relative/nb", prefixes)


def test_run_as_outside_the_allow_list_is_named(policy: Policy):
    module = mod(
        "sales",
        src("a", module="sales", notebook_path="/Workspace/Shared/nb"),
        run_as={"user_name": "mallory@example.com"},
    )
    (issue,) = policy_issues(
        module, policy, control_table="main.ops.ctl", modules_table="main.ops.ctl_modules"
    )
    assert issue.module == "sales" and issue.field == "run_as"
    assert issue.location == "table main.ops.ctl_modules module_name=sales"
    assert "'mallory@example.com' is not allowed by the policy policy.yaml" in issue.message
    assert policy_issues(replace(module, settings={"run_as": {"service_principal_name": SP}}), policy) == []


def test_every_code_path_kind_is_checked(policy: Policy):
    outside = {
        "notebook": {"notebook_path": "/Users/eve/nb"},
        "sql_file": {"sql_task": {"warehouse_id": "w", "sql_file_path": "/Users/eve/q.sql"}},
        "spark_python": {"spark_python_task": {"python_file": "/tmp/run.py"}},
        "python_wheel": {**TASK_TYPE_SOURCES["python_wheel"], "libraries": [{"whl": "/Volumes/other/x.whl"}]},
        "spark_jar": {**TASK_TYPE_SOURCES["spark_jar"], "libraries": [{"jar": "dbfs:/jars/x.jar"}]},
        "dbt": {"dbt_task": {"commands": ["dbt run"], "project_directory": "/Repos/eve/dbt"}},
        "for_each": {
            "for_each_task": {"inputs": "[1]", "task": {"task_type": "notebook", "notebook_path": "/x"}}
        },
    }
    for task_type, tc in outside.items():
        source = src("s1", module="m", task_type=task_type, **tc)
        source = replace(source, source_file="meta/etl.yaml", line=7)
        issues = policy_issues(mod("m", source), policy, control_table="ctl")
        assert len(issues) == 1, (task_type, issues)
        assert issues[0].location == "meta/etl.yaml:7", task_type
        assert issues[0].field.startswith("transformation_config."), task_type
        assert "source s1" in issues[0].message and "outside the policy" in issues[0].message
    # pypi packages are names, not files; inline SQL lives in the tool's own folder
    fine = src(
        "ok",
        task_type="python_wheel",
        **{
            **TASK_TYPE_SOURCES["python_wheel"],
            "libraries": [{"pypi": {"package": "requests"}}, {"whl": "/Volumes/main/x.whl"}],
        },
    )
    assert (
        policy_issues(
            mod("m", fine, src("q", task_type="sql_query", **TASK_TYPE_SOURCES["sql_query"])), policy
        )
        == []
    )
    env = mod(
        "m",
        src("n", notebook_path="/Workspace/Shared/n"),
        environments=[{"environment_key": "e", "spec": {"dependencies": ["pandas", "-r /tmp/req.txt"]}}],
    )
    (issue,) = policy_issues(env, policy, control_table="ctl")
    assert issue.field == "environments[0].spec.dependencies[1]" and "'/tmp/req.txt'" in issue.message


def test_sql_rows_are_located_by_table_and_source_id(policy: Policy):
    (issue,) = policy_issues(
        mod("m", src("row_1", notebook_path="/Users/eve/nb")), policy, control_table="main.ops.ctl"
    )
    assert str(issue).startswith("table main.ops.ctl source_id=row_1: transformation_config.notebook_path:")


def test_defaults_fill_run_as_and_add_grants(policy: Policy):
    bare = mod("m", src("a", notebook_path="/Workspace/Shared/nb"))
    filled = with_policy_defaults(bare, policy)
    assert filled.settings["run_as"] == {"service_principal_name": SP}
    assert filled.settings["permissions"] == [{"group_name": "data-eng", "permission_level": "CAN_VIEW"}]
    assert with_policy_defaults(bare, policy, env="dev").settings["run_as"] == {
        "user_name": "etl-prod@example.com"
    }
    own = mod(
        "m",
        src("a"),
        run_as={"user_name": "etl-prod@example.com"},
        permissions=[{"group_name": "data-eng", "permission_level": "CAN_MANAGE_RUN"}],
    )
    kept = with_policy_defaults(own, policy)
    assert kept.settings["run_as"] == {"user_name": "etl-prod@example.com"}
    assert kept.settings["permissions"] == [{"group_name": "data-eng", "permission_level": "CAN_MANAGE_RUN"}]
    assert bare.settings == {}  # the input is not modified
    assert with_policy_defaults(bare, Policy()) is bare
