"""Jobs API 2.2 emulator for tests (never shipped in the package).

See ``docs/API_FACTS.md`` for the service facts it reproduces and ``fixtures.py`` for the
pytest fixtures (``jobs_emulator``, ``workspace_client``).
"""

from .faults import (
    ALL_KINDS,
    KIND_429,
    KIND_500,
    KIND_500_TRANSIENT,
    KIND_503,
    KIND_DROP_AFTER_COMMIT,
    KIND_DROP_BEFORE,
    KIND_SLOW,
    RETRIED_KINDS,
    Fault,
    FaultSet,
    FiredFault,
)
from .jobs_logic import ApiError, apply_server_defaults, validate_settings
from .server import DEFAULT_USER, JobsEmulator, RequestRecord

__all__ = [
    "ALL_KINDS",
    "DEFAULT_USER",
    "KIND_429",
    "KIND_500",
    "KIND_500_TRANSIENT",
    "KIND_503",
    "KIND_DROP_AFTER_COMMIT",
    "KIND_DROP_BEFORE",
    "KIND_SLOW",
    "RETRIED_KINDS",
    "ApiError",
    "Fault",
    "FaultSet",
    "FiredFault",
    "JobsEmulator",
    "RequestRecord",
    "apply_server_defaults",
    "validate_settings",
]
