"""Job tags against the cloud tag rules Databricks applies.

Job tags are copied onto the job's clusters, where the cloud's own tag or label rules apply. The
rules are the Databricks CLI's (databricks/cli ``libs/tags``: ``aws.go``, ``azure.go``,
``gcp.go``, ``tag.go``), which it picks from the workspace host. Offline the cloud is often
unknown (``validate``, the bundle target, a local host), so ``cloud=None`` checks a tag against
all three rule sets: a tag that passes deploys on any cloud. In practice that is the GCP label
rule (at most 63 characters, letters, digits, ``-``, ``_``, ``.``, starting and ending with a
letter or digit), which the AWS and Azure rules both accept.

The Jobs API also holds at most 25 tags per job, and the tool may add four of its own (the three
ownership tags, and ``ljm_removed`` when it pauses a removed module's job), so a module may
declare at most 25 minus those four: ``MAX_USER_TAGS``, the one constant the schema and the
compiler check against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Cloud = Literal["aws", "azure", "gcp"]
CLOUDS: tuple[Cloud, ...] = ("gcp", "aws", "azure")  # strictest first: its message is the useful one
MAX_JOB_TAGS = 25
# The tags the tool adds to every job it creates (lakeflow_job_meta.planning.ownership).
TOOL_TAG = "lakeflow_job_meta"
TABLE_TAG = "ljm_table"
MODULE_TAG = "ljm_module"
OWNERSHIP_TAG_KEYS: tuple[str, ...] = (TOOL_TAG, TABLE_TAG, MODULE_TAG)
# Added when the prune policy pauses a removed module's job, so the UI shows why it is paused.
REMOVED_TAG = "ljm_removed"
# Every tag the tool may add to a job: the budget of user tags leaves room for all of them.
TOOL_TAG_KEYS: tuple[str, ...] = (*OWNERSHIP_TAG_KEYS, REMOVED_TAG)
MAX_USER_TAGS = MAX_JOB_TAGS - len(TOOL_TAG_KEYS)

# Host DNS zones per cloud, as the SDK's environments list them (databricks/sdk/environments.py).
_HOST_ZONES: tuple[tuple[str, Cloud], ...] = (
    (".azuredatabricks.net", "azure"),
    (".databricks.azure.cn", "azure"),
    (".databricks.azure.us", "azure"),
    (".gcp.databricks.com", "gcp"),
    (".cloud.databricks.com", "aws"),
    (".cloud.databricks.us", "aws"),
    (".dev.databricks.com", "aws"),
)


@dataclass(frozen=True)
class _Rules:
    name: str
    key_length: int
    key_pattern: re.Pattern[str]
    value_length: int
    value_pattern: re.Pattern[str]


# Go's \d and \w are ASCII-only and its '.' does not match a newline: re.ASCII and no DOTALL.
_RULES: dict[Cloud, _Rules] = {
    "aws": _Rules(
        "AWS",
        127,
        re.compile(r"[\d \w+\-=.:/@]*", re.ASCII),
        255,
        re.compile(r"[\d \w+\-=.:/@]*", re.ASCII),
    ),
    "azure": _Rules("Azure", 512, re.compile(r"[^<>*&%;\\/+?\n]*"), 256, re.compile(r"[^\n]*")),
    "gcp": _Rules(
        "GCP",
        63,
        re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"),
        63,
        re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"),
    ),
}


def cloud_for_host(host: str | None) -> Cloud | None:
    """The cloud of a workspace host, or None when the host does not say (a local or unknown
    host: the SDK would assume AWS, we assume nothing)."""
    name = (host or "").split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    for zone, cloud in _HOST_ZONES:
        if name.endswith(zone):
            return cloud
    return None


def _problem(text: str, what: str, limit: int, pattern: re.Pattern[str], rules: str) -> str | None:
    size = len(text.encode("utf-8"))  # the CLI counts bytes (Go len)
    if size > limit:
        return f"{what} is {size} bytes; {rules} allows at most {limit}"
    if any(ord(ch) > 0xFF for ch in text):
        return f"{what} has characters outside Latin-1, which {rules} does not allow"
    if not pattern.fullmatch(text):
        return f"{what} {text!r} does not match {rules}'s pattern {pattern.pattern}"
    return None


def _first_problem(text: str, part: Literal["key", "value"], cloud: Cloud | None) -> str | None:
    for name in (cloud,) if cloud else CLOUDS:
        rules = _RULES[name]
        limit, pattern = (
            (rules.key_length, rules.key_pattern)
            if part == "key"
            else (rules.value_length, rules.value_pattern)
        )
        problem = _problem(text, f"tag {part}", limit, pattern, rules.name)
        if problem:
            return problem
    return None


def key_problem(key: str, cloud: Cloud | None = None) -> str | None:
    """Why a tag key would be rejected on ``cloud`` (every cloud when None), or None."""
    return _first_problem(key, "key", cloud) if key else "tag key must not be empty"


def value_problem(value: str, cloud: Cloud | None = None) -> str | None:
    """Why a tag value would be rejected on ``cloud`` (every cloud when None), or None."""
    return _first_problem(value, "value", cloud)


def tag_issues(
    tags: Mapping[object, object], cloud: Cloud | None = None
) -> list[tuple[tuple[str, ...], str]]:
    """``(field path under tags, message)`` for every tag jobs/create or the job's clusters
    would reject. The count (``MAX_USER_TAGS``) and non-string values are the schema's to report."""
    found: list[tuple[tuple[str, ...], str]] = []
    for key, value in tags.items():
        key = str(key)
        if key in OWNERSHIP_TAG_KEYS:
            found.append(((key,), "is reserved for the tool's ownership tags"))
            continue
        if key == REMOVED_TAG:
            found.append(((key,), "is reserved for the tool: it marks the paused job of a removed module"))
            continue
        problem = key_problem(key, cloud)
        if problem:
            found.append(((key,), problem))
        if isinstance(value, str):
            problem = value_problem(value, cloud)
            if problem:
                found.append(((key,), problem))
    return found
