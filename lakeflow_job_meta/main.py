"""Entry point of the monitoring task (``python_wheel_task``), with the original tool's parameter names.

Databricks passes named parameters as ``--name=value`` with underscores::

    --control_table=main.ops.etl_control --volume_path=/Volumes/main/ops/metadata
    --check_interval_seconds=60 --max_iterations=

``max_iterations`` empty means run forever. Extra options of the CLI's ``monitor`` command are
accepted the same way (``--target``, ``--env``, ``--prune``, ``--once`` ...). Any other parameter
given empty (``--control_table=``, ``--volume_path=``, ``--policy=``) is a usage error (exit 2),
never a fallback to a default: an empty widget or job parameter must not send the monitor to
another control table, folder or policy. Inside the Databricks Runtime ``control_table`` is
required.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NamedTuple

from lakeflow_job_meta.cli.main import EXIT_USAGE, empty_value_error
from lakeflow_job_meta.cli.main import main as cli_main
from lakeflow_job_meta.errors import ConfigurationError

PROG = "lakeflow-job-meta-monitor"


class Parameter(NamedTuple):
    name: str
    option: str  # the CLI option it becomes ("" for a flag's own name)
    help: str
    flag: bool = False


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "control_table",
        "--control-table",
        "catalog.schema.table of the control table (required inside Databricks)",
    ),
    Parameter(
        "volume_path", "--volume-path", "folder of YAML files to sync, e.g. /Volumes/main/ops/metadata"
    ),
    Parameter("check_interval_seconds", "--check-interval-seconds", "seconds between checks (default 60)"),
    Parameter("max_iterations", "--max-iterations", "stop after this many cycles (empty: run forever)"),
    Parameter("target", "--target", "workspace | bundle:DIR (default: workspace inside Databricks)"),
    Parameter("env", "--env", "deployment environment defined in the YAML (e.g. dev, prod)"),
    Parameter("prune", "--prune", "what happens to a removed module's job: pause | delete | keep"),
    Parameter("log_format", "--log-format", "human | json (one JSON document per log line)"),
    Parameter("full_resync_seconds", "--full-resync-seconds", "full reconcile every N seconds (default 600)"),
    Parameter(
        "runs_interval_seconds",
        "--runs-interval-seconds",
        "read the managed jobs' runs at most every N seconds (default 300; 0: never)",
    ),
    Parameter("runs_retention_days", "--runs-retention-days", "keep runs this many days (default 30)"),
    Parameter("default_warehouse_id", "--default-warehouse-id", "warehouse for SQL tasks that name none"),
    Parameter("managed_sql_root", "--managed-sql-root", "workspace folder for inline-SQL files"),
    Parameter("var", "--var", "K=V: set a ${var.K} value (repeatable)"),
    Parameter(
        "policy", "--policy", "YAML policy file (run_as, code paths, default grants); may be in a volume"
    ),
    Parameter("once", "--once", "true: one full cycle, then exit (triggered deployments)", flag=True),
    Parameter("auto_run", "--auto-run", "true: run jobs just created or changed", flag=True),
    Parameter("no_wait", "--no-wait", "true: fail at once if another monitor holds the lease", flag=True),
    Parameter(
        "allow_mass_change",
        "--allow-mass-change",
        "true: apply pauses and deletes beyond the blast-radius limit",
        flag=True,
    ),
)
PARAMETER_OPTIONS = {p.name: p.option for p in PARAMETERS if not p.flag and p.name != "var"}
FLAGS = {p.name: p.option for p in PARAMETERS if p.flag}
# The one parameter whose empty value has a meaning: run forever.
EMPTY_MEANS_UNSET = frozenset({"max_iterations"})


def help_text() -> str:
    width = max(len(p.name) for p in PARAMETERS) + len("--=VALUE")
    lines = [
        f"usage: {PROG} --control_table=CATALOG.SCHEMA.TABLE [--name=value ...]",
        "",
        "Runs the lakeflow_job_meta monitor as a python_wheel_task. Parameters use the",
        "reference's underscore names. An empty value is an error (exit 2), except",
        "max_iterations, where it means run forever; leave a parameter out to use its default.",
        "",
        "parameters:",
    ]
    for p in PARAMETERS:
        usage = f"--{p.name}=true" if p.flag else f"--{p.name}=VALUE"
        lines.append(f"  {usage:<{width}}  {p.help}")
    lines += [
        "",
        "Examples:",
        f"  {PROG} --control_table=main.ops.etl_control --volume_path=/Volumes/main/ops/metadata",
        f"  {PROG} --control_table=main.ops.etl_control --once=true --env=prod",
        "",
        "The same monitor as `lakeflow-job-meta monitor`; see `lakeflow-job-meta monitor --help`.",
    ]
    return "\n".join(lines) + "\n"


def translate_parameters(argv: Sequence[str]) -> list[str]:
    """Turn ``--check_interval_seconds=60`` style parameters into CLI arguments. A parameter given
    empty raises ConfigurationError naming it, except ``max_iterations`` (empty: run forever)."""
    translated = ["monitor"]
    for arg in argv:
        name, equals, value = arg.lstrip("-").partition("=")
        name = name.replace("-", "_")
        if name in (*FLAGS, *PARAMETER_OPTIONS) and equals and not value.strip():
            if name in EMPTY_MEANS_UNSET:
                continue
            raise empty_value_error(f"parameter {name}")
        if name in FLAGS:
            if value.lower() not in ("false", "0", "no"):
                translated.append(FLAGS[name])
        elif name in PARAMETER_OPTIONS:
            translated.append(f"{PARAMETER_OPTIONS[name]}={value.strip()}")
        elif name == "var":
            translated.append(f"--var={value}")
        else:
            raise SystemExit(f"error: unknown parameter {arg!r} (see {PROG} --help)")
    return translated


def _has_control_table(translated: Sequence[str]) -> bool:
    return any(arg.startswith("--control-table=") for arg in translated)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the monitor. A failure raises SystemExit: a ``python_wheel_task`` ignores the entry
    point's return value, so returning 1 would report a failed run as a success."""
    from lakeflow_job_meta.wiring import in_databricks_runtime

    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help", "help") for arg in args):
        sys.stdout.write(help_text())
        return 0
    try:
        translated = translate_parameters(args)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    if in_databricks_runtime() and not _has_control_table(translated):
        print(
            "error: control_table is required (catalog.schema.table); it is empty or missing",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    code = cli_main(translated)
    if code:
        raise SystemExit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
