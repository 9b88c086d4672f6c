"""One test per server-default rule (docs/API_FACTS.md): a value present only live is not drift,
a user-set value changed live is drift. Plus queueing, webhook ids and the fields never returned."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.jobs import JobSettings

from lakeflow_job_meta.planning.normalize import NOT_RETURNED, SERVER_DEFAULTS, compare_settings
from tests.emulator.server import JobsEmulator

CLUSTER = {"spark_version": "15.4.x-scala2.12", "num_workers": 1}
BASE: dict[str, Any] = {
    "name": "j",
    "queue": {"enabled": True},
    "email_notifications": {"on_failure": ["a@example.com"]},
    "tasks": [
        {
            "task_key": "nb",
            "notebook_task": {"notebook_path": "/x"},
            "new_cluster": {**CLUSTER},
            "email_notifications": {"on_failure": ["a@example.com"]},
        },
        {"task_key": "pipe", "pipeline_task": {"pipeline_id": "p1"}},
        {"task_key": "py", "spark_python_task": {"python_file": "/f.py"}, "job_cluster_key": "jc"},
        {"task_key": "dbt", "dbt_task": {"commands": ["dbt run"]}, "job_cluster_key": "jc"},
        {"task_key": "sql", "sql_task": {"warehouse_id": "w", "file": {"path": "/q.sql"}}},
        {
            "task_key": "loop",
            "for_each_task": {
                "inputs": "[1, 2]",
                "task": {
                    "task_key": "loop_inner",
                    "notebook_task": {"notebook_path": "/x"},
                    "pipeline_task": {"pipeline_id": "p2"},
                    "spark_python_task": {"python_file": "/f.py"},
                    "dbt_task": {"commands": ["dbt run"]},
                    "sql_task": {"warehouse_id": "w", "file": {"path": "/q.sql"}},
                    "new_cluster": {**CLUSTER},
                    "email_notifications": {"on_failure": ["a@example.com"]},
                },
            },
        },
    ],
    "job_clusters": [{"job_cluster_key": "jc", "new_cluster": {**CLUSTER}}],
}
# Task type that carries each task-level rule, so the concrete path exists in BASE.
_TASK_FOR_FIELD = {
    "pipeline_task": "pipe",
    "spark_python_task": "py",
    "dbt_task": "dbt",
    "sql_task": "sql",
    "email_notifications": "nb",
}


def _locate(settings: dict[str, Any], pattern: str) -> tuple[dict[str, Any], str, str]:
    """The dict holding the field a rule pattern names in ``settings``, its key and diff path."""
    parts = pattern.split(".")
    node: Any = settings
    path: list[str] = []
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if part == "tasks[*]":
            first = parts[i + 1] if parts[i + 1] != "for_each_task" else "for_each_task"
            key = "loop" if first == "for_each_task" else _TASK_FOR_FIELD.get(first, "nb")
            node = next(t for t in node["tasks"] if t["task_key"] == key)
            path.append(f"tasks[{key}]")
        elif part == "job_clusters[*]":
            node = node["job_clusters"][0]
            path.append("job_clusters[jc]")
        else:
            node = node.setdefault(part, {})
            path.append(part)
        i += 1
    leaf = parts[-1] if parts[-1] != "*" else "availability"
    return node, leaf, ".".join([*path, leaf])


def _sample(rule: Any, leaf: str) -> Any:
    """A value the service might fill for the rule."""
    if isinstance(rule, tuple):
        return rule[0]
    samples = {
        "run_as": {"user_name": "creator@example.com"},
        "custom_tags": {"cost_center": "from-policy"},
        "cluster_log_conf": {"dbfs": {"destination": "dbfs:/logs"}},
        "aws_attributes": {"availability": "SPOT_WITH_FALLBACK", "zone_id": "us-east-1c"},
        "azure_attributes": {"availability": "SPOT_WITH_FALLBACK_AZURE"},
        "gcp_attributes": {"availability": "PREEMPTIBLE_WITH_FALLBACK_GCP"},
        "enable_elastic_disk": False,
        "enable_local_disk_encryption": False,
    }
    return samples.get(leaf, "SERVER_VALUE")


def _other(value: Any) -> Any:
    """A different value of the same type: what a UI edit would leave."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 60
    if isinstance(value, dict):
        return {key: _other(item) for key, item in value.items()}
    return f"{value}_CHANGED"


