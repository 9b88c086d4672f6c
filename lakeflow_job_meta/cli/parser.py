"""The command line's grammar: every subcommand, every option with its help, and examples.

Global options (``--debug``, ``--json``, ``--profile``) are accepted before or after the
subcommand: the subcommands declare them again with suppressed defaults, so a value given before
the subcommand is not reset by the subcommand's parser.
"""

from __future__ import annotations

import argparse

from lakeflow_job_meta import __version__
from lakeflow_job_meta.logs import LOG_FORMATS
from lakeflow_job_meta.planning.graph import GRAPH_FORMATS
from lakeflow_job_meta.vocabulary import DEFAULT_MAX_WORKERS, PrunePolicy, choices

PROG = "lakeflow-job-meta"
DEFAULT_LOCAL_CONTROL_TABLE = ".lakeflow_job_meta/etl_control"
DEFAULT_LEASE_TIMEOUT_SECONDS = 60.0
EPILOG = (
    "Exit codes: 0 ok, 1 metadata errors or a failed module, 2 bad usage or configuration "
    "(unreachable workspace, refused credentials, missing extra), 3 writer lease held (after\n"
    "--lease-timeout, default 60 s; --no-wait: at once).\n"
    "Run `lakeflow-job-meta COMMAND --help` for a command's options and examples."
)

# Command -> (one-line help, description, examples).
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "init": (
        "create the control table and the tool's tables",
        "Create the control table and the tool's tables beside it (_modules, _jobs, _history, "
        "_state), or migrate older ones forward. --with-examples also loads the shipped examples.",
        (
            f"{PROG} init --control-table ./etl_control --with-examples",
            f"{PROG} init --control-table main.ops.etl_control",
        ),
    ),
    "validate": (
        "check YAML files without writing anything",
        "Check YAML files (schema and semantic checks, every problem in one pass). Exit 0 when "
        "valid, 1 with every error listed as file:line: field: message. With --control-table, "
        "also every check `load` makes against what the table holds; nothing is written.",
        (
            f"{PROG} validate examples/metadata_examples.yaml",
            f"{PROG} validate metadata/ --env prod --var warehouse_id=abc123",
            f"{PROG} validate metadata/ --json | jq '.errors[]'",
            f"{PROG} validate metadata/sales.yaml --control-table main.ops.etl_control --env prod",
        ),
    ),
    "load": (
        "load YAML files into the control table (adds and updates)",
        "Validate YAML files, then write their rows into the control table and the modules table "
        "(creating the tool's tables). Nothing is written when any file is invalid.",
        (
            f"{PROG} load examples/metadata_examples.yaml --control-table ./etl_control",
            f"{PROG} load /Volumes/main/ops/metadata --control-table main.ops.etl_control --sync",
        ),
    ),
    "plan": (
        "show what apply would change, like a Terraform plan",
        "Compare the metadata with the jobs and print what apply would create, update, pause or "
        "delete. Against a workspace, one cheap call first checks the host and the credentials.",
        (
            f"{PROG} plan --control-table ./etl_control --target bundle:./bundle",
            f"{PROG} plan --control-table main.ops.etl_control --target workspace --profile prod",
            f"{PROG} plan --control-table ./etl_control --json | jq .summary",
        ),
    ),
    "apply": (
        "create, update and prune jobs",
        "Create and update one job per module and prune the jobs of removed modules, under the "
        "writer lease. Zero API writes when nothing changed.",
        (
            f"{PROG} apply --control-table main.ops.etl_control --target workspace",
            f"{PROG} apply --control-table ./etl_control --target bundle:./bundle --prune keep",
        ),
    ),
    "export-bundle": (
        "write the jobs as a Databricks Asset Bundle",
        "Write one job per module as a Databricks Asset Bundle in --output (the same as "
        "`apply --target bundle:DIR`); deploy it with `databricks bundle deploy`.",
        (
            f"{PROG} export-bundle --control-table ./etl_control --output ./bundle",
            f"{PROG} export-bundle --control-table main.ops.etl_control --output ./bundle --env prod",
        ),
    ),
    "monitor": (
        "watch the control table and a YAML folder; keep the jobs in step",
        "Run the monitor: it checks the control table's Delta version and the YAML folder every "
        "interval and reconciles only what changed. Idle cycles log at DEBUG; an INFO heartbeat "
        "comes every 10 minutes.",
        (
            f"{PROG} monitor --control-table main.ops.etl_control --volume-path /Volumes/main/ops/metadata",
            f"{PROG} monitor --volume-path ./volume --check-interval-seconds 5 --log-format json",
            f"{PROG} monitor --control-table main.ops.etl_control --once",
        ),
    ),
    "status": (
        "one row per module: job, applied version, lag, errors, monitor lease",
        "Show, per module of the control table, its job (id and URL, or bundle file), the last "
        "applied version and time, the lag, drift, orphaned jobs, the last error with file:line "
        "and the last author; the header says whether a monitor holds the lease or stopped, and "
        "lists rejected files.",
        (
            f"{PROG} status --control-table main.ops.etl_control",
            f"{PROG} status --control-table main.ops.etl_control --runs --profile prod",
            f"{PROG} status --control-table ./etl_control --json",
        ),
    ),
    "history": (
        "what was applied, when, with which outcome",
        "Read the history table: one row per module per run, newest first.",
        (
            f"{PROG} history --control-table ./etl_control --limit 20",
            f"{PROG} history --control-table main.ops.etl_control --module sales_daily --since 2026-01-01",
        ),
    ),
    "serve": (
        "a read-only status page (HTML and JSON) over the tool's tables",
        "Serve the fleet overview, each module's task graph, runs, history and errors, the rejected "
        "files and the monitor's lease as server-rendered HTML (no JavaScript, works offline) with a "
        "JSON API under /api. Read-only. Needs the serve extra.",
        (
            f"{PROG} serve --control-table ./etl_control",
            f"{PROG} serve --control-table main.ops.etl_control --warehouse-id abc123 --profile prod",
        ),
    ),
    "graph": (
        "draw a module's task graph (Mermaid or Graphviz)",
        "Print the task DAG of one module's job as it would be deployed: nodes are task keys with "
        "their task type, edges the dependencies, labelled with condition outcomes.",
        (
            f"{PROG} graph sales_daily --control-table ./etl_control",
            f"{PROG} graph sales_daily --format dot | dot -Tsvg > sales_daily.svg",
        ),
    ),
}


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks and debug logs"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print exactly one JSON document on stdout (nothing else there)",
    )
    parser.add_argument(
        "--profile", default=default(None), help="~/.databrickscfg profile (workspace commands)"
    )


