"""Issue 15: what metadata removes is removed, and the remaining service rules, against the
emulator through the real SDK.

- ``jobs/reset`` without ``run_as`` keeps the previous identity (the emulator models it), so the
  tool always sends one: the module's, else the policy default, else the identity running it.
- A permissions PUT replaces every direct grant: a job whose metadata grants nothing gets an
  owner-only ACL, and its live ACL is compared on every full resync.
- The pause of a removed module adds ``ljm_removed``: 21 user tags leave room for it.
- Only a workspace admin moves a job's owner: the tool never does unless the metadata names one,
  and a refusal is one line in the module's outcome.
"""

from __future__ import annotations

from collections import Counter

from databricks.sdk.service.jobs import JobSettings

from lakeflow_job_meta.metadata.policy import Policy
from tests.helpers.workspace_world import World, converge

ME = "emulator-user@example.com"  # the emulator's caller (tests/emulator/server.py DEFAULT_USER)
OLD_SP = "11111111-2222-3333-4444-555555555555"
POLICY_SP = "9f8e7d6c-0000-1111-2222-333344445555"


def module_yaml(settings: str = "", name: str = "m1") -> str:
    return f"""modules:
  - module_name: {name}
    schedule: {{quartz_cron_expression: "0 0 5 * * ?", timezone_id: UTC}}
{settings}    sources:
      - source_id: {name}_nb
        source_type: notebook
        execution_order: 1
        transformation_config: {{task_type: notebook, notebook_path: /Workspace/Shared/{name}}}
"""


RUN_AS_OLD = f"    run_as: {{service_principal_name: {OLD_SP}}}\n"


def only_job(world: World) -> int:
    [job_id] = world.emu.jobs()
    return job_id


def direct_grants(world: World, job_id: int) -> dict[tuple[str, str], str]:
    found = {}
    for entry in world.emu.permissions(job_id)["access_control_list"]:
        for permission in entry["all_permissions"]:
            if not permission["inherited"]:
                key = next(k for k in ("user_name", "group_name", "service_principal_name") if k in entry)
                found[(key, entry[key])] = permission["permission_level"]
    return found


def resets(world: World) -> list[dict]:
    return [r.body for r in world.emu.requests if r.endpoint == "jobs/reset"]


def test_the_emulator_keeps_run_as_on_a_reset_without_one(tmp_path, jobs_emulator, make_workspace_client):
    """The quirk the fix is for (databricks/cli libs/testserver/jobs.go JobsReset)."""
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml(RUN_AS_OLD))
    converge(world)
    job_id = only_job(world)
    settings = {k: v for k, v in world.settings(job_id).items() if k != "run_as"}
    world.client.jobs.reset(job_id=job_id, new_settings=JobSettings.from_dict(settings))
    assert world.settings(job_id)["run_as"] == {"service_principal_name": OLD_SP}


def test_a_removed_run_as_is_replaced_by_the_identity_running_the_tool(
    tmp_path, jobs_emulator, make_workspace_client
):
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml(RUN_AS_OLD))
    converge(world)
    job_id = only_job(world)
    assert world.settings(job_id)["run_as"] == {"service_principal_name": OLD_SP}

    world.edit_yaml(RUN_AS_OLD, "")
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok and result["m1"].action == "update"
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    [sent] = resets(world)
    assert sent["new_settings"]["run_as"] == {"user_name": ME}  # explicit, not left out
    assert world.settings(job_id)["run_as"] == {"user_name": ME}

    world.emu.reset_counters()
    assert {r.action for r in world.orchestrator().run_all_modules()} == {"noop"}
    assert world.emu.writes() == 0


def test_a_removed_run_as_is_replaced_by_the_policy_default(tmp_path, jobs_emulator, make_workspace_client):
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml(RUN_AS_OLD))
    converge(world)
    job_id = only_job(world)
    world.edit_yaml(RUN_AS_OLD, "")
    policy = Policy(run_as_default={"service_principal_name": POLICY_SP})
    result = world.orchestrator(policy=policy).run_all_modules()
    assert result.ok and result["m1"].action == "update"
    [sent] = resets(world)
    assert sent["new_settings"]["run_as"] == {"service_principal_name": POLICY_SP}
    assert world.settings(job_id)["run_as"] == {"service_principal_name": POLICY_SP}


def test_a_live_only_run_as_change_is_drift_and_is_restored(tmp_path, jobs_emulator, make_workspace_client):
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml())
    converge(world)
    job_id = only_job(world)
    assert world.settings(job_id)["run_as"] == {"user_name": ME}
    world.emu.edit_job(job_id, {"run_as": {"service_principal_name": OLD_SP}})

    plan = world.orchestrator().plan()
    [change] = plan.changes
    assert change.drift and any("run_as" in str(d) for d in change.diff)
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok and result["m1"].drift
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.settings(job_id)["run_as"] == {"user_name": ME}


def test_removed_permissions_are_revoked_with_an_owner_only_acl(
    tmp_path, jobs_emulator, make_workspace_client
):
    grant = "    permissions:\n      - {group_name: analysts, permission_level: CAN_MANAGE}\n"
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml(grant))
    converge(world)
    job_id = only_job(world)
    assert direct_grants(world, job_id) == {
        ("group_name", "analysts"): "CAN_MANAGE",
        ("user_name", ME): "IS_OWNER",
    }

    world.edit_yaml(grant, "")
    result = world.orchestrator().run_all_modules()
    assert result.ok
    assert direct_grants(world, job_id) == {("user_name", ME): "IS_OWNER"}

    world.emu.reset_counters()
    assert {r.action for r in world.orchestrator().run_all_modules()} == {"noop"}
    assert world.emu.writes() == 0 and world.other_writes() == Counter()