RULES = sorted(SERVER_DEFAULTS)


@pytest.mark.parametrize("pattern", RULES)
def test_a_server_filled_value_present_only_live_is_not_drift(pattern: str) -> None:
    live = copy.deepcopy(BASE)
    node, leaf, path = _locate(live, pattern)
    assert leaf not in node, f"{path} must be absent from the desired settings"
    node[leaf] = _sample(SERVER_DEFAULTS[pattern], leaf)
    assert compare_settings(BASE, live, explicit_pause=False) == []


@pytest.mark.parametrize("pattern", RULES)
def test_a_user_set_value_changed_live_is_drift(pattern: str) -> None:
    desired = copy.deepcopy(BASE)
    node, leaf, path = _locate(desired, pattern)
    node[leaf] = _sample(SERVER_DEFAULTS[pattern], leaf)
    live = copy.deepcopy(desired)
    live_node, _, _ = _locate(live, pattern)
    live_node[leaf] = _other(node[leaf])
    changes = compare_settings(desired, live, explicit_pause=False)
    assert changes, path
    assert all(c.path.startswith(path) for c in changes), [str(c) for c in changes]


@pytest.mark.parametrize("pattern", [p for p in RULES if isinstance(SERVER_DEFAULTS[p], tuple)])
def test_a_live_only_value_other_than_the_default_is_drift(pattern: str) -> None:
    """A fixed default (``timeout_seconds: 0``) excuses only that value: 60 set in the UI is drift."""
    live = copy.deepcopy(BASE)
    node, leaf, path = _locate(live, pattern)
    node[leaf] = _other(SERVER_DEFAULTS[pattern][0])
    assert [c.path for c in compare_settings(BASE, live, explicit_pause=False)] == [path]


@pytest.mark.parametrize("pattern", sorted(NOT_RETURNED))
def test_a_field_the_service_never_returns_is_not_drift(pattern: str) -> None:
    desired = copy.deepcopy(BASE)
    node, leaf, _ = _locate(desired, pattern)
    node[leaf] = True
    assert compare_settings(desired, BASE, explicit_pause=False) == []


def test_a_block_with_one_user_value_among_defaults_is_drift() -> None:
    live = copy.deepcopy(BASE)
    live["webhook_notifications"] = {"on_failure": [{"id": "hook-1"}]}
    live["tasks"][1]["email_notifications"] = {"no_alert_for_skipped_runs": False, "on_start": ["x@y.z"]}
    paths = [c.path for c in compare_settings(BASE, live, explicit_pause=False)]
    assert paths == ["tasks[pipe].email_notifications", "webhook_notifications"]


@pytest.mark.parametrize(
    ("desired", "live", "drift"),
    [
        (None, None, False),
        (None, {"enabled": True}, False),
        ({"enabled": True}, None, False),
        ({"enabled": False}, {"enabled": False}, False),
        ({"enabled": False}, None, True),
        ({"enabled": False}, {"enabled": True}, True),
        ({"enabled": True}, {"enabled": False}, True),
        ({"enabled": True}, {}, True),  # a queue block without ``enabled`` is off
    ],
)
def test_a_missing_queue_means_enabled_on_either_side(desired: Any, live: Any, drift: bool) -> None:
    def settings(queue: Any) -> dict[str, Any]:
        return {"name": "j"} if queue is None else {"name": "j", "queue": queue}

    changes = compare_settings(settings(desired), settings(live), explicit_pause=False)
    assert [c.path for c in changes] == (["queue.enabled"] if drift else [])


def test_webhook_destinations_compare_by_id_not_position() -> None:
    desired = {"name": "j", "webhook_notifications": {"on_failure": [{"id": "a"}, {"id": "b"}]}}
    reordered = {"name": "j", "webhook_notifications": {"on_failure": [{"id": "b"}, {"id": "a"}]}}
    assert compare_settings(desired, reordered, explicit_pause=False) == []
    replaced = {"name": "j", "webhook_notifications": {"on_failure": [{"id": "b"}, {"id": "c"}]}}
    changes = compare_settings(desired, replaced, explicit_pause=False)
    assert [(c.path, c.desired, c.live) for c in changes] == [
        ("webhook_notifications.on_failure[a]", {"id": "a"}, None),
        ("webhook_notifications.on_failure[c]", None, {"id": "c"}),
    ]


