"""Plain data models of the metadata, shared by every layer.

A *source* is one row of the control table (one task). A *module* is one job: its sources plus
the module-level job settings that live in the companion modules table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# The control table's eight columns of the original tool, in its order: positional INSERTs rely on it.
CONTROL_COLUMNS: tuple[str, ...] = (
    "source_id",
    "module_name",
    "source_type",
    "execution_order",
    "source_config",
    "target_config",
    "transformation_config",
    "is_active",
)
JSON_COLUMNS: tuple[str, ...] = ("source_config", "target_config", "transformation_config")

# Columns of the companion modules table (module-level job settings), in order.
MODULE_COLUMNS: tuple[str, ...] = ("module_name", "settings", "is_active")

# Principal keys of an access control entry; exactly one per entry.
PRINCIPAL_KEYS: tuple[str, ...] = ("user_name", "group_name", "service_principal_name")


def principal_of(entry: Any) -> tuple[str, str] | None:
    """``(key, name)`` of an ACL entry's single principal, or None when it has not exactly one."""
    if not isinstance(entry, dict):
        return None
    found = [(key, str(entry[key])) for key in PRINCIPAL_KEYS if entry.get(key)]
    return found[0] if len(found) == 1 else None


TASK_TYPES: tuple[str, ...] = (
    "notebook",
    "sql_query",
    "sql_file",
    "python_wheel",
    "spark_python",
    "spark_jar",
    "pipeline",
    "run_job",
    "dbt",
    "condition",
    "for_each",
)

# Task fields that choose compute. Task types that run on compute we choose (the others run on a
# warehouse, a pipeline or nothing); serverless tasks of ENVIRONMENT_TASK_TYPES need an environment.
COMPUTE_FIELDS: tuple[str, ...] = ("job_cluster_key", "existing_cluster_id", "environment_key", "libraries")
CLUSTER_TASK_TYPES = frozenset({"notebook", "python_wheel", "spark_python", "spark_jar", "dbt"})
ENVIRONMENT_TASK_TYPES = frozenset({"python_wheel", "spark_python", "dbt"})
# The environment the compiler generates when a module declares none.
DEFAULT_ENVIRONMENT_KEY = "default"


def serverless_dependency(library: Any) -> str | None:
    """A task library as a serverless environment dependency (pip requirement), if it has one."""
    if not isinstance(library, dict) or len(library) != 1:
        return None
    (kind, value), *_ = library.items()
    if kind == "whl" and isinstance(value, str):
        return value
    if kind == "requirements" and isinstance(value, str):
        return f"-r {value}"
    if kind == "pypi" and isinstance(value, dict) and set(value) == {"package"}:
        return str(value["package"])
    return None


@dataclass(frozen=True)
class Source:
    """One task of a module, as stored in the control table (JSON columns already parsed)."""

    source_id: str
    module_name: str
    source_type: str
    execution_order: int
    source_config: dict[str, Any] = field(default_factory=dict)
    target_config: dict[str, Any] = field(default_factory=dict)
    transformation_config: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True
    # Where the row came from: the YAML file's path, or None for a row INSERTed by SQL.
    source_file: str | None = None
    # 1-based line of the source mapping in its YAML file, for error messages (not stored).
    line: int | None = field(default=None, compare=False)

    @property
    def task_type(self) -> str:
        return str(self.transformation_config.get("task_type", ""))

    def content_row(self) -> dict[str, Any]:
        """The stored columns that carry meaning (no audit columns), JSON columns serialised
        canonically so equal content gives equal strings."""
        return {
            "source_id": self.source_id,
            "module_name": self.module_name,
            "source_type": self.source_type,
            "execution_order": int(self.execution_order),
            "source_config": canonical_json(self.source_config),
            "target_config": canonical_json(self.target_config),
            "transformation_config": canonical_json(self.transformation_config),
            "is_active": bool(self.is_active),
            "source_file": self.source_file,
        }


@dataclass(frozen=True)
class ModuleSettings:
    """Module-level job settings (schedule, tags, clusters, ...) for one module."""

    module_name: str
    settings: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True
    source_file: str | None = None
    line: int | None = field(default=None, compare=False)

    def content_row(self) -> dict[str, Any]:
        return {
            "module_name": self.module_name,
            "settings": canonical_json(self.settings),
            "is_active": bool(self.is_active),
            "source_file": self.source_file,
        }


@dataclass(frozen=True)
class Module:
    """Everything that becomes one job."""

    name: str
    sources: tuple[Source, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def active_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.is_active)


@dataclass(frozen=True)
class MetadataDocument:
    """What one YAML file yields after parsing, substitution and validation."""

    path: str
    sources: tuple[Source, ...]
    modules: tuple[ModuleSettings, ...]


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, so equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
