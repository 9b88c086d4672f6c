"""``lakeflow-job-meta``: validate, load, plan, apply, monitor, status.

Exit codes: 0 success; 1 metadata errors or a module failed; 2 bad usage or configuration;
3 the writer lease is held by another process (``--no-wait``). Errors print one line; ``--debug``
adds the traceback. With ``--json`` stdout holds only the JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lakeflow_job_meta.errors import (
    ConfigurationError,
    LakeflowJobMetaError,
    LeaseHeldError,
    MetadataValidationError,
    MissingDependencyError,
    TableNotFoundError,
)
from lakeflow_job_meta.vocabulary import PlanAction, PrunePolicy, choices

DEFAULT_LOCAL_CONTROL_TABLE = ".lakeflow_job_meta/etl_control"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LEASE = 0, 1, 2, 3


def _console(stderr: bool = True):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _add_metadata_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--var", action="append", default=[], metavar="K=V", help="set a ${var.K} value")
    parser.add_argument(
        "--env", default=None, help="deployment environment defined in the YAML (e.g. dev, prod)"
    )


def _add_table_arg(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--control-table",
        required=required,
        default=None if required else DEFAULT_LOCAL_CONTROL_TABLE,
        help="local path (delta-rs) or catalog.schema.table (Spark); default: %(default)s",
    )


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=None,
        help="workspace | bundle:DIR (default: workspace inside Databricks, bundle:bundle elsewhere)",
    )
    parser.add_argument(
        "--env", default=None, help="deployment environment (non-production: prefixed, paused)"
    )
    parser.add_argument("--profile", default=None, help="~/.databrickscfg profile")
    parser.add_argument("--default-warehouse-id", default=None)
    parser.add_argument("--managed-sql-root", default=None, help="workspace folder for inline-SQL files")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakeflow-job-meta",
        description="Keep Databricks Lakeflow Jobs equal to metadata in a Delta control table and YAML.",
        epilog="Exit codes: 0 ok, 1 metadata errors or a failed module, 2 bad usage or configuration, "
        "3 writer lease held (--no-wait). --debug shows tracebacks.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check YAML files without writing anything")
    p.add_argument("paths", nargs="+")
    _add_metadata_args(p)
    p.add_argument("--default-warehouse-id", default=None)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("load", help="load YAML files into the control table (adds and updates)")
    p.add_argument("paths", nargs="+")
    _add_table_arg(p)
    _add_metadata_args(p)
    p.add_argument("--sync", action="store_true", help="for folders: also delete rows whose file is gone")
    p.add_argument("--default-warehouse-id", default=None)
    p.add_argument("--json", action="store_true")

    for name, help_text in (("plan", "show what apply would change"), ("apply", "create/update/prune jobs")):
        p = sub.add_parser(name, help=help_text)
        _add_table_arg(p)
        _add_target_args(p)
        p.add_argument("--prune", choices=choices(PrunePolicy), default=PrunePolicy.PAUSE.value)
        if name == "apply":
            p.add_argument("--auto-run", action="store_true", help="run jobs just created or changed")
            p.add_argument(
                "--no-wait", action="store_true", help="fail at once if another process holds the lease"
            )
            p.add_argument("--default-pause-status", choices=("PAUSED", "UNPAUSED"), default=None)
        else:
            p.add_argument("--no-drift", action="store_true", help="skip reading live jobs")

    p = sub.add_parser(
        "export-bundle",
        help="write the jobs as a Databricks Asset Bundle (apply --target bundle:DIR)",
        description="Write one job per module as a Databricks Asset Bundle in --output; deploy it "
        "with `databricks bundle deploy`. The same as `apply --target bundle:DIR`.",
        epilog="Examples:\n"
        "  lakeflow-job-meta export-bundle --control-table main.ops.etl_control --output ./bundle\n"
        "  lakeflow-job-meta export-bundle --control-table ./etl_control --output ./bundle --env prod",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_table_arg(p)
    p.add_argument(
        "--output", required=True, metavar="DIR", help="bundle folder to write (created if missing)"
    )
    _add_target_args(p)
    p.add_argument("--prune", choices=choices(PrunePolicy), default=PrunePolicy.PAUSE.value)
    p.add_argument("--default-pause-status", choices=("PAUSED", "UNPAUSED"), default=None)
    p.set_defaults(auto_run=False, no_wait=False)

    p = sub.add_parser("monitor", help="watch the control table and a YAML folder; keep jobs in step")
    _add_table_arg(p)
    _add_target_args(p)
    p.add_argument("--volume-path", default=None, help="folder (or /Volumes/...) of YAML files to sync")
    p.add_argument("--check-interval-seconds", type=float, default=60.0)
    p.add_argument("--max-iterations", type=int, default=None)
    p.add_argument("--once", action="store_true", help="one full cycle, then exit")
    p.add_argument("--prune", choices=choices(PrunePolicy), default=PrunePolicy.PAUSE.value)
    p.add_argument("--auto-run", action="store_true")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--var", action="append", default=[], metavar="K=V")
    p.add_argument("--log-format", choices=("human", "json"), default="human")
    p.add_argument("--full-resync-seconds", type=float, default=600.0)
    p.add_argument("--lease-ttl-seconds", type=float, default=60.0)

    p = sub.add_parser(
        "graph",
        help="draw a module's task graph (Mermaid or Graphviz)",
        description="Print the task DAG of one module's job as it would be deployed: nodes are task "
        "keys with their task type, edges the dependencies, labelled with condition outcomes.",
        epilog="Examples:\n"
        "  lakeflow-job-meta graph sales_daily --control-table ./etl_control\n"
        "  lakeflow-job-meta graph sales_daily --format dot | dot -Tsvg > sales_daily.svg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("module", help="module name (one job)")
    _add_table_arg(p)
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="default: %(default)s")
    p.add_argument("--env", default=None, help="deployment environment (job names get its prefix)")
    p.add_argument("--default-warehouse-id", default=None, help="warehouse for SQL tasks that name none")

    p = sub.add_parser("status", help="show the monitor state and per-module outcomes")
    _add_table_arg(p)
    p.add_argument("--json", action="store_true")
    return parser


# -- commands ------------------------------------------------------------------------------------
def _variables(args: argparse.Namespace) -> dict[str, str]:
    from lakeflow_job_meta.metadata.variables import parse_var_args

    return parse_var_args(args.var)


def cmd_validate(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.metadata.loader import parse_files

    paths = _expand_paths(args.paths)
    _, issues = parse_files(
        paths, variables=_variables(args), env=args.env, default_warehouse_id=args.default_warehouse_id
    )
    if args.json:
        print(
            json.dumps(
                {"valid": not issues, "files": paths, "errors": [i.as_dict() for i in issues]}, indent=2
            )
        )
    else:
        console = _console()
        for issue in issues:
            console.print(f"[red]error[/red] {issue}", markup=True)
        if not issues:
            console.print(f"[green]valid[/green]: {len(paths)} file(s)")
        else:
            console.print(f"{len(issues)} error(s) in {len(paths)} file(s)")
    return EXIT_OK if not issues else EXIT_FAILED


def _expand_paths(paths: Sequence[str]) -> list[str]:
    from lakeflow_job_meta.metadata.files import list_yaml_files

    result: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            result.extend(list_yaml_files(path))
        elif os.path.exists(path):
            result.append(path)
        else:
            raise ConfigurationError(f"{path}: no such file or folder")
    return result


def cmd_load(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.wiring import RunSettings, build_manager, build_parts

    settings = RunSettings(args.control_table, default_warehouse_id=args.default_warehouse_id, cli=True)
    manager = build_manager(settings, build_parts(settings))
    variables = _variables(args)
    if args.sync:
        results = [manager.sync_from_volume(path, var=variables, env=args.env) for path in args.paths]
    else:
        results = [manager.load_files(_expand_paths(args.paths), var=variables, env=args.env)]
    if args.json:
        print(json.dumps({"results": [r.as_dict() for r in results]}, indent=2))
    else:
        console = _console()
        for r in results:
            console.print(
                f"loaded {len(r.files)} file(s) into {args.control_table}: "
                f"{r.sources_upserted} source row(s) written, {r.sources_deleted} deleted, "
                f"{r.modules_upserted} module row(s) written, {r.modules_deleted} deleted"
                + ("" if r.changed else " (nothing changed)")
            )
    return EXIT_OK


def _run_settings(args: argparse.Namespace):
    from lakeflow_job_meta.wiring import RunSettings

    return RunSettings(
        control_table=args.control_table,
        target=args.target,
        env=args.env,
        prune=getattr(args, "prune", "pause"),
        default_pause_status=getattr(args, "default_pause_status", None),
        default_warehouse_id=args.default_warehouse_id,
        managed_sql_root=args.managed_sql_root,
        profile=args.profile,
        variables=_variables(args) if hasattr(args, "var") else {},
        cli=True,
    )


def cmd_plan(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.wiring import build_orchestrator

    orchestrator = build_orchestrator(_run_settings(args))
    _console().print(orchestrator.describe_target())
    plan = orchestrator.plan(check_drift=not args.no_drift)
    if args.json:
        print(json.dumps(plan.as_json(), indent=2, default=str))
    else:
        print(plan.render_text())
    return EXIT_OK if not any(c.action == PlanAction.ERROR for c in plan.changes) else EXIT_FAILED


def cmd_export_bundle(args: argparse.Namespace) -> int:
    if args.target is not None:
        raise ConfigurationError("export-bundle writes to --output; --target does not apply")
    args.target = f"bundle:{args.output}"
    return cmd_apply(args)


def cmd_apply(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.wiring import build_orchestrator

    orchestrator = build_orchestrator(_run_settings(args), lease_wait=not args.no_wait)
    console = _console()
    console.print(orchestrator.describe_target())
    if not orchestrator.tables.control.exists():
        # apply creates the tool's own tables, but never an empty control table from a typo.
        raise TableNotFoundError(orchestrator.tables.control.name)
    result = orchestrator.run_all_modules(auto_run=args.auto_run)
    if args.json:
        doc = result.as_dict()
        doc["changes"] = [
            {
                "module": r.module,
                "action": r.action,
                "job_id": r.job_id,
                "outcome": r.outcome,
                "error": r.error,
            }
            for r in sorted(result.results, key=lambda r: r.module)
        ]
        print(json.dumps(doc, indent=2, default=str))
    else:
        _print_run(console, result)
    return EXIT_OK if result.ok else EXIT_FAILED


def _print_run(console: Any, result: Any) -> None:
    symbols = {
        "create": "+",
        "adopt": "+",
        "update": "~",
        "delete": "-",
        "pause": "!",
        "noop": " ",
        "error": "x",
    }
    for r in sorted(result.results, key=lambda r: r.module):
        if r.action == "noop" and r.ok and not r.other_writes:
            continue
        if r.outcome == "error":
            line = f"x {r.module}: {r.action}" + (" failed" if r.action != "error" else "")
        elif not r.ok:
            line = f"  {r.module}: {r.action} {r.outcome}"
        else:
            line = f"{symbols.get(r.action, '?')} {r.module}: {r.action}"
        if r.job_id:
            line += f" (job {r.job_id})"
        if r.drift and r.ok:
            line += " [drift restored]"
        if r.error:
            line += f": {r.error}"
        console.print(line, markup=False)
    done = Counter(r.action for r in result.results if r.ok)
    parts = [f"{n} {action}" for action, n in sorted(done.items())]
    failed = sum(1 for r in result.results if r.outcome == "error")
    others = sum(1 for r in result.results if not r.ok and r.outcome != "error")
    if failed:
        parts.append(f"{failed} failed")
    if others:
        parts.append(f"{others} skipped")
    console.print(
        f"Apply complete: {', '.join(parts) or 'no modules'}; "
        f"{result.job_writes} job write(s), {result.other_writes} other write(s).",
        markup=False,
    )


def cmd_monitor(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.engine.monitor import MonitorOptions, install_signal_handlers
    from lakeflow_job_meta.wiring import WatchSettings, build_monitor

    watch = WatchSettings(
        options=MonitorOptions(
            check_interval_seconds=args.check_interval_seconds,
            volume_path=args.volume_path,
            auto_run=args.auto_run,
            wait_for_lease=not args.no_wait,
            full_resync_seconds=args.full_resync_seconds,
            log_format=args.log_format,
        ),
        lease_ttl_seconds=args.lease_ttl_seconds,
    )
    monitor = build_monitor(_run_settings(args), watch)
    _console().print(monitor.orchestrator.describe_target())
    install_signal_handlers(monitor)
    configure_logging(debug=args.debug, monitor_format=args.log_format)
    if args.once:
        report = monitor.run_once()
        return EXIT_OK if report.ok else EXIT_FAILED
    monitor.run_continuous(max_iterations=args.max_iterations)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.planning.graph import render_graph, task_graph
    from lakeflow_job_meta.wiring import RunSettings, build_orchestrator

    # A bundle target: drawing a graph never contacts a workspace.
    settings = RunSettings(
        args.control_table,
        target="bundle:bundle",
        env=args.env,
        default_warehouse_id=args.default_warehouse_id,
        cli=True,
    )
    job = build_orchestrator(settings).compile_one(args.module)
    print(render_graph(task_graph(job.job_name, job.settings, job.managed_files), args.format), end="")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.engine.status import read_status

    status = read_status(args.control_table)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        from lakeflow_job_meta.engine.status import render_status

        print(render_status(status))
    return EXIT_OK


COMMANDS = {
    "validate": cmd_validate,
    "load": cmd_load,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "monitor": cmd_monitor,
    "status": cmd_status,
    "graph": cmd_graph,
    "export-bundle": cmd_export_bundle,
}


# The one exception -> exit code table; the first matching row wins (subclasses first).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (MetadataValidationError, EXIT_FAILED),
    (LeaseHeldError, EXIT_LEASE),
    (ConfigurationError, EXIT_USAGE),
    (MissingDependencyError, EXIT_USAGE),
    (LakeflowJobMetaError, EXIT_FAILED),
)


def _report(error: Exception) -> int:
    """Print one line per problem (no traceback) and return the exit code."""
    if isinstance(error, MetadataValidationError):
        console = _console()
        for issue in error.issues:
            console.print(f"error: {issue}", markup=False)
        return EXIT_FAILED
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            print(f"error: {error}", file=sys.stderr)
            return code
    # An unexpected failure still prints one line without --debug.
    first_line = (str(error).strip().splitlines() or [""])[0]
    print(
        f"error: {type(error).__name__}: {first_line} (run with --debug for the traceback)", file=sys.stderr
    )
    return EXIT_FAILED


def configure_logging(*, debug: bool = False, monitor_format: str | None = None) -> None:
    """The one logging setup: warnings (or everything with ``--debug``) on stderr; the monitor
    adds one line per cycle, plain text or the bare JSON document per line."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # The SDK warns on every client creation when a host publishes no metadata endpoint;
        # it is noise for a CLI user (real failures surface as exceptions).
        logging.getLogger("databricks.sdk").setLevel(logging.ERROR)
    if monitor_format is not None:
        from lakeflow_job_meta.logs import formatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter(monitor_format))  # type: ignore[arg-type]
        logger = logging.getLogger("lakeflow_job_meta.monitor")
        logger.handlers[:] = [handler]
        # Idle cycles are DEBUG lines: shown with --debug only.
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(debug=args.debug)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.debug:
            raise
        return _report(error)


if __name__ == "__main__":
    sys.exit(main())
