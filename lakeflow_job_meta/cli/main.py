"""``lakeflow-job-meta``: validate, load, plan, apply, monitor, status.

Exit codes: 0 success; 1 metadata errors or a module failed; 2 bad usage or configuration;
3 the writer lease is held by another process (after ``--lease-timeout``, or at once with
``--no-wait``). Errors print one line; ``--debug`` adds the traceback. With ``--json`` stdout holds only the JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakeflow_job_meta.cli.parser import (
    DEFAULT_LEASE_TIMEOUT_SECONDS,
    DEFAULT_LOCAL_CONTROL_TABLE,
    build_parser,
)
from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.errors import (
    ConfigurationError,
    LakeflowJobMetaError,
    LeaseHeldError,
    MetadataValidationError,
    MissingDependencyError,
    TableNotFoundError,
)
from lakeflow_job_meta.vocabulary import DEFAULT_MAX_WORKERS, Outcome, PlanAction, PrunePolicy, TargetKind

if TYPE_CHECKING:  # the commands import what they use when they run (a fast --help)
    from rich.console import Console

    from lakeflow_job_meta.engine.metadata_manager import MetadataStore
    from lakeflow_job_meta.engine.orchestrator import Orchestrator
    from lakeflow_job_meta.engine.results import RunResult
    from lakeflow_job_meta.metadata.models import MetadataDocument
    from lakeflow_job_meta.wiring import Parts, RunSettings

__all__ = ["DEFAULT_LOCAL_CONTROL_TABLE", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LEASE = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away
# Options an empty value would otherwise turn into "not given", falling back to a default table,
# target, folder or no policy at all.
NON_EMPTY_OPTIONS = {
    "control_table": "--control-table",
    "target": "--target",
    "output": "--output",
    "volume_path": "--volume-path",
    "policy": "--policy",
    "profile": "--profile",
    "managed_sql_root": "--managed-sql-root",
    "default_warehouse_id": "--default-warehouse-id",
    "out": "--out",
    "plan": "--plan",
    "bundle_target": "--bundle-target",
    "workspace_host": "--workspace-host",
    "warehouse_id": "--warehouse-id",
}


def empty_value_error(name: str) -> ConfigurationError:
    """The usage error of an option (or wheel parameter) given an empty value."""
    return ConfigurationError(
        f"{name} is empty; give it a value or leave it out (an empty value never falls back to a default)"
    )


def _refuse_empty_options(args: argparse.Namespace) -> None:
    for dest, flag in NON_EMPTY_OPTIONS.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and not value.strip():
            raise empty_value_error(flag)


def _console(stderr: bool = True) -> Console:
    """Results go to stdout, logs and progress to stderr (``stderr=True``)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _emit_json(document: Any) -> None:
    """The one JSON document of ``--json`` on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def _note(args: argparse.Namespace, text: str) -> None:
    """A progress note on stderr (which target, ...); silent with --json, whose stdout says it."""
    if not args.json:
        print(text, file=sys.stderr)


# -- commands ------------------------------------------------------------------------------------
def _variables(args: argparse.Namespace) -> dict[str, str]:
    from lakeflow_job_meta.metadata.variables import parse_var_args

    return parse_var_args(args.var)


def cmd_validate(args: argparse.Namespace) -> int:
    """The findings are validate's result: stdout."""
    from lakeflow_job_meta.metadata.loader import parse_files

    paths = _expand_paths(args.paths)
    documents: list[MetadataDocument] = []
    if args.control_table is not None:
        # Against the table: load's own checks (clashes with other files and SQL rows, the
        # environment's mode, --env/--var), load's messages; nothing is written.
        from lakeflow_job_meta.wiring import RunSettings, build_manager, build_parts

        settings = RunSettings(
            args.control_table, default_warehouse_id=args.default_warehouse_id, cli=True, clock=args.clock
        )
        manager = build_manager(settings, build_parts(settings))
        issues = manager.check_files(paths, var=_variables(args), env=args.env)
        if args.show:
            documents, _ = parse_files(
                paths,
                variables=_variables(args),
                env=args.env,
                default_warehouse_id=args.default_warehouse_id,
            )
    else:
        documents, issues = parse_files(
            paths, variables=_variables(args), env=args.env, default_warehouse_id=args.default_warehouse_id
        )
    if args.json:
        doc: dict[str, Any] = {"valid": not issues, "files": paths, "errors": [i.as_dict() for i in issues]}
        if args.show:
            doc["modules"] = _resolved_modules(documents)
        _emit_json(doc)
    else:
        console = _console(stderr=False)
        if args.show:
            _print_resolved(_resolved_modules(documents))
        for issue in issues:
            console.print(f"[red]error[/red] {issue}", markup=True)
        if not issues:
            console.print(f"[green]valid[/green]: {len(paths)} file(s)")
        else:
            console.print(f"{len(issues)} error(s) in {len(paths)} file(s)")
    return EXIT_OK if not issues else EXIT_FAILED


