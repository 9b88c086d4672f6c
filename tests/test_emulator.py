"""Tests of the Jobs API emulator, driven through the real databricks-sdk WorkspaceClient."""

from __future__ import annotations

import base64
import io
import re
import socket

import pytest
import requests
from databricks.sdk.errors import (
    InternalError,
    InvalidParameterValue,
    InvalidState,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    TooManyRequests,
    Unauthenticated,
)
from databricks.sdk.service import iam, jobs
from databricks.sdk.service.compute import ClusterSpec
from databricks.sdk.service.workspace import ImportFormat, Language, ObjectType

from tests.emulator import ApiError, Fault, JobsEmulator
from tests.emulator import server as emulator_server
from tests.emulator.faults import FaultSet
from tests.helpers.waiting import SAFETY_NET_SECONDS
from tests.reliability.helpers import instant_client
from tests.sdk_behaviour import PROBES_HOST_METADATA, RESENDS_POST_AFTER_READ_TIMEOUT

pytestmark = pytest.mark.emulator


def nb_task(key: str, *deps: str, **extra) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        notebook_task=jobs.NotebookTask(notebook_path=f"/Shared/{key}"),
        depends_on=[jobs.TaskDependency(task_key=d) for d in deps] or None,
        **extra,
    )


def raw_get(w, job_id: int, page_token: str | None = None) -> dict:
    q = {"job_id": job_id, **({"page_token": page_token} if page_token else {})}
    return w.api_client.do("GET", "/api/2.2/jobs/get", query=q)


def raw_create(w, settings: dict) -> dict:
    return w.api_client.do("POST", "/api/2.2/jobs/create", body=settings)


# ---------------------------------------------------------------------------------------
# basics
# ---------------------------------------------------------------------------------------
def test_client_creation_waits_for_nothing_and_probes_host_metadata(
    jobs_emulator, make_workspace_client, sdk_clock
):
    w = make_workspace_client()
    assert sdk_clock.sleeps == []  # nothing retried while the client was built
    # Newer SDK releases probe the host's metadata once; the floor of the range does not.
    assert jobs_emulator.count(".well-known/databricks-config") == (1 if PROBES_HOST_METADATA else 0)
    assert w.current_user.me().user_name == jobs_emulator.user_name


