"""Every limit the metadata must respect, one constant each, so validation, the readers and the
docs agree. The service's own limits are quoted with their source in docs/API_FACTS.md."""

from __future__ import annotations

# A YAML file larger than this is rejected before it is read (CLI, manager, volume scanner).
MAX_FILE_BYTES = 1024 * 1024
