"""lakeflow_job_meta: keep Databricks Lakeflow Jobs equal to metadata in a Delta control table and
YAML files.

Public API (the names the original tool exposed, kept for compatibility)::

    from lakeflow_job_meta import JobOrchestrator, MetadataManager, MetadataMonitor

Imports are lazy so that ``import lakeflow_job_meta`` needs neither pyspark nor deltalake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "JobOrchestrator",
    "MetadataManager",
    "MetadataMonitor",
    "MetadataValidationError",
    "__version__",
    "load_yaml",
]

_LAZY = {
    "JobOrchestrator": "lakeflow_job_meta.api",
    "MetadataManager": "lakeflow_job_meta.api",
    "MetadataMonitor": "lakeflow_job_meta.api",
    "MetadataValidationError": "lakeflow_job_meta.errors",
}

if TYPE_CHECKING:
    from lakeflow_job_meta.api import JobOrchestrator, MetadataManager, MetadataMonitor
    from lakeflow_job_meta.engine.metadata_manager import LoadResult
    from lakeflow_job_meta.errors import MetadataValidationError


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lakeflow_job_meta' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)


def load_yaml(
    path: str, control_table: str, var: dict[str, str] | None = None, env: str | None = None
) -> LoadResult:
    """Load one YAML file into ``control_table`` (creating the tables if needed)."""
    from lakeflow_job_meta.api import MetadataManager

    manager = MetadataManager(control_table)
    manager.ensure_exists()
    return manager.load_yaml(path, var=var, env=env)
