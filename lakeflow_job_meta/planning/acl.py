"""Job access control lists with exactly one owner.

A Permissions API PUT on a job must name exactly one ``IS_OWNER`` (none or two: 400 "The job must
have exactly one owner."), and only a user or a service principal can own a job. Metadata may
leave the owner out, so the ACL the tool sends names the identity that runs the tool as owner,
promoting its own entry instead of listing it twice (the service would take the last level only).
That identity is read by the workspace adapter and handed in as data: this module stays pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lakeflow_job_meta.metadata.models import PRINCIPAL_KEYS, principal_of

OWNER_LEVEL = "IS_OWNER"
__all__ = [
    "PRINCIPAL_KEYS",
    "RunIdentity",
    "acl_drift",
    "effective_acl",
    "live_owner",
    "needs_identity",
    "owners",
    "principal_of",
    "with_owner",
]
OwnerKind = Literal["user_name", "service_principal_name"]


@dataclass(frozen=True)
class RunIdentity:
    """Who runs the tool, as an ACL principal: ``user_name`` or ``service_principal_name``."""

    kind: OwnerKind
    name: str

    @staticmethod
    def from_user_name(user_name: str) -> RunIdentity:
        """``current_user.me().user_name`` as a principal. A service principal's user name is its
        application id, a UUID; a person's is an e-mail address and never parses as one. This is
        the rule of the Databricks CLI (``libs/iamutil``); the SCIM schema cannot be used because
        the SDK's ``User`` drops the ServicePrincipal schema value."""
        return RunIdentity(
            "service_principal_name" if is_application_id(user_name) else "user_name", user_name
        )

    def entry(self, level: str) -> dict[str, str]:
        return {self.kind: self.name, "permission_level": level}


def is_application_id(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def owners(acl: Iterable[Any]) -> list[Mapping[str, Any]]:
    return [e for e in acl if isinstance(e, Mapping) and e.get("permission_level") == OWNER_LEVEL]


def needs_identity(settings: Mapping[str, Any]) -> bool:
    """Whether a module's settings (raw metadata, policy defaults applied) need the identity
    running the tool: as ``run_as`` when they name none, or as the owner of an ACL naming none
    (every managed job's ACL is sent, an empty one included)."""
    acl = settings.get("permissions")
    return not settings.get("run_as") or not (isinstance(acl, list) and owners(acl))


def with_owner(acl: Sequence[Mapping[str, str]], identity: RunIdentity | None) -> list[dict[str, str]]:
    """``acl`` with exactly one owner: the declared one, else ``identity`` (its own entry promoted
    to IS_OWNER, or one added). Without a declared owner or an identity the ACL is returned as is:
    the bundle target leaves the owner to the deploying CLI, which adds it the same way."""
    result = [dict(entry) for entry in acl]
    if owners(result) or identity is None:
        return result
    mine = (identity.kind, identity.name)
    for entry in result:
        if principal_of(entry) == mine:
            entry["permission_level"] = OWNER_LEVEL
            return result
    return [*result, identity.entry(OWNER_LEVEL)]


def live_owner(live_acl: Iterable[Mapping[str, Any]]) -> RunIdentity | None:
    """The user or service principal a Permissions API GET reply names as direct ``IS_OWNER``."""
    for entry in direct_entries(live_acl):
        principal = principal_of(entry)
        if entry["permission_level"] == OWNER_LEVEL and principal and principal[0] != "group_name":
            return RunIdentity(principal[0], principal[1])  # type: ignore[arg-type]
    return None


def effective_acl(
    compiled: Sequence[Mapping[str, str]],
    declared: Sequence[Mapping[str, str]],
    live_acl: Iterable[Mapping[str, Any]] | None,
) -> list[dict[str, str]]:
    """The ACL to send to a job whose live ACL is ``live_acl``. ``compiled`` is the compiled ACL
    (``declared`` with its own owner, else with the identity running the tool as owner). When
    ``declared`` names no owner, the job's live owner is kept instead: only a workspace admin may
    change a job's owner, so the tool never moves it unless the metadata names one."""
    owner = None if owners(declared) else live_owner(live_acl or [])
    if owner is None:
        return [dict(entry) for entry in compiled]
    return with_owner(declared, owner)


def direct_entries(live_acl: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The directly granted entries of a Permissions API GET reply (``all_permissions`` form),
    without inherited grants such as the workspace ``admins`` CAN_MANAGE."""
    found: list[dict[str, str]] = []
    for entry in live_acl:
        principal = principal_of(entry)
        if principal is None:
            continue
        for permission in entry.get("all_permissions") or []:
            if not permission.get("inherited"):
                found.append({principal[0]: principal[1], "permission_level": permission["permission_level"]})
    return found


def acl_drift(desired: Sequence[Mapping[str, str]], live_acl: Iterable[Mapping[str, Any]]) -> list[str]:
    """Differences between the ACL we send (owner included) and the live one, as readable lines.
    Inherited grants are ignored; the owner we added ourselves is part of ``desired``, so it is
    never reported, and neither is an owner when the live reply names none."""

    def keyed(entries: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
        return {p: str(e["permission_level"]) for e in entries if (p := principal_of(e)) is not None}

    want, have = keyed(desired), keyed(direct_entries(live_acl))
    if "IS_OWNER" not in have.values():
        # Every job on the service has exactly one owner, so a reply naming none (the CLI's fake
        # workspace answers so for a job whose ACL was never set) says nothing about ownership.
        want = {p: level for p, level in want.items() if level != "IS_OWNER"}
    lines = []
    for principal in sorted(set(want) | set(have)):
        if want.get(principal) != have.get(principal):
            who = f"{principal[0]}={principal[1]}"
            lines.append(f"permissions {who}: {have.get(principal, 'none')} -> {want.get(principal, 'none')}")
    return lines
