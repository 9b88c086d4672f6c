"""Every limit the metadata must respect, one constant each, so validation, the readers and the
docs agree. The service's own limits are quoted with their source in docs/API_FACTS.md."""

from __future__ import annotations

# A YAML file larger than this is rejected before it is read (CLI, manager, volume scanner).
MAX_FILE_BYTES = 1024 * 1024

# The Jobs API's limits (docs/API_FACTS.md). schema.json repeats the two it can express
# (``maxLength`` of description, ``maximum`` of max_concurrent_runs); a test holds them equal.
MAX_TASKS_PER_JOB = 1000
MAX_DESCRIPTION_CHARS = 27_700
MAX_NAME_BYTES = 4096
MAX_CONCURRENT_RUNS = 1000

# The policy file (docs/SECURITY.md) is small; a larger one is refused before it is parsed.
MAX_POLICY_BYTES = 64 * 1024
# The blast-radius limit: at most max(jobs, fraction x managed jobs) pauses and deletes per run.
MASS_CHANGE_MAX_JOBS = 2
MASS_CHANGE_MAX_FRACTION = 0.2


def human_size(size: int) -> str:
    """A byte count as people read it (``1.9 MiB (2000012 bytes)``, ``200 bytes``): a limit of
    ``1048576-byte`` had to be counted digit by digit. Sizes of a KiB and more keep the exact
    count in parentheses when rounding changed it."""
    if size < 1024:
        return f"{size} byte{'s' if size != 1 else ''}"
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            shown = f"{size / scale:.1f}".removesuffix(".0")
            exact = size % scale == 0
            return f"{shown} {unit}" if exact else f"{shown} {unit} ({size} bytes)"
    raise AssertionError("unreachable")


def too_large_text(size: int, limit: int) -> str:
    """The one wording of a file over its size limit, wherever it is found."""
    return f"file is {human_size(size)}, over the limit of {human_size(limit)}"
