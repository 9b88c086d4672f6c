"""Issue 7 item 2: every ACL the tool sends names exactly one owner, against an emulator that
enforces the Permissions API's one-owner rule, through the real SDK."""

from __future__ import annotations

from collections import Counter

import pytest

from lakeflow_job_meta.errors import MetadataValidationError
from lakeflow_job_meta.planning.acl import acl_drift
from tests.example_files import EXAMPLE_MODULES
from tests.helpers.workspace_world import World, converge

ME = ("GET", "preview/scim/v2/Me")


@pytest.fixture
def examples(tmp_path, jobs_emulator, make_workspace_client) -> World:
    return World(tmp_path, jobs_emulator, make_workspace_client)


SP_ID = "9f8e7d6c-0000-1111-2222-333344445555"


def sent_acls(world: World) -> list[tuple[str, list[dict]]]:
    """Every ACL the emulator received: on jobs/create and on permission PUT/PATCH."""
    found = []
    for record in world.emu.requests:
        body = record.body if isinstance(record.body, dict) else {}
        if record.endpoint == "jobs/create" and "access_control_list" in body:
            found.append((record.endpoint, body["access_control_list"]))
        elif record.endpoint.startswith("permissions/jobs/") and record.method in ("PUT", "PATCH"):
            found.append((f"{record.method} {record.endpoint}", body.get("access_control_list") or []))
    return found


def owner_entries(acl: list[dict]) -> list[dict]:
    return [e for e in acl if e.get("permission_level") == "IS_OWNER"]


def module_yaml(name: str, permissions: str) -> str:
    return f"""modules:
  - module_name: {name}
    permissions:
{permissions}    sources:
      - source_id: {name}_nb
        source_type: notebook
        execution_order: 1
        transformation_config: {{task_type: notebook, notebook_path: /Workspace/Shared/{name}}}
"""


def test_examples_apply_with_one_owner_per_acl_then_zero_writes(examples: World):
    world = examples
    result = converge(world)
    assert {r.module: r.action for r in result} == dict.fromkeys(EXAMPLE_MODULES, "create")
    assert world.emu.write_counts() == Counter({"jobs/create": 5})
    acls = sent_acls(world)
    assert len(acls) == 1  # only sales_daily declares permissions
    for _, acl in acls:
        assert len(owner_entries(acl)) == 1, acl
    # no owner in the metadata: the identity running the tool owns it, read once
    (_, sales_acl) = acls[0]
    assert owner_entries(sales_acl) == [{"user_name": world.emu.user_name, "permission_level": "IS_OWNER"}]
    assert world.emu.request_counts()[ME] == 1
    job_id = world.tracked()["sales_daily"]["job_id"]
    live = world.emu.permissions(job_id)["access_control_list"]
    # the GET reply adds the inherited admins entry; neither it nor our owner is drift
    assert any(e.get("group_name") == "admins" for e in live)
    assert acl_drift(sales_acl, live) == []

    world.emu.reset_counters()
    second = world.orchestrator().run_all_modules()
    assert second.ok and {r.action for r in second} == {"noop"}
    assert world.emu.writes() == 0 and world.other_writes() == Counter()
    assert sent_acls(world) == []


def test_an_operator_edit_of_the_acl_is_drift_but_our_owner_is_not(examples: World):
    world = examples
    converge(world)
    job_id = world.tracked()["sales_daily"]["job_id"]
    (_, sent) = sent_acls(world)[0]
    world.client.api_client.do(
        "PATCH",
        f"/api/2.0/permissions/jobs/{job_id}",
        body={"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_MANAGE"}]},
    )
    live = world.emu.permissions(job_id)["access_control_list"]
    assert acl_drift(sent, live) == ["permissions group_name=analysts: CAN_MANAGE -> CAN_VIEW"]

    plan = world.orchestrator().plan()
    assert [c.acl_drift for c in plan.changes if c.module == "sales_daily"] == [
        ["permissions group_name=analysts: CAN_MANAGE -> CAN_VIEW"]
    ]
    assert "~ permissions group_name=analysts: CAN_MANAGE -> CAN_VIEW" in plan.render_text()
    world.emu.reset_counters()
    restored = world.orchestrator().run_all_modules()
    assert restored.ok and restored["sales_daily"].drift and restored["sales_daily"].action == "noop"
    assert world.emu.writes() == 0  # the job itself is not reset
    assert [acl for _, acl in sent_acls(world)] == [sent]  # the ACL is sent again, owner included
    assert acl_drift(sent, world.emu.permissions(job_id)["access_control_list"]) == []

    world.emu.reset_counters()
    assert world.orchestrator().run_all_modules().ok
    assert sent_acls(world) == [] and world.emu.writes() == 0


def test_the_running_identity_is_promoted_not_listed_twice(tmp_path, jobs_emulator, make_workspace_client):
    perms = (
        f"      - {{user_name: {jobs_emulator.user_name}, permission_level: CAN_MANAGE}}\n"
        "      - {group_name: analysts, permission_level: CAN_VIEW}\n"
    )
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml("promoted", perms))
    converge(world)
    [(_, acl)] = sent_acls(world)
    assert sorted(acl, key=str) == sorted(
        [
            {"user_name": jobs_emulator.user_name, "permission_level": "IS_OWNER"},
            {"group_name": "analysts", "permission_level": "CAN_VIEW"},
        ],
        key=str,
    )


def test_a_service_principal_running_the_tool_owns_by_application_id(
    tmp_path, jobs_emulator, make_workspace_client
):
    jobs_emulator.user_name, jobs_emulator.service_principal = SP_ID, True
    perms = "      - {group_name: analysts, permission_level: CAN_VIEW}\n"
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml("by_sp", perms))
    converge(world)
    [(_, acl)] = sent_acls(world)
    assert owner_entries(acl) == [{"service_principal_name": SP_ID, "permission_level": "IS_OWNER"}]


def test_a_declared_owner_is_kept_and_me_is_not_read(tmp_path, jobs_emulator, make_workspace_client):
    """Me is read only for what the metadata leaves out: here the owner and run_as are named."""
    perms = (
        "      - {user_name: lead@example.com, permission_level: IS_OWNER}\n"
        "      - {group_name: analysts, permission_level: CAN_VIEW}\n"
    )
    text = module_yaml("declared", perms).replace(
        "    permissions:\n", "    run_as: {user_name: lead@example.com}\n    permissions:\n"
    )
    world = World(tmp_path, jobs_emulator, make_workspace_client, text)
    converge(world)
    [(_, acl)] = sent_acls(world)
    assert owner_entries(acl) == [{"user_name": "lead@example.com", "permission_level": "IS_OWNER"}]
    assert jobs_emulator.request_counts()[ME] == 0


def test_a_group_owner_is_rejected_at_validation(examples: World):
    world = examples
    bad = world.volume / "bad.yaml"
    bad.write_text(
        module_yaml("grouped", "      - {group_name: data-engineers, permission_level: IS_OWNER}\n")
    )
    with pytest.raises(MetadataValidationError) as caught:
        world.sync()
    assert f"{bad}:4: modules[0].permissions[0].group_name: a group cannot own a job" in str(caught.value)
    assert world.emu.request_counts()[("POST", "jobs/create")] == 0
