"""The one-owner ACL rules, pure: owner kept, identity promoted or added, drift without noise."""

from __future__ import annotations

from dataclasses import replace

from lakeflow_job_meta.metadata.models import canonical_json
from lakeflow_job_meta.planning.acl import RunIdentity, acl_drift, effective_acl, needs_identity, with_owner
from lakeflow_job_meta.planning.compiler import compile_module
from tests.planning.builders import CTX, mod, src

ALICE = RunIdentity.from_user_name("alice@example.com")
SP = RunIdentity.from_user_name("9f8e7d6c-0000-1111-2222-333344445555")
VIEW = {"group_name": "analysts", "permission_level": "CAN_VIEW"}


def test_identity_kind_follows_the_cli_rule():
    assert RunIdentity("user_name", "alice@example.com") == ALICE
    assert SP.kind == "service_principal_name"
    assert RunIdentity.from_user_name("not-a-uuid-0000").kind == "user_name"


def test_with_owner_keeps_adds_or_promotes():
    declared = [VIEW, {"user_name": "lead@example.com", "permission_level": "IS_OWNER"}]
    assert with_owner(declared, ALICE) == declared
    assert with_owner([VIEW], ALICE) == [
        VIEW,
        {"user_name": "alice@example.com", "permission_level": "IS_OWNER"},
    ]
    own = {"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"}
    assert with_owner([own, VIEW], ALICE) == [{**own, "permission_level": "IS_OWNER"}, VIEW]
    # a user and a service principal with the same text are different principals
    assert with_owner([VIEW], SP)[-1] == {
        "service_principal_name": "9f8e7d6c-0000-1111-2222-333344445555",
        "permission_level": "IS_OWNER",
    }
    assert with_owner([VIEW], None) == [VIEW]
    run_as = {"user_name": "etl@example.com"}
    # the identity running the tool stands in for a missing run_as and a missing owner; every
    # ACL is sent (an empty one as owner-only), so only a declared owner makes it unneeded
    assert needs_identity({"run_as": run_as, "permissions": [VIEW]})
    assert needs_identity({"run_as": run_as}) and needs_identity({"run_as": run_as, "permissions": []})
    assert needs_identity({"permissions": declared})
    assert not needs_identity({"run_as": run_as, "permissions": declared})


def _live(*entries: tuple[str, str, str]) -> list[dict]:
    return [
        {kind: name, "all_permissions": [{"permission_level": level, "inherited": False}]}
        for kind, name, level in entries
    ]


def test_the_live_owner_is_kept_unless_the_metadata_names_one():
    compiled = with_owner([VIEW], ALICE)
    live = _live(("user_name", "bob@example.com", "IS_OWNER"), ("group_name", "analysts", "CAN_VIEW"))
    bob = {"user_name": "bob@example.com", "permission_level": "IS_OWNER"}
    assert effective_acl(compiled, [VIEW], live) == [VIEW, bob]
    assert acl_drift(effective_acl(compiled, [VIEW], live), live) == []
    # no live owner (or no live ACL): the compiled owner, the identity running the tool
    assert effective_acl(compiled, [VIEW], None) == compiled
    # a declared owner is sent as declared, whoever owns the job now
    lead = {"user_name": "lead@example.com", "permission_level": "IS_OWNER"}
    assert effective_acl([VIEW, lead], [VIEW, lead], live) == [VIEW, lead]


def test_acl_drift_ignores_inherited_entries_and_reports_direct_changes():
    sent = with_owner([VIEW], ALICE)
    live = [
        {
            "user_name": "alice@example.com",
            "all_permissions": [{"permission_level": "IS_OWNER", "inherited": False}],
        },
        {"group_name": "analysts", "all_permissions": [{"permission_level": "CAN_VIEW", "inherited": False}]},
        {
            "group_name": "admins",
            "all_permissions": [
                {"permission_level": "CAN_MANAGE", "inherited": True, "inherited_from_object": ["/jobs/"]}
            ],
        },
    ]
    assert acl_drift(sent, live) == []
    live[1]["all_permissions"][0]["permission_level"] = "CAN_MANAGE"
    live.append(
        {
            "user_name": "eve@example.com",
            "all_permissions": [{"permission_level": "CAN_VIEW", "inherited": False}],
        }
    )
    assert acl_drift(sent, live) == [
        "permissions group_name=analysts: CAN_MANAGE -> CAN_VIEW",
        "permissions user_name=eve@example.com: CAN_VIEW -> none",
    ]


def test_a_live_reply_naming_no_owner_is_not_owner_drift():
    """The CLI's fake workspace answers a never-set ACL with no entries; the service always names
    one owner, so such a reply says nothing about ownership, while grants are still compared."""
    sent = with_owner([VIEW], ALICE)
    assert acl_drift(sent, []) == ["permissions group_name=analysts: none -> CAN_VIEW"]
    assert acl_drift(with_owner([], ALICE), []) == []


def test_the_spec_hash_ignores_who_runs_the_tool_as_owner():
    module = mod("m", src("a"), permissions=[VIEW], run_as={"user_name": "etl@example.com"})
    as_alice = compile_module(module, replace(CTX, run_identity=ALICE)).job
    as_sp = compile_module(module, replace(CTX, run_identity=SP)).job
    offline = compile_module(module, CTX).job
    assert as_alice is not None and as_sp is not None and offline is not None
    assert as_alice.spec_hash == as_sp.spec_hash == offline.spec_hash
    owner = {"user_name": "alice@example.com", "permission_level": "IS_OWNER"}
    assert as_alice.permissions == sorted([VIEW, owner], key=canonical_json)
    assert offline.permissions == [VIEW]


def test_without_run_as_the_job_runs_as_the_identity_running_the_tool_explicitly():
    """``jobs/reset`` without ``run_as`` keeps the previous identity, so the default is sent."""
    module = mod("m", src("a"))
    as_alice = compile_module(module, replace(CTX, run_identity=ALICE)).job
    as_sp = compile_module(module, replace(CTX, run_identity=SP)).job
    offline = compile_module(module, CTX).job  # the bundle target: the deploying CLI's identity
    assert as_alice is not None and as_sp is not None and offline is not None
    assert as_alice.settings["run_as"] == {"user_name": "alice@example.com"}
    assert as_sp.settings["run_as"] == {"service_principal_name": SP.name}
    assert "run_as" not in offline.settings and offline.permissions is None
    # a job whose run identity differs is a different job: the next apply resets it
    assert as_alice.spec_hash != as_sp.spec_hash
    # no declared grants: an owner-only ACL, so grants the metadata dropped are revoked
    assert as_alice.permissions == [{"user_name": "alice@example.com", "permission_level": "IS_OWNER"}]


def test_validation_refuses_a_group_owner_and_two_owners():
    """The rule lives in metadata/validation.py only; the compiler assumes valid input."""
    from lakeflow_job_meta.metadata.loader import validate_all
    from lakeflow_job_meta.metadata.models import ModuleSettings

    def found(permissions):
        module = mod("m", src("a"), permissions=permissions)
        issues = validate_all(list(module.sources), [ModuleSettings("m", dict(module.settings))])
        return [i.message for i in issues]

    assert found([{"group_name": "g", "permission_level": "IS_OWNER"}]) == [
        "a group cannot own a job: make a user_name or service_principal_name the IS_OWNER"
    ]
    two = [
        {"user_name": "a@example.com", "permission_level": "IS_OWNER"},
        {"user_name": "b@example.com", "permission_level": "IS_OWNER"},
    ]
    assert found(two) == ["a job has exactly one IS_OWNER (also permissions[0])"]