def _table(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--control-table",
        default=DEFAULT_LOCAL_CONTROL_TABLE,
        metavar="TABLE",
        help="local path (Delta via delta-rs, the `local` extra) or catalog.schema.table (Spark); "
        "default: %(default)s",
    )


def _var(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--var", action="append", default=[], metavar="K=V", help="set a ${var.K} value (repeatable)"
    )


def _metadata(p: argparse.ArgumentParser) -> None:
    _var(p)
    p.add_argument("--env", default=None, metavar="NAME", help="deployment environment defined in the YAML")
    _warehouse(p)


def _warehouse(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--default-warehouse-id",
        default=None,
        metavar="ID",
        help="SQL warehouse for SQL and dbt tasks that name none",
    )


def _deploy(p: argparse.ArgumentParser, *, target: bool = True) -> None:
    if target:
        p.add_argument(
            "--target",
            default=None,
            help="workspace | bundle:DIR (default: workspace inside Databricks, bundle:bundle elsewhere)",
        )
    p.add_argument(
        "--env",
        default=None,
        metavar="NAME",
        help="deployment environment (its mode decides: development jobs are prefixed and paused); "
        "must be the one the control table was loaded with",
    )
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="K=V",
        help="a ${var.K} value (repeatable); must be those the control table was loaded with",
    )
    _warehouse(p)
    p.add_argument(
        "--managed-sql-root", default=None, metavar="DIR", help="workspace folder for inline-SQL files"
    )
    p.add_argument(
        "--prune",
        choices=choices(PrunePolicy),
        default=PrunePolicy.PAUSE.value,
        help="a removed module's job: pause it, delete it or keep it (default: %(default)s)",
    )
    p.add_argument(
        "--policy", default=None, metavar="PATH", help="identity and code policy YAML (may be in a volume)"
    )
    p.add_argument(
        "--allow-mass-change",
        action="store_true",
        help="apply pauses and deletes beyond the blast-radius limit (default max(2, 20%%) of the jobs)",
    )
    p.add_argument(
        "--max-workers",
        type=_positive_int,
        default=DEFAULT_MAX_WORKERS,
        metavar="N",
        help="workspace target: modules applied at once (default: %(default)s)",
    )
    p.add_argument(
        "--max-rps",
        type=float,
        default=None,
        metavar="N",
        help="workspace target: at most N requests a second (default: no cap of ours; a 429 "
        "slows the whole client down either way)",
    )