def _resolved_modules(documents: Sequence[Any]) -> list[dict[str, Any]]:
    """Each module of the parsed files as it will be stored: the file's defaults merged in and
    variables substituted, its sources under it."""
    resolved = []
    for document in documents:
        for module in document.modules:
            sources = [
                {
                    "source_id": s.source_id,
                    "source_type": s.source_type,
                    "execution_order": s.execution_order,
                    **({"is_active": False} if not s.is_active else {}),
                    **({"source_config": s.source_config} if s.source_config else {}),
                    **({"target_config": s.target_config} if s.target_config else {}),
                    "transformation_config": s.transformation_config,
                }
                for s in document.sources
                if s.module_name == module.module_name
            ]
            resolved.append(
                {
                    "file": document.path,
                    "module_name": module.module_name,
                    **({"is_active": False} if not module.is_active else {}),
                    **module.settings,
                    "sources": sources,
                }
            )
    return resolved


def _print_resolved(modules: list[dict[str, Any]]) -> None:
    import yaml

    for module in modules:
        body = {key: value for key, value in module.items() if key != "file"}
        sys.stdout.write(f"# {module['file']}\n")
        sys.stdout.write(yaml.safe_dump([body], sort_keys=False, allow_unicode=True, width=100))


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

    settings = RunSettings(
        args.control_table, default_warehouse_id=args.default_warehouse_id, cli=True, clock=args.clock
    )
    manager = build_manager(settings, build_parts(settings))
    variables = _variables(args)
    if args.sync:
        results = [
            manager.sync_from_volume(
                path, var=variables, env=args.env, allow_mass_change=args.allow_mass_change
            )
            for path in args.paths
        ]
    else:
        results = [manager.load_files(_expand_paths(args.paths), var=variables, env=args.env)]
    if args.json:
        _emit_json({"results": [r.as_dict() for r in results]})
    else:
        console = _console(stderr=False)
        for r in results:
            console.print(
                f"loaded {len(r.files)} file(s) into {args.control_table}: "
                f"{r.sources_upserted} source row(s) written, {r.sources_deleted} deleted, "
                f"{r.modules_upserted} module row(s) written, {r.modules_deleted} deleted"
                + ("" if r.changed else " (nothing changed)"),
                markup=False,
            )
    return EXIT_OK


def _run_settings(args: argparse.Namespace) -> RunSettings:
    from lakeflow_job_meta.wiring import RunSettings

    return RunSettings(
        control_table=args.control_table,
        target=args.target,
        env=args.env,
        prune=getattr(args, "prune", PrunePolicy.PAUSE),
        default_pause_status=getattr(args, "default_pause_status", None),
        default_warehouse_id=args.default_warehouse_id,
        managed_sql_root=args.managed_sql_root,
        profile=args.profile,
        policy_path=getattr(args, "policy", None),
        allow_mass_change=getattr(args, "allow_mass_change", False),
        max_workers=getattr(args, "max_workers", DEFAULT_MAX_WORKERS),
        max_requests_per_second=getattr(args, "max_rps", None),
        variables=_variables(args),
        cli=True,
        clock=args.clock,
    )


def _warn_without_policy(args: argparse.Namespace, orchestrator: Orchestrator) -> None:
    """With no policy a run says, in one line, that nothing is restricted: every run against a
    workspace (it writes jobs), once per control table for a bundle folder (it writes files a
    person deploys; the local demo's every command repeated it)."""
    if args.policy or args.json:  # --json: stdout carries the one document, stderr stays quiet
        return
    from lakeflow_job_meta.metadata.policy import NO_POLICY_WARNING

    if orchestrator.target.kind == TargetKind.BUNDLE and not _first_time(
        f"no-policy-{orchestrator.table_id}"
    ):
        return
    print(f"warning: {NO_POLICY_WARNING}", file=sys.stderr)