def _whole_reply(s: socket.socket) -> bytes:
    """Headers and body of one HTTP reply: the emulator may send them in separate packets."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        body += s.recv(65536)
    return data


def test_ephemeral_ports_and_clean_stop(monkeypatch):
    # No idle timeout: only stop() itself can close the idle connection below.
    monkeypatch.setattr(emulator_server._Handler, "timeout", None)
    with JobsEmulator() as a, JobsEmulator() as b:
        assert a.port != b.port and a.url.startswith("http://127.0.0.1:")
        # an idle keep-alive connection must not block stop()
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(b"GET /api/2.2/jobs/list HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n")
        s.settimeout(SAFETY_NET_SECONDS)
        assert b"200 OK" in _whole_reply(s)
        a.stop()
        # stop() closed the idle connection itself and its serving thread is gone.
        assert s.recv(65536) == b""
        assert a._thread is not None and not a._thread.is_alive()
        s.close()


def test_requests_without_bearer_token_get_401(jobs_emulator, make_workspace_client):
    r = requests.get(f"{jobs_emulator.url}/api/2.2/jobs/list", timeout=5)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    r = requests.get(
        f"{jobs_emulator.url}/api/2.2/jobs/list", headers={"Authorization": "Bearer x"}, timeout=5
    )
    assert r.status_code == 200
    jobs_emulator.token = "right"
    with pytest.raises(Unauthenticated):
        list(make_workspace_client(token="wrong").jobs.list())


def test_unknown_endpoints_and_old_jobs_version_are_not_served(workspace_client):
    with pytest.raises(NotFound):
        workspace_client.api_client.do("GET", "/api/2.1/jobs/list")
    with pytest.raises(NotFound):
        workspace_client.api_client.do("GET", "/api/2.2/jobs/nothing")


# ---------------------------------------------------------------------------------------
# jobs round trips and server defaults
# ---------------------------------------------------------------------------------------
def test_create_get_fills_server_defaults(workspace_client, jobs_emulator):
    w = workspace_client
    created = w.jobs.create(
        name="defaults",
        tasks=[
            nb_task("c", "b", "a"),
            nb_task("a"),
            nb_task(
                "b",
                new_cluster=ClusterSpec(
                    spark_version="15.4.x-scala2.12", num_workers=1, apply_policy_default_values=True
                ),
            ),
        ],
        job_clusters=[jobs.JobCluster(job_cluster_key="jc", new_cluster=ClusterSpec(spark_version="15.4"))],
        tags={"team": "x"},
    )
    job = raw_get(w, created.job_id)
    assert job["job_id"] == created.job_id
    assert job["creator_user_name"] == jobs_emulator.user_name
    assert job["run_as_user_name"] == jobs_emulator.user_name
    assert isinstance(job["created_time"], int)
    assert "next_page_token" not in job and "has_more" not in job
    s = job["settings"]
    assert s["email_notifications"] == {} and s["webhook_notifications"] == {}
    assert s["timeout_seconds"] == 0 and s["max_concurrent_runs"] == 1 and s["format"] == "MULTI_TASK"
    assert s["queue"] == {"enabled": True} and s["performance_target"] == "PERFORMANCE_OPTIMIZED"
    assert "run_as" not in s
    by_key = {t["task_key"]: t for t in s["tasks"]}
    assert [t["task_key"] for t in s["tasks"]] == ["c", "a", "b"]  # task order is kept
    assert [d["task_key"] for d in by_key["c"]["depends_on"]] == ["a", "b"]  # sorted
    for t in s["tasks"]:
        assert t["email_notifications"] == {} and t["run_if"] == "ALL_SUCCESS" and t["timeout_seconds"] == 0
        assert t["notebook_task"]["source"] == "WORKSPACE"
        assert t["disabled"] is False and t["webhook_notifications"] == {}
    nc = by_key["b"]["new_cluster"]
    assert nc["aws_attributes"] == {"availability": "SPOT_WITH_FALLBACK", "zone_id": "us-east-1c"}
    assert nc["data_security_mode"] == "SINGLE_USER" and nc["enable_elastic_disk"] is False
    assert "apply_policy_default_values" not in nc
    assert nc["single_user_name"] == jobs_emulator.user_name and nc["enable_local_disk_encryption"] is False
    assert s["job_clusters"][0]["new_cluster"]["data_security_mode"] == "SINGLE_USER"
    # the SDK view agrees, and the snapshot helper returns the same thing
    assert w.jobs.get(created.job_id).settings.tasks[0].run_if == jobs.RunIf.ALL_SUCCESS
    assert jobs_emulator.jobs()[created.job_id] == job


def test_git_source_makes_notebook_source_git_and_name_is_optional(workspace_client):
    w = workspace_client
    jid = w.jobs.create(
        git_source=jobs.GitSource(git_url="https://github.com/x/y", git_provider=jobs.GitProvider.GIT_HUB),
        tasks=[nb_task("a")],
    ).job_id
    s = raw_get(w, jid)["settings"]
    assert s["tasks"][0]["notebook_task"]["source"] == "GIT"
    assert "name" not in s  # no source says the service names a job; the product always sends one


def test_explicit_values_are_kept(workspace_client):
    w = workspace_client
    jid = w.jobs.create(
        name="explicit",
        max_concurrent_runs=5,
        timeout_seconds=60,
        tasks=[nb_task("a", run_if=jobs.RunIf.ALL_DONE, timeout_seconds=10)],
    ).job_id
    s = raw_get(w, jid)["settings"]
    assert (s["max_concurrent_runs"], s["timeout_seconds"]) == (5, 60)
    assert (s["tasks"][0]["run_if"], s["tasks"][0]["timeout_seconds"]) == ("ALL_DONE", 10)


def test_reset_replaces_everything_but_keeps_run_as(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(
        name="r", tags={"a": "1"}, run_as=jobs.JobRunAs(service_principal_name="sp-1"), tasks=[nb_task("a")]
    ).job_id
    w.jobs.reset(jid, jobs.JobSettings(name="r2", tasks=[nb_task("b")]))
    s = raw_get(w, jid)["settings"]
    assert s["name"] == "r2" and "tags" not in s
    assert [t["task_key"] for t in s["tasks"]] == ["b"]
    assert s["run_as"] == {"service_principal_name": "sp-1"}
    assert jobs_emulator.writes() == 2 and jobs_emulator.writes("jobs/reset") == 1


def test_queueing_is_on_unless_the_request_turns_it_off(workspace_client):
    """Jobs API 2.2: create and reset without ``queue`` store it enabled; an explicit off is kept."""
    w = workspace_client
    jid = w.jobs.create(name="q", tasks=[nb_task("a")]).job_id
    assert raw_get(w, jid)["settings"]["queue"] == {"enabled": True}
    w.jobs.reset(
        jid, jobs.JobSettings(name="q", tasks=[nb_task("a")], queue=jobs.QueueSettings(enabled=False))
    )
    assert raw_get(w, jid)["settings"]["queue"] == {"enabled": False}
    w.jobs.reset(jid, jobs.JobSettings(name="q", tasks=[nb_task("a")]))
    assert raw_get(w, jid)["settings"]["queue"] == {"enabled": True}


def test_update_merges_arrays_by_key_and_removes_fields(workspace_client):
    w = workspace_client
    jid = w.jobs.create(
        name="u", tags={"a": "1"}, description="d", tasks=[nb_task("a"), nb_task("b", "a")]
    ).job_id
    w.jobs.update(
        jid,
        new_settings=jobs.JobSettings(
            tasks=[nb_task("b", timeout_seconds=5), nb_task("c", "b")], max_concurrent_runs=3
        ),
        fields_to_remove=["description", "tasks/a"],
    )
    s = raw_get(w, jid)["settings"]
    assert [t["task_key"] for t in s["tasks"]] == ["b", "c"]
    assert s["tasks"][0]["timeout_seconds"] == 5 and "depends_on" not in s["tasks"][0]  # replaced whole
    assert s["max_concurrent_runs"] == 3 and s["tags"] == {"a": "1"} and "description" not in s


def test_update_merges_parameters_by_name(workspace_client):
    """SDK ``JobsAPI.update`` docstring: arrays in ``new_settings`` are merged by their key."""
    w = workspace_client
    p = jobs.JobParameterDefinition
    jid = w.jobs.create(
        name="u", tasks=[nb_task("a")], parameters=[p(name="x", default="1"), p(name="y", default="2")]
    ).job_id
    w.jobs.update(
        jid, new_settings=jobs.JobSettings(parameters=[p(name="y", default="3"), p(name="z", default="4")])
    )
    params = raw_get(w, jid)["settings"]["parameters"]
    assert params == [
        {"name": "x", "default": "1"},
        {"name": "y", "default": "3"},
        {"name": "z", "default": "4"},
    ]


def test_update_that_breaks_the_graph_is_rejected_and_changes_nothing(workspace_client):
    w = workspace_client
    jid = w.jobs.create(name="g", tasks=[nb_task("a"), nb_task("b", "a")]).job_id
    before = raw_get(w, jid)
    with pytest.raises(InvalidParameterValue, match="cycle"):
        w.jobs.update(jid, new_settings=jobs.JobSettings(tasks=[nb_task("a", "b")]))
    with pytest.raises(InvalidParameterValue):
        w.jobs.update(jid, fields_to_remove=["tasks/a"])  # b depends on a
    assert raw_get(w, jid) == before


def test_unknown_job_ids(workspace_client):
    w = workspace_client
    with pytest.raises(ResourceDoesNotExist, match=r"Job 424242 does not exist\."):
        w.jobs.get(424242)
    with pytest.raises(NotFound):
        w.jobs.delete(424242)
    with pytest.raises(PermissionDenied):
        w.jobs.reset(424242, jobs.JobSettings(name="x"))
    with pytest.raises(PermissionDenied):
        w.jobs.update(424242, new_settings=jobs.JobSettings(name="x"))
    with pytest.raises(NotFound):
        w.jobs.run_now(424242)


def test_delete(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(name="d").job_id
    w.jobs.delete(jid)
    assert jobs_emulator.jobs() == {}
    with pytest.raises(NotFound):
        w.jobs.get(jid)


# ---------------------------------------------------------------------------------------
# pagination
# ---------------------------------------------------------------------------------------
def test_get_pages_250_tasks_and_the_sdk_merges_them(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(
        name="big",
        tasks=[nb_task(f"t{i:03d}") for i in range(250)],
        job_clusters=[jobs.JobCluster(job_cluster_key="jc", new_cluster=ClusterSpec(spark_version="15.4"))],
        parameters=[jobs.JobParameterDefinition(name="p", default="1")],
    ).job_id
    p1 = raw_get(w, jid)
    assert len(p1["settings"]["tasks"]) == 100 and p1["has_more"] is True
    assert p1["settings"]["job_clusters"] and p1["settings"]["parameters"]
    p2 = raw_get(w, jid, p1["next_page_token"])
    assert p2["settings"]["tasks"][0]["task_key"] == "t100"
    for key in ("job_clusters", "parameters", "environments"):
        assert key not in p2["settings"]
    p3 = raw_get(w, jid, p2["next_page_token"])
    assert len(p3["settings"]["tasks"]) == 50 and "next_page_token" not in p3
    with pytest.raises(InvalidParameterValue):
        raw_get(w, jid, "garbage")

    jobs_emulator.reset_counters()
    job = w.jobs.get(jid)
    assert [t.task_key for t in job.settings.tasks] == [f"t{i:03d}" for i in range(250)]
    assert len(job.settings.job_clusters) == 1 and len(job.settings.parameters) == 1
    assert jobs_emulator.count("jobs/get") == 3


def test_list_filters_by_exact_name_case_insensitively_and_pages(workspace_client, jobs_emulator):
    w = workspace_client
    for name in ["Alpha", "alpha", "alphabet", "beta", "gamma", "delta"]:
        w.jobs.create(name=name, tasks=[nb_task("a")])
    assert sorted(j.settings.name for j in w.jobs.list(name="ALPHA")) == ["Alpha", "alpha"]
    assert list(w.jobs.list(name="nope")) == []
    jobs_emulator.reset_counters()
    listed = list(w.jobs.list(limit=2))
    assert len(listed) == 6 and jobs_emulator.count("jobs/list") == 3
    assert not any(j.settings.tasks for j in listed)  # no expand_tasks: no tasks
    with pytest.raises(InvalidParameterValue):
        list(w.jobs.list(limit=101))


def test_list_expand_tasks_caps_at_100_and_the_sdk_fetches_the_rest(workspace_client, jobs_emulator):
    w = workspace_client
    big = w.jobs.create(name="big", tasks=[nb_task(f"t{i}") for i in range(150)]).job_id
    w.jobs.create(name="small", tasks=[nb_task("a")])
    raw = w.api_client.do("GET", "/api/2.2/jobs/list", query={"expand_tasks": "true"})
    by_id = {j["job_id"]: j for j in raw["jobs"]}
    assert len(by_id[big]["settings"]["tasks"]) == 100 and by_id[big]["has_more"] is True
    assert raw["has_more"] is False and "next_page_token" not in raw
    full = {j.job_id: j for j in w.jobs.list(expand_tasks=True)}
    assert len(full[big].settings.tasks) == 150


# ---------------------------------------------------------------------------------------
# strictness
# ---------------------------------------------------------------------------------------
def _t(key: str, **kw) -> dict:
    return {"task_key": key, "notebook_task": {"notebook_path": "/x"}, **kw}


BAD_SETTINGS = {
    "duplicate task keys": {"tasks": [_t("a"), _t("a")]},
    "unknown dependency": {"tasks": [_t("a", depends_on=[{"task_key": "zz"}])]},
    "cycle": {"tasks": [_t("a", depends_on=[{"task_key": "b"}]), _t("b", depends_on=[{"task_key": "a"}])]},
    "self dependency": {"tasks": [_t("a", depends_on=[{"task_key": "a"}])]},
    "sql without warehouse": {"tasks": [{"task_key": "s", "sql_task": {"query": {"query_id": "q"}}}]},
    "1001 tasks": {"tasks": [_t(f"t{i}") for i in range(1001)]},
    "26 tags": {"tags": {f"k{i}": "v" for i in range(26)}},
    "max_concurrent_runs 1001": {"max_concurrent_runs": 1001},
    "no task type": {"tasks": [{"task_key": "a"}]},
    "two task types": {"tasks": [_t("a", pipeline_task={"pipeline_id": "p"})]},
    "bad task key": {"tasks": [_t("a b")]},
    "long task key": {"tasks": [_t("k" * 101)]},
    "missing task key": {"tasks": [{"notebook_task": {"notebook_path": "/x"}}]},
    "unknown job cluster": {"tasks": [_t("a", job_cluster_key="nope")]},
    "bad run_if": {"tasks": [_t("a", run_if="SOMETIMES")]},
    "git without provider": {"git_source": {"git_url": "https://x"}},
    "long name": {"name": "n" * 4097},
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_invalid_settings_are_rejected_like_the_service(workspace_client, jobs_emulator, case):
    with pytest.raises(InvalidParameterValue):
        raw_create(workspace_client, {"name": "bad", **BAD_SETTINGS[case]})
    assert jobs_emulator.jobs() == {} and jobs_emulator.writes() == 0


def test_reset_is_validated_too(workspace_client):
    w = workspace_client
    jid = w.jobs.create(name="v").job_id
    with pytest.raises(InvalidParameterValue):
        w.jobs.reset(jid, jobs.JobSettings(tasks=[nb_task("a"), nb_task("a")]))


# ---------------------------------------------------------------------------------------
# runs and permissions
# ---------------------------------------------------------------------------------------
def test_run_now_and_runs_list(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(name="r", tasks=[nb_task("a")]).job_id
    other = w.jobs.create(name="o").job_id
    run1 = w.jobs.run_now(jid).run_id
    assert (
        w.jobs.run_now(jid, idempotency_token="tok").run_id
        == w.jobs.run_now(jid, idempotency_token="tok").run_id
    )
    jobs_emulator.add_run(other)
    assert len(list(w.jobs.list_runs(job_id=jid))) == 2
    jobs_emulator.finish_run(run1)
    active = list(w.jobs.list_runs(job_id=jid, active_only=True))
    assert [r.run_id for r in active] != [] and run1 not in [r.run_id for r in active]
    assert len(list(w.jobs.list_runs(active_only=True))) == 2
    assert w.jobs.get_run(run1).state.result_state == jobs.RunResultState.SUCCESS


def test_job_permissions(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(
        name="p",
        access_control_list=[
            jobs.JobAccessControlRequest(group_name="g1", permission_level=jobs.JobPermissionLevel.CAN_VIEW)
        ],
    ).job_id
    perms = w.jobs.get_permissions(str(jid))
    assert perms.object_id == f"/jobs/{jid}"
    levels = {
        (a.user_name or a.group_name): a.all_permissions[0].permission_level.value
        for a in perms.access_control_list
    }
    assert levels == {jobs_emulator.user_name: "IS_OWNER", "g1": "CAN_VIEW", "admins": "CAN_MANAGE"}
    owner = jobs.JobAccessControlRequest(
        user_name=jobs_emulator.user_name, permission_level=jobs.JobPermissionLevel.IS_OWNER
    )
    g2 = jobs.JobAccessControlRequest(
        group_name="g2", permission_level=jobs.JobPermissionLevel.CAN_MANAGE_RUN
    )
    w.jobs.set_permissions(str(jid), access_control_list=[g2, owner])
    names = {a.group_name or a.user_name for a in w.jobs.get_permissions(str(jid)).access_control_list}
    assert names == {jobs_emulator.user_name, "g2", "admins"}  # PUT replaces
    w.jobs.update_permissions(
        str(jid),
        access_control_list=[
            jobs.JobAccessControlRequest(group_name="g3", permission_level=jobs.JobPermissionLevel.CAN_VIEW)
        ],
    )
    names = {a.group_name or a.user_name for a in w.jobs.get_permissions(str(jid)).access_control_list}
    assert names == {jobs_emulator.user_name, "g2", "g3", "admins"}  # PATCH merges
    with pytest.raises(InvalidParameterValue):
        w.api_client.do(
            "PUT",
            f"/api/2.0/permissions/jobs/{jid}",
            body={"access_control_list": [{"group_name": "g", "permission_level": "CAN_EAT"}]},
        )
    with pytest.raises(NotFound):
        w.jobs.get_permissions("999999")
    assert isinstance(iam.ObjectPermissions.from_dict(jobs_emulator.permissions(jid)), iam.ObjectPermissions)


def _put_acl(w, job_id: int, acl: list[dict]) -> None:
    w.api_client.do("PUT", f"/api/2.0/permissions/jobs/{job_id}", body={"access_control_list": acl})


@pytest.mark.parametrize(
    "acl",
    [
        [{"group_name": "g", "permission_level": "CAN_VIEW"}],
        [
            {"user_name": "a@example.com", "permission_level": "IS_OWNER"},
            {
                "service_principal_name": "9f8e7d6c-0000-1111-2222-333344445555",
                "permission_level": "IS_OWNER",
            },
        ],
        # the same principal twice: the last level wins, so the owner is lost (CLI factcheck test)
        [
            {"user_name": "a@example.com", "permission_level": "IS_OWNER"},
            {"user_name": "a@example.com", "permission_level": "CAN_MANAGE"},
        ],
    ],
    ids=["no_owner", "two_owners", "owner_overridden"],
)
def test_permissions_put_needs_exactly_one_owner(workspace_client, jobs_emulator, acl):
    jid = workspace_client.jobs.create(name="p").job_id
    before = jobs_emulator.permissions(jid)
    with pytest.raises(InvalidParameterValue, match=r"^The job must have exactly one owner\.$"):
        _put_acl(workspace_client, jid, acl)
    assert jobs_emulator.permissions(jid) == before  # a rejected PUT changes nothing


def test_permissions_patch_result_needs_exactly_one_owner_and_no_group_owns(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(name="p").job_id
    with pytest.raises(InvalidParameterValue, match="exactly one owner"):
        w.api_client.do(
            "PATCH",
            f"/api/2.0/permissions/jobs/{jid}",
            body={"access_control_list": [{"user_name": "b@example.com", "permission_level": "IS_OWNER"}]},
        )
    with pytest.raises(InvalidParameterValue, match="Group admins2 cannot be the owner of a job"):
        _put_acl(w, jid, [{"group_name": "admins2", "permission_level": "IS_OWNER"}])
    with pytest.raises(InvalidParameterValue, match="cannot be the owner"):
        w.jobs.create(
            name="q",
            access_control_list=[
                jobs.JobAccessControlRequest(
                    group_name="g", permission_level=jobs.JobPermissionLevel.IS_OWNER
                )
            ],
        )
    assert jobs_emulator.job_ids("q") == []
    # moving ownership in one PUT is fine: exactly one owner in the result
    _put_acl(w, jid, [{"user_name": "b@example.com", "permission_level": "IS_OWNER"}])
    direct = [a for a in jobs_emulator.permissions(jid)["access_control_list"] if a.get("user_name")]
    assert direct == [
        {
            "user_name": "b@example.com",
            "display_name": "b@example.com",
            "all_permissions": [{"permission_level": "IS_OWNER", "inherited": False}],
        }
    ]


def test_current_user_me_is_configurable(make_workspace_client, jobs_emulator):
    w = make_workspace_client()
    assert w.current_user.me().user_name == jobs_emulator.user_name
    jobs_emulator.user_name = "9f8e7d6c-0000-1111-2222-333344445555"
    jobs_emulator.service_principal = True
    me = w.current_user.me()
    assert me.user_name == "9f8e7d6c-0000-1111-2222-333344445555"
    jid = w.jobs.create(name="by-sp").job_id
    owner = jobs_emulator.permissions(jid)["access_control_list"][0]
    assert owner["service_principal_name"] == "9f8e7d6c-0000-1111-2222-333344445555"


# ---------------------------------------------------------------------------------------
# out-of-band helpers
# ---------------------------------------------------------------------------------------
def test_foreign_jobs_and_ui_edits_are_visible_through_the_sdk(workspace_client, jobs_emulator):
    w = workspace_client
    foreign = jobs_emulator.add_job({"name": "theirs", "tasks": [_t("x")]})
    mine = w.jobs.create(name="mine", tasks=[nb_task("a")]).job_id
    jobs_emulator.edit_job(mine, {"description": "edited in the UI", "max_concurrent_runs": 4})
    jobs_emulator.edit_job(mine, lambda s: s["tasks"][0].update(timeout_seconds=99))
    got = w.jobs.get(mine).settings
    assert got.description == "edited in the UI" and got.max_concurrent_runs == 4
    assert got.tasks[0].timeout_seconds == 99
    assert w.jobs.get(foreign).creator_user_name != jobs_emulator.user_name
    assert jobs_emulator.writes() == 1 and jobs_emulator.count("jobs/create") == 1
    with pytest.raises(ApiError):
        jobs_emulator.edit_job(mine, {"tags": {f"k{i}": "v" for i in range(26)}})
    jobs_emulator.remove_job(foreign)
    assert jobs_emulator.job_ids() == [mine] and jobs_emulator.job_ids(name="MINE") == [mine]


def test_concurrent_creates_get_distinct_ids(workspace_client, jobs_emulator):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: workspace_client.jobs.create(name=f"j{i}").job_id, range(40)))
    assert len(set(ids)) == 40 and sorted(ids) == sorted(jobs_emulator.jobs())
    assert jobs_emulator.writes("jobs/create") == 40


def test_counters_and_request_log(workspace_client, jobs_emulator):
    w = workspace_client
    jid = w.jobs.create(name="c").job_id
    w.jobs.update(jid, new_settings=jobs.JobSettings(description="x"))
    w.jobs.get(jid)
    assert jobs_emulator.write_counts() == {"jobs/create": 1, "jobs/update": 1}
    assert jobs_emulator.request_counts()[("GET", "jobs/get")] == 1
    upd = next(r for r in jobs_emulator.requests if r.endpoint == "jobs/update")
    assert upd.body == {"job_id": jid, "new_settings": {"description": "x"}} and upd.status == 200
    jobs_emulator.reset_counters()
    assert jobs_emulator.writes() == 0 and jobs_emulator.requests == [] and len(jobs_emulator.jobs()) == 1


# ---------------------------------------------------------------------------------------
# workspace objects
# ---------------------------------------------------------------------------------------
def test_workspace_import_export_list_delete(workspace_client, jobs_emulator):
    ws = workspace_client.workspace
    base = "/Shared/lakeflow"
    with pytest.raises(ResourceDoesNotExist):
        ws.get_status(base)
    with pytest.raises(ResourceDoesNotExist, match="parent folder"):
        ws.import_(f"{base}/nb", content=base64.b64encode(b"x").decode(), language=Language.PYTHON)
    ws.mkdirs(f"{base}/sub")
    nb_src = b"# Databricks notebook source\nprint(1)\n"
    ws.import_(f"{base}/nb.py", content=base64.b64encode(nb_src).decode(), format=ImportFormat.AUTO)
    ws.import_(f"{base}/conf.yml", content=base64.b64encode(b"a: 1\n").decode(), format=ImportFormat.AUTO)
    ws.import_(f"{base}/q", content=base64.b64encode(b"select 1").decode(), language=Language.SQL)
    st = ws.get_status(f"{base}/nb")  # AUTO strips the extension of a notebook
    assert st.object_type == ObjectType.NOTEBOOK and st.language == Language.PYTHON
    assert ws.get_status(f"{base}/conf.yml").object_type == ObjectType.FILE
    assert ws.get_status(f"{base}/q").object_type == ObjectType.NOTEBOOK
    assert sorted(o.path for o in ws.list(base)) == [f"{base}/{n}" for n in ("conf.yml", "nb", "q", "sub")]
    assert list(ws.list(f"{base}/sub")) == []
    assert base64.b64decode(ws.export(f"{base}/nb").content) == nb_src
    assert ws.download(f"{base}/conf.yml").read() == b"a: 1\n"
    with pytest.raises(ResourceAlreadyExists):
        ws.import_(f"{base}/conf.yml", content=base64.b64encode(b"b").decode(), format=ImportFormat.AUTO)
    ws.import_(
        f"{base}/conf.yml", content=base64.b64encode(b"b").decode(), format=ImportFormat.AUTO, overwrite=True
    )
    assert jobs_emulator.workspace_objects()[f"{base}/conf.yml"]["content"] == b"b"
    with pytest.raises(InvalidParameterValue):
        ws.import_(f"{base}/x", content=base64.b64encode(b"b").decode(), format=ImportFormat.SOURCE)
    with pytest.raises(Exception, match="not empty"):
        ws.delete(base)
    ws.delete(base, recursive=True)
    assert not any(p.startswith(base) for p in jobs_emulator.workspace_objects())
    with pytest.raises(ResourceDoesNotExist):
        ws.delete(base)


def test_workspace_upload_is_multipart(workspace_client, jobs_emulator):
    ws = workspace_client.workspace
    ws.upload("/Shared/f.txt", io.BytesIO(b"hello"), format=ImportFormat.AUTO)
    ws.upload("/Shared/n.py", b"print(2)")  # SOURCE + language guessed from .py: a notebook
    assert ws.get_status("/Shared/f.txt").object_type == ObjectType.FILE
    assert ws.get_status("/Shared/n.py").object_type == ObjectType.NOTEBOOK
    ws.upload("/Shared/f.txt", b"again", format=ImportFormat.AUTO, overwrite=True)
    assert ws.download("/Shared/f.txt").read() == b"again"


# ---------------------------------------------------------------------------------------
# faults (each observed through one SDK call)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["429", "503"])
def test_throttling_is_retried_by_the_sdk(workspace_client, jobs_emulator, sdk_clock, kind):
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind=kind, times=2, retry_after=0))
    workspace_client.jobs.create(name="t")
    assert len(sdk_clock.sleeps) == 2 and all(0 <= s < 1 for s in sdk_clock.sleeps)  # Retry-After 0 + jitter
    assert jobs_emulator.count("jobs/create") == 3 and len(jobs_emulator.jobs()) == 1
    assert jobs_emulator.faults.fired_count(kind) == 2


def test_permanent_500_fails_at_once(workspace_client, jobs_emulator):
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="500"))
    with pytest.raises(InternalError):
        workspace_client.jobs.create(name="t")
    assert jobs_emulator.count("jobs/create") == 1 and jobs_emulator.jobs() == {}


def test_transient_500_is_retried(workspace_client, jobs_emulator, sdk_clock):
    jobs_emulator.faults.add(Fault(endpoint="jobs/get", kind="500_transient"))
    jid = jobs_emulator.add_job({"name": "x"})
    assert workspace_client.jobs.get(jid).job_id == jid
    (wait,) = sdk_clock.sleeps
    assert 1 <= wait < 2  # min(10, attempt=1) s + jitter
    assert jobs_emulator.count("jobs/get") == 2


def test_drop_before_commit_is_retried_without_duplicates(workspace_client, jobs_emulator, sdk_clock):
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="drop_before"))
    workspace_client.jobs.create(name="once")
    (wait,) = sdk_clock.sleeps
    assert 1 <= wait < 2
    assert jobs_emulator.count("jobs/create") == 2 and len(jobs_emulator.jobs()) == 1


def test_drop_after_commit_makes_one_create_call_land_twice(workspace_client, jobs_emulator):
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", method="POST", kind="lost_reply_after_commit"))
    returned = workspace_client.jobs.create(name="twice").job_id
    all_jobs = jobs_emulator.jobs()
    assert len(all_jobs) == 2 and returned == max(all_jobs)
    assert [j["settings"]["name"] for j in all_jobs.values()] == ["twice", "twice"]
    assert jobs_emulator.writes("jobs/create") == 2


def test_a_create_whose_reply_times_out_is_resent_only_by_sdks_before_0_167(jobs_emulator):
    """The create commits, the reply never comes, the client's read times out. Releases before
    0.167 resend the POST (it lands twice, the second id is returned); 0.167 raises the timeout
    (it landed once, the caller never learns its id). Either way the caller must look it up."""
    w = instant_client(jobs_emulator, http_timeout_seconds=1)
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="stall_after_commit", delay=60))
    if RESENDS_POST_AFTER_READ_TIMEOUT:
        returned = w.jobs.create(name="slow").job_id
        assert len(jobs_emulator.jobs()) == 2 and returned == max(jobs_emulator.jobs())
        assert jobs_emulator.count("jobs/create") == 2
    else:
        with pytest.raises(requests.Timeout):
            w.jobs.create(name="slow")
        assert [j["settings"]["name"] for j in jobs_emulator.jobs().values()] == ["slow"]
        assert jobs_emulator.count("jobs/create") == 1
    assert jobs_emulator.faults.fired_count("stall_after_commit") == 1


def test_the_job_rate_limit_is_a_400_invalid_state_the_sdk_does_not_retry(workspace_client, jobs_emulator):
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="job_rate_limit"))
    with pytest.raises(InvalidState, match="exceeding rate limit: 1000 job creations per 3600 seconds"):
        workspace_client.jobs.create(name="limited")
    assert jobs_emulator.count("jobs/create") == 1 and jobs_emulator.jobs() == {}
    (record,) = [r for r in jobs_emulator.requests if r.endpoint == "jobs/create"]
    assert (record.status, record.fault) == (400, "job_rate_limit")
    workspace_client.jobs.create(name="limited")  # the limit lifted: the same request succeeds
    assert len(jobs_emulator.jobs()) == 1


def test_slow_reply_within_the_timeout(workspace_client, jobs_emulator, sdk_clock):
    jobs_emulator.faults.add(Fault(endpoint="jobs/list", kind="slow", delay=0.3))
    list(workspace_client.jobs.list())
    assert jobs_emulator.faults.fired_count("slow") == 1
    assert jobs_emulator.count("jobs/list") == 1 and sdk_clock.sleeps == []  # answered, not retried


def test_faults_hit_only_the_chosen_endpoint_method_and_position(workspace_client, jobs_emulator):
    w = workspace_client
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="500", after=1))  # the 2nd create
    jobs_emulator.faults.add(Fault(endpoint="jobs/*", method="PUT", kind="500", times=None))  # no such call
    jid = w.jobs.create(name="first").job_id
    w.jobs.get(jid)
    with pytest.raises(InternalError):
        w.jobs.create(name="second")
    w.jobs.create(name="third")
    assert sorted(j["settings"]["name"] for j in jobs_emulator.jobs().values()) == ["first", "third"]
    assert len(jobs_emulator.faults.pending()) == 1


def test_random_faults_are_seeded_and_survivable(workspace_client, jobs_emulator):
    jid = jobs_emulator.add_job({"name": "x"})
    jobs_emulator.faults.random(rate=0.25, kinds=["429"], seed=6, endpoints="jobs/get")
    for _ in range(6):
        workspace_client.jobs.get(jid)
    fired = jobs_emulator.faults.fired_count("429")
    assert fired > 0 and jobs_emulator.count("jobs/get") == 6 + fired
    jobs_emulator.faults.clear()
    jobs_emulator.reset_counters()
    workspace_client.jobs.get(jid)
    assert jobs_emulator.count("jobs/get") == 1


def test_workspace_upload_is_not_retried_by_the_sdk(workspace_client, jobs_emulator):
    # workspace.upload sends multipart form data, which the SDK treats as a non-seekable
    # stream: it does not retry, so a 429 surfaces at once.
    jobs_emulator.faults.add(Fault(endpoint="workspace/import", kind="429"))
    with pytest.raises(TooManyRequests):
        workspace_client.workspace.upload("/Shared/u.txt", b"x", format=ImportFormat.AUTO)
    assert jobs_emulator.count("workspace/import") == 1


def test_rate_limit_throttles_beyond_the_limit_within_a_second_and_can_be_lifted():
    now = [100.0]
    faults = FaultSet(clock=lambda: now[0])
    faults.rate_limit(5, retry_after=2)
    picked = [faults.pick("GET", "jobs/get") for _ in range(8)]  # all within one second
    assert picked[:5] == [None] * 5
    assert all(f is not None and f.kind == "429" and f.retry_after == 2 for f in picked[5:])
    assert faults.fired_count("429") == 3
    now[0] += 1.0  # a second later the window has room again
    assert faults.pick("GET", "jobs/get") is None
    faults.rate_limit(None)
    assert all(faults.pick("GET", "jobs/get") is None for _ in range(8))
