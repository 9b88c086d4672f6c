"""Entry point of the monitoring task (``python_wheel_task``), with the original tool's parameter names.

Databricks passes named parameters as ``--name=value`` with underscores::

    --control_table=main.ops.etl_control --volume_path=/Volumes/main/ops/metadata
    --check_interval_seconds=60 --max_iterations=

``max_iterations`` empty means run forever. Extra options of the CLI's ``monitor`` command are
accepted the same way (``--target``, ``--env``, ``--prune``, ``--once`` ...).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lakeflow_job_meta.cli.main import main as cli_main

# Reference parameter (underscores) -> CLI option.
PARAMETER_OPTIONS = {
    "control_table": "--control-table",
    "volume_path": "--volume-path",
    "check_interval_seconds": "--check-interval-seconds",
    "max_iterations": "--max-iterations",
    "target": "--target",
    "env": "--env",
    "prune": "--prune",
    "log_format": "--log-format",
    "full_resync_seconds": "--full-resync-seconds",
    "default_warehouse_id": "--default-warehouse-id",
    "managed_sql_root": "--managed-sql-root",
    "policy": "--policy",
}
FLAGS = {
    "once": "--once",
    "auto_run": "--auto-run",
    "no_wait": "--no-wait",
    "allow_mass_change": "--allow-mass-change",
}


def translate_parameters(argv: Sequence[str]) -> list[str]:
    """Turn ``--check_interval_seconds=60`` style parameters into CLI arguments. Empty values
    mean "not set" (a job passing ``max_iterations: ""``)."""
    translated = ["monitor"]
    for arg in argv:
        name, _, value = arg.lstrip("-").partition("=")
        name = name.replace("-", "_")
        if name in FLAGS:
            if value.lower() not in ("false", "0", "no"):
                translated.append(FLAGS[name])
        elif name in PARAMETER_OPTIONS:
            if value.strip():
                translated.append(f"{PARAMETER_OPTIONS[name]}={value.strip()}")
        elif name == "var":
            translated.append(f"--var={value}")
        else:
            raise SystemExit(f"error: unknown parameter {arg!r}")
    return translated


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the monitor. A failure raises SystemExit: a ``python_wheel_task`` ignores the entry
    point's return value, so returning 1 would report a failed run as a success."""
    code = cli_main(translate_parameters(sys.argv[1:] if argv is None else argv))
    if code:
        raise SystemExit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
