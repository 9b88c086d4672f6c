"""Where the shipped examples are, and the jobs they define, for tests that run them."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPO / "examples"
EXAMPLES = EXAMPLES_DIR / "metadata_examples.yaml"
# The active modules of the examples: one job each (legacy_exports is inactive).
EXAMPLE_MODULES = frozenset(
    {"sales_daily", "ml_features", "warehouse_refresh", "nightly_umbrella", "clickstream_continuous"}
)