def test_a_table_update_condition_is_compared() -> None:
    trigger = {"table_update": {"table_names": ["c.s.t"], "condition": "ALL_UPDATED"}}
    desired = {"name": "j", "trigger": trigger}
    assert compare_settings(desired, copy.deepcopy(desired), explicit_pause=False) == []
    live = copy.deepcopy(desired)
    live["trigger"]["table_update"]["condition"] = "ANY_UPDATED"
    changes = compare_settings(desired, live, explicit_pause=False)
    assert [c.path for c in changes] == ["trigger.table_update.condition"]


# ---------------------------------------------------------------------------------------
# against the emulator, through the SDK: every default it fills, then UI edits
# ---------------------------------------------------------------------------------------
POLICY = {
    "custom_tags": {"cost_center": "42"},
    "cluster_log_conf": {"dbfs": {"destination": "dbfs:/cluster-logs"}},
    "node_type_id": "i3.xlarge",
}


def _create(client: WorkspaceClient, settings: dict[str, Any]) -> int:
    typed = JobSettings.from_dict(settings)
    kwargs = {f.name: getattr(typed, f.name) for f in dataclasses.fields(typed) if getattr(typed, f.name)}
    job_id = client.jobs.create(**kwargs).job_id
    assert job_id is not None
    return job_id


def _live(client: WorkspaceClient, job_id: int) -> dict[str, Any]:
    settings = client.jobs.get(job_id).settings
    assert settings is not None
    return settings.as_dict()


@pytest.fixture
def policy_emulator():
    with JobsEmulator(cluster_policies={"pol-1": POLICY}) as emu:
        yield emu, WorkspaceClient(config=Config(host=emu.url, token="t", retry_timeout_seconds=10))


@pytest.mark.emulator
def test_the_emulators_filled_values_are_not_drift_and_ui_edits_of_user_values_are(policy_emulator) -> None:
    emu, client = policy_emulator
    user_cluster = {**CLUSTER, "node_type_id": "m5.large", "aws_attributes": {"availability": "ON_DEMAND"}}
    desired: dict[str, Any] = {
        "name": "j",
        "queue": {"enabled": True},
        "email_notifications": {"on_failure": ["a@example.com"]},
        "tasks": [
            {"task_key": "nb", "notebook_task": {"notebook_path": "/x"}, "new_cluster": user_cluster},
            {"task_key": "pipe", "pipeline_task": {"pipeline_id": "p1"}},
            {"task_key": "py", "spark_python_task": {"python_file": "/f.py"}, "job_cluster_key": "jc"},
            {"task_key": "sql", "sql_task": {"warehouse_id": "w", "file": {"path": "/q.sql"}}},
            {
                "task_key": "loop",
                "for_each_task": {
                    "inputs": "[1, 2]",
                    "task": {
                        "task_key": "inner",
                        "notebook_task": {"notebook_path": "/x"},
                        "new_cluster": CLUSTER,
                    },
                },
            },
        ],
        "job_clusters": [{"job_cluster_key": "jc", "new_cluster": {**CLUSTER, "policy_id": "pol-1"}}],
    }
    job_id = _create(client, desired)
    live = _live(client, job_id)
    filled = live["job_clusters"][0]["new_cluster"]
    assert filled["custom_tags"] == POLICY["custom_tags"] and filled["driver_node_type_id"] == "i3.xlarge"
    assert live["queue"] == {"enabled": True}
    assert compare_settings(desired, live, explicit_pause=False) == []

    def ui_edit(settings: dict[str, Any]) -> None:
        task_cluster = settings["tasks"][0]["new_cluster"]
        task_cluster["node_type_id"] = "r5.large"  # user-set: drift
        task_cluster["aws_attributes"]["availability"] = "SPOT"  # user-set: drift
        task_cluster["aws_attributes"]["zone_id"] = "auto"  # filled by the backend: not drift
        settings["job_clusters"][0]["new_cluster"]["custom_tags"] = {"cost_center": "43"}  # policy's

    emu.edit_job(job_id, ui_edit)
    changes = compare_settings(desired, _live(client, job_id), explicit_pause=False)
    assert sorted(c.path for c in changes) == [
        "tasks[nb].new_cluster.aws_attributes.availability",
        "tasks[nb].new_cluster.node_type_id",
    ]