def _first_time(notice: str) -> bool:
    """True the first time ``notice`` is asked about on this machine (a marker file in the user
    cache folder); True again whenever the marker cannot be written, so nothing goes unsaid."""
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    marker = Path(base) / "lakeflow_job_meta" / "notices" / notice
    if marker.exists():
        return False
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
    return True


def cmd_plan(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.wiring import build_orchestrator

    orchestrator = build_orchestrator(_run_settings(args))
    _note(args, orchestrator.describe_target())
    _warn_without_policy(args, orchestrator)
    named = orchestrator.select_modules(args.module) if args.module else None
    plan = orchestrator.plan(named, check_drift=not args.no_drift)
    if args.out:
        from lakeflow_job_meta.engine.plan_file import write_plan_file

        write_plan_file(
            args.out,
            plan,
            control_table=orchestrator.control_table,
            target=orchestrator.target_key,
            check_drift=not args.no_drift,
            named=named,
        )
        _note(args, f"plan written to {args.out}; apply it with `apply --plan {args.out}`")
    if args.json:
        _emit_json(plan.as_json())
    else:
        sys.stdout.write(plan.render_text() + "\n")
    return EXIT_OK if not any(c.action == PlanAction.ERROR for c in plan.changes) else EXIT_FAILED


def cmd_export_bundle(args: argparse.Namespace) -> int:
    args.target = f"bundle:{args.output}"
    return cmd_apply(args)


def cmd_apply(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.wiring import build_orchestrator

    if args.plan and args.module:
        raise ConfigurationError("--plan applies the modules of its plan; leave out --module")
    lease_timeout = getattr(args, "lease_timeout", DEFAULT_LEASE_TIMEOUT_SECONDS)
    if lease_timeout < 0:
        raise ConfigurationError(f"--lease-timeout must be >= 0, got {lease_timeout:g}")
    settings = _run_settings(args)
    settings.lease_timeout = 0.0 if args.no_wait else lease_timeout
    bundle_target = _bundle_target(args)  # a usage error before credentials are even looked at
    orchestrator = build_orchestrator(settings)
    _note(args, orchestrator.describe_target())
    _warn_without_policy(args, orchestrator)
    if not orchestrator.tables.control.exists():
        # apply creates the tool's own tables, but never an empty control table from a typo.
        raise TableNotFoundError(orchestrator.tables.control.name)
    # Before the apply, so a clash with the user's own target file writes nothing at all.
    scaffolded = _scaffold_target(orchestrator, bundle_target)
    from lakeflow_job_meta.cli.progress import ProgressBar

    with ProgressBar(sys.stderr) as bar:
        shown = None if args.json else bar
        if args.plan:
            from lakeflow_job_meta.engine.plan_file import read_plan_file

            result = orchestrator.apply_plan(
                read_plan_file(args.plan), auto_run=args.auto_run, progress=shown
            )
        elif args.module:
            named = orchestrator.select_modules(args.module)
            result = orchestrator.reconcile(named, auto_run=args.auto_run, progress=shown, named=named)
        else:
            result = orchestrator.run_all_modules(auto_run=args.auto_run, progress=shown)
    if scaffolded and bundle_target is not None and not args.json:
        print(
            f"wrote {scaffolded}: deploy with `databricks bundle deploy -t {bundle_target[0]}`",
            file=sys.stderr,
        )
    if args.json:
        doc = result.as_dict()
        doc["bundle_target_file"] = scaffolded
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
        _emit_json(doc)
    else:
        _print_run(_console(stderr=False), result)
    return EXIT_OK if result.ok else EXIT_FAILED


# What happened to a module, as the apply summary says it ("1 created", not "1 create").
_DONE = {
    PlanAction.CREATE: "created",
    PlanAction.ADOPT: "adopted",
    PlanAction.ADOPT_EXISTING: "adopted",
    PlanAction.UPDATE: "updated",
    PlanAction.DELETE: "deleted",
    PlanAction.PAUSE: "paused",
    PlanAction.NOOP: "unchanged",
    PlanAction.ORPHANED: "orphaned",
    PlanAction.ERROR: "with errors",
}


def _bundle_target(args: argparse.Namespace) -> tuple[str, str] | None:
    """``--bundle-target NAME --workspace-host URL``, checked before anything is written: both or
    neither, and only for a bundle folder (a workspace target has no bundle to deploy)."""
    from lakeflow_job_meta.engine.targets.base import TargetSpec, default_target

    name, host = getattr(args, "bundle_target", None), getattr(args, "workspace_host", None)
    if name is None and host is None:
        return None
    if name is None or host is None:
        raise ConfigurationError("--bundle-target and --workspace-host go together: give both")
    spec = TargetSpec.parse(args.target) if args.target else default_target()
    if spec.kind != TargetKind.BUNDLE:
        raise ConfigurationError(
            "--bundle-target cannot apply to the workspace target: it names where a bundle folder is "
            "deployed; use it with --target bundle:DIR or export-bundle"
        )
    from lakeflow_job_meta.adapters.bundle import check_target

    try:
        check_target(name, host)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    return name, host


def _scaffold_target(orchestrator: Orchestrator, bundle_target: tuple[str, str] | None) -> str | None:
    """Write the user's target file (once), in a folder that is this table's to write (another
    table's folder is refused first); a clash with the file the user owns is exit 2."""
    if bundle_target is None:
        return None
    from lakeflow_job_meta.adapters.bundle import scaffold_target
    from lakeflow_job_meta.engine.targets.bundle import BundleTarget

    target = orchestrator.target
    if not isinstance(target, BundleTarget):  # _bundle_target refused every other target
        raise ConfigurationError("--bundle-target needs a bundle target")
    target.check_owner()

    try:
        return scaffold_target(target.directory, *bundle_target)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


def _print_run(console: Console, result: RunResult) -> None:
    from lakeflow_job_meta.planning.plan import ORPHANED_REASON

    symbols = {
        PlanAction.CREATE: "+",
        PlanAction.ADOPT: "+",
        PlanAction.ADOPT_EXISTING: "+",
        PlanAction.UPDATE: "~",
        PlanAction.RENAME: "~",
        PlanAction.DELETE: "-",
        PlanAction.PAUSE: "!",
        PlanAction.NOOP: " ",
        PlanAction.ERROR: "x",
    }
    for r in sorted(result.results, key=lambda r: r.module):
        if r.action == PlanAction.NOOP and r.ok and not r.other_writes:
            continue
        if r.action == PlanAction.ORPHANED and r.ok:
            console.print(f"! {r.module}: {ORPHANED_REASON}", markup=False)
            continue
        if r.outcome == Outcome.ERROR:
            line = f"x {r.module}: {r.action}" + (" failed" if r.action != PlanAction.ERROR else "")
        elif r.outcome == Outcome.PENDING:
            line = f"~ {r.module}: {r.action} pending"
        elif not r.ok:
            line = f"  {r.module}: {r.action} {r.outcome}"
        else:
            line = f"{symbols.get(r.action, '?')} {r.module}: {r.action}"
        if r.job_id:
            line += f" (job {r.job_id})"
        if r.drift and r.ok:
            line += " [drift restored]"
        if r.renamed_from:
            line += f" (renamed from {r.renamed_from})"
        if r.error:
            line += f": {r.error}"
        console.print(line, markup=False)
        if r.outcome == Outcome.PENDING:
            for item in r.diff:
                console.print(f"      {item}", markup=False)
    done = Counter(r.action for r in result.results if r.ok)
    parts = [f"{n} {_DONE.get(action, action)}" for action, n in sorted(done.items())]
    outcomes = Counter(r.outcome for r in result.results if not r.ok)
    labels = (
        (Outcome.ERROR, "failed"),
        (Outcome.HELD, "held back"),
        (Outcome.SKIPPED, "skipped"),
        (Outcome.PENDING, "pending (sync: manual)"),
    )
    for outcome, label in labels:
        if outcomes[outcome]:
            parts.append(f"{outcomes[outcome]} {label}")
    console.print(
        f"Apply complete: {', '.join(parts) or 'no modules'}; {result.writes_text()}.", markup=False
    )
    for warning in result.warnings:  # held-back changes and the like: problems go to stderr
        print(f"warning: {warning}", file=sys.stderr)


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
        runs_interval_seconds=args.runs_interval_seconds or None,
        runs_retention_days=args.runs_retention_days,
    )
    monitor = build_monitor(_run_settings(args), watch)
    _note(args, monitor.orchestrator.describe_target())
    _warn_without_policy(args, monitor.orchestrator)
    install_signal_handlers(monitor)
    configure_logging(debug=args.debug, monitor_format=args.log_format)
    if args.once:
        report = monitor.run_once()
        if args.json:
            _emit_json(report.as_dict())
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
        variables=_variables(args),
        default_warehouse_id=args.default_warehouse_id,
        cli=True,
    )
    job = build_orchestrator(settings).compile_one(args.module)
    graph = task_graph(job.job_name, job.settings, job.managed_files)
    if args.json:
        _emit_json(
            {
                "module": args.module,
                **graph.as_dict(),
                args.format: render_graph(graph, args.format),
            }
        )
    else:
        sys.stdout.write(render_graph(graph, args.format))
    return EXIT_OK