def _apply_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--default-pause-status",
        choices=("PAUSED", "UNPAUSED"),
        default=None,
        help="pause status of new jobs whose metadata sets none",
    )
    p.add_argument(
        "--bundle-target",
        default=None,
        metavar="NAME",
        help="bundle target only: also write targets/NAME.yml for --workspace-host, once "
        "(the file is then yours and never rewritten); deploy with `databricks bundle deploy -t NAME`",
    )
    p.add_argument(
        "--workspace-host", default=None, metavar="URL", help="the workspace URL of --bundle-target"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _module_selection(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument(
        "--module",
        action="append",
        default=None,
        metavar="NAME",
        help=f"{verb} only this module (repeatable; fnmatch globs such as 'sales_*'); "
        "the only way to apply a `sync: manual` module",
    )


def _number(
    p: argparse.ArgumentParser, flag: str, default: float | None, help_text: str, *, kind: type = float
) -> None:
    p.add_argument(flag, type=kind, default=default, metavar="N" if kind is int else "S", help=help_text)


def _add(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> argparse.ArgumentParser:
    short, description, examples = COMMANDS[name]
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    return sub.add_parser(
        name,
        help=short,
        description=description,
        epilog="Examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep Databricks Lakeflow Jobs equal to metadata in a Delta control table and YAML.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "init")
    _table(p)
    p.add_argument("--with-examples", action="store_true", help="also load the shipped example metadata")

    p = _add(sub, "validate")
    p.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders (subfolders included)")
    _metadata(p)
    p.add_argument(
        "--control-table",
        default=None,
        metavar="TABLE",
        help="also check the files against what this table holds, as `load` would (nothing is written)",
    )
    p.add_argument(
        "--show",
        action="store_true",
        help="also print every module as it will be stored: defaults merged, variables substituted",
    )

    p = _add(sub, "load")
    p.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders (subfolders included)")
    _table(p)
    _metadata(p)
    p.add_argument("--sync", action="store_true", help="for folders: also delete rows whose file is gone")
    p.add_argument(
        "--allow-mass-change", action="store_true", help="with --sync: accept a folder that lists no files"
    )

    p = _add(sub, "plan")
    _table(p)
    _deploy(p)
    p.add_argument("--no-drift", action="store_true", help="skip reading the live jobs (no drift check)")
    _module_selection(p, "plan")
    p.add_argument(
        "--out", default=None, metavar="FILE", help="also write the plan to FILE, for `apply --plan FILE`"
    )

    p = _add(sub, "apply")
    _table(p)
    _deploy(p)
    _apply_options(p)
    _module_selection(p, "apply")
    p.add_argument(
        "--plan",
        default=None,
        metavar="FILE",
        help="apply exactly the plan `plan --out` wrote; refused (exit 1) if the metadata or a job moved since",
    )
    p.add_argument("--auto-run", action="store_true", help="run the jobs just created or changed")
    p.add_argument(
        "--lease-timeout",
        type=float,
        default=DEFAULT_LEASE_TIMEOUT_SECONDS,
        metavar="S",
        help="wait at most this long for the writer lease, then exit 3 (default: %(default)s)",
    )
    p.add_argument(
        "--no-wait", action="store_true", help="fail at once (exit 3) if another process holds the lease"
    )

    p = _add(sub, "export-bundle")
    _table(p)
    p.add_argument(
        "--output", required=True, metavar="DIR", help="bundle folder to write (created if missing)"
    )
    _deploy(p, target=False)
    _apply_options(p)
    p.set_defaults(auto_run=False, no_wait=False, module=None, plan=None)

    p = _add(sub, "monitor")
    _table(p)
    _deploy(p)
    p.add_argument(
        "--volume-path", default=None, metavar="DIR", help="folder (or /Volumes/...) of YAML files to sync"
    )
    _number(p, "--check-interval-seconds", 60.0, "seconds between checks (default: %(default)s)")
    _number(p, "--max-iterations", None, "stop after N cycles (default: run forever)", kind=int)
    p.add_argument("--once", action="store_true", help="one full cycle, then exit (triggered deployments)")
    p.add_argument("--auto-run", action="store_true", help="run the jobs just created or changed")
    p.add_argument(
        "--no-wait", action="store_true", help="fail at once (exit 3) if another monitor holds the lease"
    )
    p.add_argument(
        "--log-format", choices=LOG_FORMATS, default="human", help="human lines or one JSON document per line"
    )
    _number(
        p,
        "--full-resync-seconds",
        600.0,
        "a full reconcile (drift included) at least this often (default: %(default)s)",
    )
    _number(
        p,
        "--lease-ttl-seconds",
        60.0,
        "the writer lease expires this long after its last renewal (default: %(default)s)",
    )
    _number(
        p,
        "--runs-interval-seconds",
        300.0,
        "read the managed jobs' runs (one paged jobs/runs/list) at most this often; 0: never "
        "(default: %(default)s)",
    )
    _number(p, "--runs-retention-days", 30.0, "keep runs in the runs table this long (default: %(default)s)")

    p = _add(sub, "status")
    _table(p)
    p.add_argument(
        "--runs",
        action="store_true",
        help="also each job's latest run and run health (one paged jobs/runs/list, whatever the job count)",
    )

    p = _add(sub, "history")
    _table(p)
    p.add_argument("--module", default=None, metavar="NAME", help="only this module")
    p.add_argument(
        "--since", default=None, metavar="DATE", help="only runs on or after this date (YYYY-MM-DD, UTC)"
    )
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (default: %(default)s)")

    p = _add(sub, "serve")
    _table(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, metavar="N", help="port (default: %(default)s)")
    p.add_argument(
        "--warehouse-id",
        default=None,
        metavar="ID",
        help="read catalog.schema.table tables through this SQL warehouse (statement execution API), "
        "as the Databricks App does, instead of a Spark session",
    )

    p = _add(sub, "graph")
    p.add_argument("module", metavar="MODULE", help="module name (one job)")
    _table(p)
    p.add_argument("--format", choices=GRAPH_FORMATS, default="mermaid", help="default: %(default)s")
    p.add_argument(
        "--env", default=None, metavar="NAME", help="deployment environment (job names get its prefix)"
    )
    _var(p)
    _warehouse(p)
    return parser
