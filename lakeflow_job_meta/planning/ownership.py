"""Ownership tags: how the tool recognises the jobs it created.

The Jobs API cannot filter by tag and users can create jobs with any name, so every job we create
carries three tags and we only ever modify or delete a job whose tags say it is ours, for this
control table and this module. Job tags are copied onto the job's clusters, where cloud label
rules apply (GCP: lowercase, at most 63 characters, ``[a-z0-9_-]``), so keys and values are kept
label-safe; a name that is not is replaced by a readable prefix plus a short hash, which stays
deterministic and keeps two names that differ only in case or punctuation apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.tags import (
    MAX_USER_TAGS,
    MODULE_TAG,
    OWNERSHIP_TAG_KEYS,
    TABLE_TAG,
    TOOL_TAG,
)
from lakeflow_job_meta.planning.canonical import scalar_text

TOOL_TAG_VALUE = "managed"
OWNER_TAG_KEYS: tuple[str, ...] = OWNERSHIP_TAG_KEYS
REMOVED_TAG_VALUE = "true"
MAX_LABEL_LENGTH = 63
_HASH_CHARS = 8
# GCP label rule (databricks/cli libs/tags/gcp.go) in lowercase: start and end alphanumeric.
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
# Earlier versions only required this, so a name like ``sales_`` was its own label; jobs
# tagged so are still recognised (and get the compliant tag at their next reset).
_LEGACY_LABEL_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
_INVALID_LABEL_CHARS = re.compile(r"[^a-z0-9_-]+")


def label_value(name: str) -> str:
    """``name`` if it already is a valid cloud label, else a sanitized prefix + ``-`` + short hash.

    Any rewrite adds the hash, so ``Sales`` and ``sales`` never share a label.
    """
    if _LABEL_RE.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    prefix = _INVALID_LABEL_CHARS.sub("_", name.lower()).strip("_-")
    prefix = prefix[: MAX_LABEL_LENGTH - _HASH_CHARS - 1]
    return f"{prefix}-{digest}" if prefix else digest


def is_valid_label(text: str) -> bool:
    """Whether ``text`` passes the strictest cloud label rule (what ``label_value`` produces)."""
    return bool(_LABEL_RE.match(text))


def owner_tags(control_table_id: str, module_name: str) -> dict[str, str]:
    """The tags every job created for ``module_name`` of this control table carries."""
    return {
        TOOL_TAG: TOOL_TAG_VALUE,
        TABLE_TAG: label_value(control_table_id),
        MODULE_TAG: label_value(module_name),
    }


def is_managed_by_tool(tags: Mapping[str, str] | None) -> bool:
    """Whether a job was created by this tool (for any control table)."""
    return tags is not None and tags.get(TOOL_TAG) == TOOL_TAG_VALUE


def is_owned_by_us(tags: Mapping[str, str] | None, control_table_id: str, module_name: str) -> bool:
    """Whether a job belongs to exactly this control table and module, so we may change it."""
    if not tags:
        return False
    expected = owner_tags(control_table_id, module_name)
    legacy = {TABLE_TAG: control_table_id, MODULE_TAG: module_name}
    return all(
        tags.get(key) == value
        or (key in legacy and tags.get(key) == legacy[key] and bool(_LEGACY_LABEL_RE.match(legacy[key])))
        for key, value in expected.items()
    )


def describe_owner(tags: Mapping[str, str] | None) -> str:
    """Who a job belongs to, for a conflict message: ``no owner`` for a hand-made job, else the
    control table and module its ownership tags name."""
    if not is_managed_by_tool(tags):
        return "no owner"
    assert tags is not None
    return f"control table {tags.get(TABLE_TAG, '?')} module {tags.get(MODULE_TAG, '?')}"


def merge_tags(
    user_tags: Mapping[str, object] | None,
    control_table_id: str,
    module_name: str,
    *,
    location: str,
) -> tuple[dict[str, str], list[MetadataIssue]]:
    """User tags from the module settings plus our owner tags.

    A user tag may not replace an owner tag (it would hide the job from us or claim someone
    else's), and the service rejects more than 25 tags, counting every tag the tool may add
    (``MAX_USER_TAGS``): both are issues, not silent fixes.
    """
    issues: list[MetadataIssue] = []
    ours = owner_tags(control_table_id, module_name)
    merged: dict[str, str] = {}
    for key, value in (user_tags or {}).items():
        key = str(key)
        if key in ours:
            issues.append(
                MetadataIssue(location, f"tags.{key}", "is reserved for ownership tags", module=module_name)
            )
            continue
        merged[key] = scalar_text(value)
    if len(merged) > MAX_USER_TAGS:
        issues.append(
            MetadataIssue(
                location,
                "tags",
                f"{len(merged)} tags; at most {MAX_USER_TAGS}, as a job holds 25 and the tool may add 4",
                module=module_name,
            )
        )
    merged.update(ours)
    return dict(sorted(merged.items())), issues