def test_a_hand_added_grant_is_drift_on_a_job_without_declared_permissions(
    tmp_path, jobs_emulator, make_workspace_client
):
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml())
    converge(world)
    job_id = only_job(world)
    world.client.api_client.do(
        "PATCH",
        f"/api/2.0/permissions/jobs/{job_id}",
        body={"access_control_list": [{"user_name": "eve@example.com", "permission_level": "CAN_MANAGE"}]},
    )
    [change] = world.orchestrator().plan().changes
    assert change.acl_drift == ["permissions user_name=eve@example.com: CAN_MANAGE -> none"]
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok and result["m1"].drift and world.emu.writes() == 0
    assert direct_grants(world, job_id) == {("user_name", ME): "IS_OWNER"}


def test_policy_default_grants_and_the_owner_are_the_whole_acl(
    tmp_path, jobs_emulator, make_workspace_client
):
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml())
    policy = Policy(default_permissions=({"group_name": "data-eng", "permission_level": "CAN_VIEW"},))
    converge(world, policy=policy)
    job_id = only_job(world)
    world.client.api_client.do(
        "PATCH",
        f"/api/2.0/permissions/jobs/{job_id}",
        body={"access_control_list": [{"group_name": "ops", "permission_level": "CAN_MANAGE_RUN"}]},
    )
    assert world.orchestrator(policy=policy).run_all_modules().ok
    assert direct_grants(world, job_id) == {
        ("group_name", "data-eng"): "CAN_VIEW",
        ("user_name", ME): "IS_OWNER",
    }


def test_the_live_owner_is_kept_when_the_metadata_names_none(tmp_path, jobs_emulator, make_workspace_client):
    """An admin moved the owner: not drift, and the tool (not an admin) never moves it back."""
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml())
    converge(world)
    job_id = only_job(world)
    world.client.api_client.do(
        "PUT",
        f"/api/2.0/permissions/jobs/{job_id}",
        body={
            "access_control_list": [
                {"user_name": "lead@example.com", "permission_level": "IS_OWNER"},
                {"user_name": "eve@example.com", "permission_level": "CAN_VIEW"},
            ]
        },
    )
    world.emu.admin = False
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok, result["m1"].error
    assert direct_grants(world, job_id) == {("user_name", "lead@example.com"): "IS_OWNER"}


def test_a_non_admin_owner_change_is_one_line_in_the_outcome(tmp_path, jobs_emulator, make_workspace_client):
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml())
    converge(world)
    job_id = only_job(world)
    jobs_emulator.admin = False
    world.edit_yaml(
        "    sources:",
        "    permissions:\n      - {user_name: lead@example.com, permission_level: IS_OWNER}\n    sources:",
    )
    result = world.orchestrator().run_all_modules()
    error = result["m1"].error or ""
    assert not result.ok and "\n" not in error
    assert error.startswith(
        f"changing the owner of job {job_id} to lead@example.com needs a workspace admin; "
        f"the job stays owned by {ME}"
    )
    assert direct_grants(world, job_id) == {("user_name", ME): "IS_OWNER"}

    jobs_emulator.admin = True  # an admin runs it: the declared owner is applied
    assert world.orchestrator().run_all_modules().ok
    assert direct_grants(world, job_id) == {("user_name", "lead@example.com"): "IS_OWNER"}


def test_a_module_with_21_tags_is_paused_when_removed(tmp_path, jobs_emulator, make_workspace_client):
    tags = "    tags:\n" + "".join(f"      t{i}: v\n" for i in range(21))
    world = World(
        tmp_path, jobs_emulator, make_workspace_client, module_yaml(tags) + module_yaml(name="m2")[9:]
    )
    converge(world)
    job_id = world.tracked()["m1"]["job_id"]
    assert len(world.settings(job_id)["tags"]) == 24
    world.yaml.write_text(module_yaml(name="m2"))
    world.sync()
    result = world.orchestrator(prune="pause").run_all_modules()
    assert result.ok and result["m1"].action == "pause"
    assert world.settings(job_id)["schedule"]["pause_status"] == "PAUSED"
    assert (
        world.settings(job_id)["tags"]["ljm_removed"] == "true" and len(world.settings(job_id)["tags"]) == 25
    )


def test_a_job_tagged_to_the_limit_before_the_budget_is_still_paused(
    tmp_path, jobs_emulator, make_workspace_client
):
    """A job made when metadata could set 22 tags holds 25: paused without ljm_removed."""
    world = World(tmp_path, jobs_emulator, make_workspace_client, module_yaml() + module_yaml(name="m2")[9:])
    converge(world)
    job_id = world.tracked()["m1"]["job_id"]
    world.emu.edit_job(job_id, lambda s: s["tags"].update({f"t{i}": "v" for i in range(22)}))
    world.yaml.write_text(module_yaml(name="m2"))
    world.sync()
    result = world.orchestrator(prune="pause").run_all_modules()
    assert result.ok and result["m1"].action == "pause"
    assert world.settings(job_id)["schedule"]["pause_status"] == "PAUSED"
    assert "ljm_removed" not in world.settings(job_id)["tags"]
