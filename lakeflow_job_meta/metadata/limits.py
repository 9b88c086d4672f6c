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
