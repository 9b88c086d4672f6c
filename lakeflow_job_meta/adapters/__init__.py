"""The outside world that is not a table: the Jobs API through the SDK, bundle files on disk, the
YAML volume. May import ``metadata/``, ``planning/`` and ``storage/``, never ``engine/``."""