def _table_parts(args: argparse.Namespace) -> tuple[RunSettings, Parts, MetadataStore]:
    from lakeflow_job_meta.wiring import RunSettings, build_manager, build_parts

    settings = RunSettings(args.control_table, profile=args.profile, cli=True, clock=args.clock)
    parts = build_parts(settings)
    return settings, parts, build_manager(settings, parts)


def _status_runs(settings: Any, parts: Any) -> list[dict[str, Any]]:
    """The runs ``status --runs`` judges: the runs table (when a monitor keeps one) and one
    paged ``jobs/runs/list`` of the last two days, whatever the number of jobs."""
    from lakeflow_job_meta.adapters.databricks_jobs import WorkspaceJobs
    from lakeflow_job_meta.engine.runs import FIRST_LOOKBACK_SECONDS, current_runs
    from lakeflow_job_meta.wiring import workspace_client

    gateway = WorkspaceJobs(workspace_client(settings.profile, clock=settings.clock))
    tables = parts.tables
    return current_runs(
        tables.runs, tables.jobs, gateway, now=parts.clock.now(), lookback_seconds=FIRST_LOOKBACK_SECONDS
    )


def cmd_status(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.engine.status import read_status, render_status

    settings, parts, manager = _table_parts(args)
    parts.tables.require_exists()
    desired = manager.desired_state()
    runs = None
    now = parts.clock.now()
    if args.runs:
        # A table whose jobs are only in bundle folders needs no credentials to say so.
        _require_workspace_jobs(read_status(parts.tables, args.control_table, desired=desired, now=now))
        runs = _status_runs(settings, parts)
    status = read_status(parts.tables, args.control_table, desired=desired, runs=runs, now=now)
    if args.json:
        _emit_json(status)
    else:
        sys.stdout.write(render_status(status) + "\n")
    return EXIT_OK


def _require_workspace_jobs(status: dict[str, Any]) -> None:
    """``--runs`` reads runs from a workspace: on a table whose jobs are only in bundle folders it
    cannot apply, and says why (exit 2) instead of failing on credentials nobody needed."""
    entries = [entry for module in status["modules"] for entry in module["targets"]]
    if any(entry.get("kind") == TargetKind.WORKSPACE for entry in entries):
        return
    folders = sorted({entry["target"] for entry in entries})
    where = (
        f"only in bundle folders ({', '.join(folders)})" if folders else "not applied to any workspace yet"
    )
    raise ConfigurationError(
        f"--runs reads each job's latest run from a workspace, and the jobs of {status['control_table']} "
        f"are {where}: deploy a bundle with `databricks bundle deploy` and see its runs with "
        "`databricks bundle run` or the Jobs UI, or apply with --target workspace"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Blocks until interrupted; the page is read-only, so a crash loses nothing."""
    from lakeflow_job_meta.web.serve import create_app, serve
    from lakeflow_job_meta.wiring import workspace_client

    if args.warehouse_id:
        from lakeflow_job_meta.web.databricks_app import warehouse_app

        app = warehouse_app(args.control_table, args.warehouse_id, workspace_client(args.profile))
    else:
        # With --profile the module pages compare workspace jobs with their live settings.
        workspace = (lambda: workspace_client(args.profile)) if args.profile else None
        app = create_app(args.control_table, workspace=workspace)
    _note(args, f"serving {args.control_table} on http://{args.host}:{args.port}/ (read-only)")
    serve(app, host=args.host, port=args.port)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from lakeflow_job_meta.engine.status import read_history, render_history

    _, parts, _ = _table_parts(args)
    rows = read_history(parts.tables, module=args.module, since=args.since, limit=args.limit)
    if args.json:
        _emit_json({"control_table": args.control_table, "history": rows})
    else:
        sys.stdout.write(render_history(rows) + "\n")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    _, parts, manager = _table_parts(args)
    manager.ensure_exists()
    tables = {table.spec.kind: table.name for table in parts.tables.all()}
    loaded = None
    if args.with_examples:
        loaded = manager.load_files([_examples_file()])
    if args.json:
        _emit_json(
            {
                "control_table": args.control_table,
                "tables": tables,
                "examples": loaded.as_dict() if loaded else None,
            }
        )
    else:
        console = _console(stderr=False)
        for kind, name in tables.items():
            console.print(f"{kind:8} {name}", markup=False)
        if loaded is not None:
            console.print(
                f"examples loaded: {loaded.sources_upserted} source row(s), {loaded.modules_upserted} module row(s)",
                markup=False,
            )
    return EXIT_OK


def _examples_file() -> str:
    """The shipped example metadata (``examples/metadata_examples.yaml``, packaged as data)."""
    from importlib.resources import files

    return os.path.realpath(str(files("lakeflow_job_meta") / "data" / "metadata_examples.yaml"))


COMMANDS = {
    "init": cmd_init,
    "validate": cmd_validate,
    "load": cmd_load,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "export-bundle": cmd_export_bundle,
    "monitor": cmd_monitor,
    "status": cmd_status,
    "history": cmd_history,
    "serve": cmd_serve,
    "graph": cmd_graph,
}


# The one exception -> exit code table; the first matching row wins (subclasses first).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (MetadataValidationError, EXIT_FAILED),
    (LeaseHeldError, EXIT_LEASE),
    (ConfigurationError, EXIT_USAGE),
    (MissingDependencyError, EXIT_USAGE),
    (LakeflowJobMetaError, EXIT_FAILED),
)


def _report(error: Exception, *, as_json: bool = False) -> int:
    """Print one line per problem (no traceback) on stderr and return the exit code; with
    ``--json`` stdout still gets its one document, saying what failed."""
    code = next((c for kind, c in EXIT_CODES if isinstance(error, kind)), EXIT_FAILED)
    if isinstance(error, MetadataValidationError):
        lines = [f"error: {issue}" for issue in error.issues]
        issues = [i.as_dict() for i in error.issues]
    elif isinstance(error, LakeflowJobMetaError):
        lines, issues = [f"error: {error}"], []
    else:  # an unexpected failure still prints one line without --debug
        first_line = (str(error).strip().splitlines() or [""])[0]
        lines = [f"error: {type(error).__name__}: {first_line} (run with --debug for the traceback)"]
        issues = []
    for line in lines:
        print(line, file=sys.stderr)
    if as_json:
        _emit_json(
            {"ok": False, "exit_code": code, "error": lines[0].removeprefix("error: "), "errors": issues}
        )
    return code


def configure_logging(*, debug: bool = False, monitor_format: str | None = None) -> None:
    """The one logging setup: warnings (or everything with ``--debug``) on stderr; the monitor
    adds its cycle lines (idle ones at DEBUG), plain text or one JSON document per line."""
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
        from lakeflow_job_meta.logs import CurrentStreamHandler, formatter

        handler = CurrentStreamHandler("stderr")
        handler.setFormatter(formatter(monitor_format))  # type: ignore[arg-type]
        logger = logging.getLogger("lakeflow_job_meta.monitor")
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.propagate = False


def _quiet_broken_pipe() -> int:
    """The reader went away (``| head``): stop quietly. Point stdout at /dev/null so the
    interpreter's final flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run one command; ``clock`` (default: the system clock) is what every wait, lease and
    timestamp of the command runs on, the SDK's retry waits included."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.clock = clock
    configure_logging(debug=args.debug)
    try:
        _refuse_empty_options(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.debug:
            raise
        try:
            return _report(error, as_json=args.json)
        except BrokenPipeError:
            return _quiet_broken_pipe()


def entry() -> None:
    """The console script: run :func:`main`, flush, and leave without the interpreter's final
    teardown. The command's work is done and flushed by then; under load, a native library's
    threads (seen as C++ ``terminate called without an active exception``, exit -6) sometimes
    abort that teardown and turn a successful command into a crash."""
    try:
        code = main()
    except SystemExit as stop:  # argparse's usage errors and --help
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or EXIT_BROKEN_PIPE
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry()
