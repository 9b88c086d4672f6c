"""``MetadataStore``: YAML files in, control-table rows out, in one atomic write per table; and
the desired state read back from the rows. ``lakeflow_job_meta.MetadataManager`` is its public
name, built by :mod:`lakeflow_job_meta.wiring`.

Loading is two phases. Phase one parses and validates every file and checks it against what is
already in the tables (duplicate ``source_id`` across files or against SQL-inserted rows). Phase
two computes the row diff and writes it with one MERGE per table. When nothing changed, nothing
is written and the Delta versions do not move, which is what keeps the monitor idle.

Rows whose ``source_file`` is NULL were INSERTed by SQL: YAML never updates or deletes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lakeflow_job_meta.errors import (
    ConfigurationError,
    MassChangeHeldError,
    MetadataIssue,
    MetadataValidationError,
    TableNotFoundError,
)
from lakeflow_job_meta.metadata.files import list_yaml_files, read_yaml_file
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES
from lakeflow_job_meta.metadata.loader import mode_disagreement, parse_document, validate_all
from lakeflow_job_meta.metadata.locations import sorted_issues
from lakeflow_job_meta.metadata.models import MetadataDocument, Module, ModuleSettings, Source
from lakeflow_job_meta.metadata.rows import module_settings_from_row, source_from_row
from lakeflow_job_meta.metadata.validation import run_job_targets
from lakeflow_job_meta.metadata.variables import (
    EnvironmentSelection,
    FileDeclarations,
    LoadedEnvironments,
    check_declared,
    describe_choice,
)
from lakeflow_job_meta.planning.blast_radius import emptied_volume_message, volume_emptied
from lakeflow_job_meta.storage.state_store import StateKey, StateStore, environment_key
from lakeflow_job_meta.storage.tables import ToolTables


@dataclass
class LoadResult:
    """What a load or sync did: rows written per table, files taken, files rejected."""

    files: list[str] = field(default_factory=list)
    rejected: dict[str, list[MetadataIssue]] = field(default_factory=dict)
    sources_upserted: int = 0
    sources_deleted: int = 0
    modules_upserted: int = 0
    modules_deleted: int = 0
    affected_modules: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(
            self.sources_upserted or self.sources_deleted or self.modules_upserted or self.modules_deleted
        )

    @property
    def issues(self) -> list[MetadataIssue]:
        return sorted({issue for issues in self.rejected.values() for issue in issues})

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "rejected": {path: [str(i) for i in issues] for path, issues in self.rejected.items()},
            "sources_upserted": self.sources_upserted,
            "sources_deleted": self.sources_deleted,
            "modules_upserted": self.modules_upserted,
            "modules_deleted": self.modules_deleted,
            "affected_modules": sorted(self.affected_modules),
        }


@dataclass
class DesiredState:
    """The metadata as the orchestrator sees it: valid modules, and issues of the invalid ones."""

    modules: dict[str, Module]
    issues: dict[str, list[MetadataIssue]]
    # Module names that exist in the metadata at all (valid or not): an invalid module is never
    # pruned, its job keeps the last good definition.
    known: set[str]


@dataclass
class _Parsed:
    """The files of one load, parsed: documents, rejected files, what each declares."""

    documents: dict[str, MetadataDocument] = field(default_factory=dict)
    rejected: dict[str, list[MetadataIssue]] = field(default_factory=dict)
    environments: set[EnvironmentSelection] = field(default_factory=set)
    declarations: dict[str, FileDeclarations] = field(default_factory=dict)
    display: dict[str, str] = field(default_factory=dict)
    headers_read: bool = True


@dataclass
class _Prepared:
    """Phase one's outcome: what to write, what replaces what, and every issue found."""

    documents: dict[str, MetadataDocument]
    rejected: dict[str, list[MetadataIssue]]
    replaced: set[str]
    stored_sources: Mapping[str, Mapping[str, Any]]
    stored_modules: Mapping[str, Mapping[str, Any]]
    environments: set[EnvironmentSelection]
    loaded: LoadedEnvironments
    issues: list[MetadataIssue]


def _is_under(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) + os.sep
    return path.startswith(folder)


def _stored_json_equal(stored: Any, wanted: str) -> bool:
    """Compare a stored JSON string with ours by value, so a hand-written row that differs only
    in whitespace or key order is not rewritten."""
    if stored == wanted:
        return True
    try:
        return bool(json.loads(stored) == json.loads(wanted))
    except (TypeError, ValueError):
        return False


def _row_differs(
    stored: Mapping[str, Any] | None, wanted: Mapping[str, Any], json_columns: Iterable[str]
) -> bool:
    if stored is None:
        return True
    json_columns = set(json_columns)
    for column, value in wanted.items():
        if column in json_columns:
            if not _stored_json_equal(stored.get(column), value):
                return True
        elif stored.get(column) != value:
            return True
    return False


class MetadataStore:
    """Loads YAML metadata into the control table and reads the desired state back.

    ``variables``, ``env`` and ``default_warehouse_id`` apply to every load (the monitor's volume
    included) and to the validation of the rows read back.
    """

    def __init__(
        self,
        tables: ToolTables,
        *,
        control_table: str,
        state: StateStore,
        variables: Mapping[str, str] | None = None,
        env: str | None = None,
        default_warehouse_id: str | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ):
        self.tables = tables
        self.control_table = control_table
        self.state = state
        self.variables = dict(variables or {})
        self.env = env
        self.default_warehouse_id = default_warehouse_id
        self.max_file_bytes = max_file_bytes

    # -- tables ------------------------------------------------------------------------------
    def ensure_exists(self) -> None:
        """Create the control table and the tool's tables, or migrate older ones forward."""
        self.tables.ensure_exists()

    # -- loading -----------------------------------------------------------------------------
    def load_yaml(
        self, path: str, var: Mapping[str, str] | None = None, env: str | None = None
    ) -> LoadResult:
        """Add and update the rows of one YAML file (never deletes). Raises
        MetadataValidationError, writing nothing, when the file is invalid."""
        return self.load_files([path], var=var, env=env)

    def load_from_folder(
        self, folder: str, var: Mapping[str, str] | None = None, env: str | None = None
    ) -> LoadResult:
        """Add and update the rows of every YAML file under ``folder`` (never deletes)."""
        return self.load_files(list_yaml_files(folder), var=var, env=env)

    def sync_from_volume(
        self,
        folder: str,
        var: Mapping[str, str] | None = None,
        env: str | None = None,
        *,
        allow_mass_change: bool = False,
    ) -> LoadResult:
        """Make the rows that came from files under ``folder`` equal to those files: add, update,
        and delete rows whose file no longer holds them. All or nothing. A folder that lists no
        file while rows came from it is refused (MassChangeHeldError) unless
        ``allow_mass_change``: an emptied volume must not prune every job."""
        files = list_yaml_files(folder)
        if not files and not allow_mass_change:
            known = self.files_loaded_from(folder)
            if volume_emptied(len(known), 0):
                raise MassChangeHeldError(emptied_volume_message(folder, len(known)))
        return self._load(
            self._read_files(files),
            var=var,
            env=env,
            sync_scope=os.path.abspath(folder),
            strict=True,
        )

    def files_loaded_from(self, folder: str) -> set[str]:
        """The files under ``folder`` whose rows are in the tables now."""
        scope = os.path.abspath(folder)
        rows = [*self.tables.control.read_all(), *self.tables.modules.read_all()]
        return {r["source_file"] for r in rows if r.get("source_file") and _is_under(r["source_file"], scope)}

    def load_files(
        self, paths: Iterable[str], var: Mapping[str, str] | None = None, env: str | None = None
    ) -> LoadResult:
        contents = self._read_files(paths)
        return self._load(contents, var=var, env=env, sync_scope=None, strict=True)

    def _read_files(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Every file's bytes, or MetadataValidationError naming each file that cannot be read."""
        contents: dict[str, bytes | None] = {}
        issues: list[MetadataIssue] = []
        for path in paths:
            read = read_yaml_file(path, self.max_file_bytes)
            if isinstance(read, MetadataIssue):
                issues.append(read)
            else:
                contents[path] = read
        if issues:
            raise MetadataValidationError(issues)
        return contents

    def apply_file_changes(
        self,
        changed: Mapping[str, bytes],
        deleted: Iterable[str],
        *,
        display_root: str | None = None,
    ) -> LoadResult:
        """The monitor's entry: ``changed`` maps absolute paths to their new bytes, ``deleted``
        lists absolute paths that are gone. A bad file is rejected alone (its previous rows stay);
        the others are written. Variables and env come from this manager's configuration."""
        deleted = [os.path.abspath(p) for p in deleted]
        return self._load(
            dict(changed),
            var=None,
            env=None,
            sync_scope=None,
            strict=False,
            deleted_files=deleted,
            display_root=display_root,
        )

    # -- checking without writing --------------------------------------------------------------
    def check_files(
        self, paths: Iterable[str], var: Mapping[str, str] | None = None, env: str | None = None
    ) -> list[MetadataIssue]:
        """Every issue a load of ``paths`` would raise against what the tables hold now (clashes
        with other files and SQL rows, an environment's mode, ...), with load's messages; nothing
        is written. An undeclared ``--env``/``--var`` or a different one from the table's load
        raises ConfigurationError, as the load would."""
        if not self.tables.control.exists():
            raise TableNotFoundError(self.tables.control.name)
        contents: dict[str, bytes | None] = {}
        unreadable: list[MetadataIssue] = []
        for path in paths:
            read = read_yaml_file(path, self.max_file_bytes)
            if isinstance(read, MetadataIssue):
                unreadable.append(read)
            else:
                contents[path] = read
        prepared = self._prepare(contents, var=var, env=env, sync_scope=None, mode="check")
        return sorted_issues([*unreadable, *prepared.issues])

    # -- core --------------------------------------------------------------------------------
    def _parse(
        self, contents: Mapping[str, bytes | None], variables: Mapping[str, str], env: str | None,
        display_root: str | None,
    ) -> _Parsed:  # fmt: skip
        parsed = _Parsed()
        for path, data in contents.items():
            absolute = os.path.abspath(path)
            display = os.path.relpath(absolute, display_root) if display_root else path
            if data is None:
                continue
            result = parse_document(
                data,
                display,
                variables=variables,
                env=env,
                max_bytes=self.max_file_bytes,
                default_warehouse_id=self.default_warehouse_id,
            )
            parsed.headers_read = parsed.headers_read and result.header_read
            parsed.declarations[absolute] = result.declarations
            parsed.display[absolute] = display
            if result.issues or result.document is None:
                parsed.rejected[absolute] = list(result.issues) or [
                    MetadataIssue(display, "", "could not be parsed")
                ]
                continue
            doc = result.document
            if result.environment is not None:
                parsed.environments.add(result.environment)
            parsed.documents[absolute] = replace(
                doc,
                path=absolute,
                sources=tuple(replace(s, source_file=absolute) for s in doc.sources),
                modules=tuple(replace(m, source_file=absolute) for m in doc.modules),
            )
        return parsed

    def loaded_environments(self) -> LoadedEnvironments | None:
        """The ``--env``/``--var`` the table's YAML rows were resolved with (None: never recorded)."""
        if not self.tables.state.exists():
            return None
        return LoadedEnvironments.from_json(self.state.get(StateKey.LOADED_ENVIRONMENTS))

    def _prepare(
        self,
        contents: Mapping[str, bytes | None],
        *,
        var: Mapping[str, str] | None,
        env: str | None,
        sync_scope: str | None,
        mode: str,
        deleted_files: Iterable[str] = (),
        display_root: str | None = None,
    ) -> _Prepared:
        """Phase one of a load: parse, check against the tables, decide what is replaced.
        ``mode``: ``strict`` (load: any issue raises), ``monitor`` (a bad file is dropped alone)
        or ``check`` (validate --control-table: every issue collected, nothing created)."""
        variables = {**self.variables, **(var or {})}
        chosen_env = env if env is not None else self.env
        parsed = self._parse(contents, variables, chosen_env, display_root)
        documents, rejected = parsed.documents, parsed.rejected
        loaded = self.loaded_environments() or LoadedEnvironments()
        if mode != "monitor" and parsed.headers_read:
            known = [*parsed.declarations.values(), *loaded.files.values()]
            check_declared(
                chosen_env,
                variables,
                {name for d in known for name in d.environments},
                {name for d in known for name in d.variables},
            )
        if mode == "strict" and rejected:
            raise MetadataValidationError([i for issues in rejected.values() for i in issues])

        if mode == "check":
            stored_sources = {row["source_id"]: row for row in self.tables.control.read_all()}
            modules_table = self.tables.modules
            stored_modules = (
                {row["module_name"]: row for row in modules_table.read_all()}
                if modules_table.exists()
                else {}
            )
        else:
            self.tables.ensure_exists()
            stored_sources = {row["source_id"]: row for row in self.tables.control.read_all()}
            stored_modules = {row["module_name"]: row for row in self.tables.modules.read_all()}

        deleted_files = set(deleted_files)
        # Files whose rows this load replaces wholesale: files parsed OK, deleted files, and in
        # sync mode every file under the folder (a vanished file's rows go).
        while True:
            replaced = set(documents) | deleted_files
            if sync_scope is not None:
                replaced |= {
                    row["source_file"]
                    for row in [*stored_sources.values(), *stored_modules.values()]
                    if row.get("source_file") and _is_under(row["source_file"], sync_scope)
                }
            record = self._loaded_after(loaded, parsed, documents, replaced, chosen_env, variables)
            cross_issues = self._cross_check(documents, stored_sources, stored_modules, replaced)
            for path, issue in self._mode_issues(loaded, parsed, documents, replaced, chosen_env):
                cross_issues.setdefault(path, []).append(issue)
            if not cross_issues or mode == "check":
                break
            if mode == "strict":
                raise MetadataValidationError([i for issues in cross_issues.values() for i in issues])
            # Monitor mode: drop the offending files, keep their previous rows, retry the rest.
            for path, issues in cross_issues.items():
                rejected.setdefault(path, []).extend(issues)
                documents.pop(path, None)
        issues = [i for found in (*rejected.values(), *cross_issues.values()) for i in found]
        return _Prepared(
            documents, rejected, replaced, stored_sources, stored_modules, parsed.environments, record, issues
        )

    def _loaded_after(
        self,
        loaded: LoadedEnvironments,
        parsed: _Parsed,
        documents: Mapping[str, MetadataDocument],
        replaced: set[str],
        env: str | None,
        variables: Mapping[str, str],
    ) -> LoadedEnvironments:
        """What the table's rows are resolved with after this load; ConfigurationError when its
        ``--env``/``--var`` differ from those of other files' rows it keeps (a mixed table)."""
        kept = {path: d for path, d in loaded.files.items() if path not in replaced}
        new = {path: parsed.declarations[path] for path in documents if parsed.declarations[path].sensitive}
        if kept and new and not loaded.same_choice(env, variables):
            first = sorted(kept)[0]
            raise ConfigurationError(
                f"{self.control_table} holds rows of {len(kept)} file(s) (e.g. {first}) loaded with "
                f"{describe_choice(loaded.env, loaded.variables)}; this load asks for "
                f"{describe_choice(env, variables)}: one control table holds one environment. Load "
                "with the table's --env/--var, or load every file again with these (load --sync FOLDER)"
            )
        if not new:
            return replace(loaded, files=kept)
        return LoadedEnvironments(env, dict(variables), {**kept, **new})

    def _mode_issues(
        self,
        loaded: LoadedEnvironments,
        parsed: _Parsed,
        documents: Mapping[str, MetadataDocument],
        replaced: set[str],
        env: str | None,
    ) -> list[tuple[str, MetadataIssue]]:
        """A loaded file giving the chosen environment another mode than a file already in the
        table: the mode decides job names, so the table would hold both."""
        if env is None:
            return []
        kept = {
            p: d.environments[env]
            for p, d in sorted(loaded.files.items())
            if p not in replaced and env in d.environments
        }
        if not kept:
            return []
        other_path, other_mode = next(iter(kept.items()))
        found = []
        for path in documents:
            mode = parsed.declarations[path].environments.get(env)
            if mode is not None and mode != other_mode:
                issue = mode_disagreement(parsed.display[path], env, mode, other_path, other_mode)
                found.append((path, replace(issue, file=path)))
        return found

    def _load(
        self,
        contents: Mapping[str, bytes | None],
        *,
        var: Mapping[str, str] | None,
        env: str | None,
        sync_scope: str | None,
        strict: bool,
        deleted_files: Iterable[str] = (),
        display_root: str | None = None,
    ) -> LoadResult:
        prepared = self._prepare(
            contents,
            var=var,
            env=env,
            sync_scope=sync_scope,
            mode="strict" if strict else "monitor",
            deleted_files=deleted_files,
            display_root=display_root,
        )
        result = LoadResult(files=sorted(prepared.documents), rejected=prepared.rejected)
        self._record_environments(prepared.environments)
        if prepared.loaded.as_json() != (self.loaded_environments() or LoadedEnvironments()).as_json():
            self.state.put(StateKey.LOADED_ENVIRONMENTS, prepared.loaded.as_json())
        self._write(
            prepared.documents,
            prepared.replaced,
            prepared.stored_sources,
            prepared.stored_modules,
            result,
            update_only=sync_scope is None and not deleted_files,
        )
        return result

    def _record_environments(self, environments: Iterable[EnvironmentSelection]) -> None:
        """Keep the declared ``mode`` of the environment the files were loaded for: plan and
        apply read no YAML, yet the mode decides job names and the tracking key."""
        for selection in sorted(environments, key=lambda e: (e.name, e.mode)):
            key = environment_key(selection.name)
            if (self.state.get(key) or {}).get("mode") != selection.mode:
                self.state.put(key, {"mode": selection.mode})

    def _cross_check(
        self,
        documents: Mapping[str, MetadataDocument],
        stored_sources: Mapping[str, Mapping[str, Any]],
        stored_modules: Mapping[str, Mapping[str, Any]],
        replaced: set[str],
    ) -> dict[str, list[MetadataIssue]]:
        """Validate the state the tables would hold after this load; blame the loaded files."""
        kept_sources: list[Source] = []
        # Kept rows that do not parse (a bad INSERT) take no part in validation, but their keys
        # are still taken: YAML must not overwrite them (checked below).
        unparsed_sources: dict[str, Mapping[str, Any]] = {}
        for row in stored_sources.values():
            if row.get("source_file") in replaced:
                continue
            parsed = source_from_row(row, self.control_table)
            if isinstance(parsed, Source):
                kept_sources.append(parsed)
            else:
                unparsed_sources[row["source_id"]] = row
        kept_modules: list[ModuleSettings] = []
        unparsed_modules: dict[str, Mapping[str, Any]] = {}
        for row in stored_modules.values():
            if row.get("source_file") in replaced:
                continue
            parsed_module = module_settings_from_row(row, self.tables.modules.name)
            if isinstance(parsed_module, ModuleSettings):
                kept_modules.append(parsed_module)
            else:
                unparsed_modules[row["module_name"]] = row
        new_sources = [s for doc in documents.values() for s in doc.sources]
        new_modules = [m for doc in documents.values() for m in doc.modules]
        issues = validate_all(
            [*kept_sources, *new_sources],
            [*kept_modules, *new_modules],
            default_warehouse_id=self.default_warehouse_id,
            control_table=self.control_table,
        )
        blamed = self._blame_taken_keys(documents, unparsed_sources, unparsed_modules)
        for issue in issues:
            for path in documents:
                if issue.file == path or path in issue.related_files:
                    blamed.setdefault(path, []).append(issue)
        # Issues about modules this load touches but located in stored rows only (e.g. a new
        # source creating a cycle with SQL rows) are blamed on every loaded file of that module.
        for issue in issues:
            if any(issue in lst for lst in blamed.values()):
                continue
            for path, doc in documents.items():
                modules_of_doc = {s.module_name for s in doc.sources} | {m.module_name for m in doc.modules}
                if issue.module in modules_of_doc:
                    blamed.setdefault(path, []).append(issue)
        return blamed

    def _blame_taken_keys(
        self,
        documents: Mapping[str, MetadataDocument],
        unparsed_sources: Mapping[str, Mapping[str, Any]],
        unparsed_modules: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, list[MetadataIssue]]:
        """A loaded file whose key belongs to a kept row that does not parse (a bad INSERT):
        YAML never overwrites it."""
        blamed: dict[str, list[MetadataIssue]] = {}
        for path, doc in documents.items():
            claims: list[tuple[Source | ModuleSettings, str, str, str, Mapping[str, Mapping[str, Any]]]] = [
                *((s, s.source_id, "source_id", self.control_table, unparsed_sources) for s in doc.sources),
                *(
                    (m, m.module_name, "module", self.tables.modules.name, unparsed_modules)
                    for m in doc.modules
                ),
            ]
            for model, key, label, table, taken in claims:
                row = taken.get(key)
                if row is None:
                    continue
                origin = row.get("source_file")
                where = f"loaded from {origin}" if origin else "inserted by SQL"
                blamed.setdefault(path, []).append(
                    MetadataIssue(
                        f"{model.source_file}:{model.line}" if model.line else str(model.source_file),
                        "",
                        f"{label} {key!r} already exists in table {table} ({where}); "
                        "YAML never overwrites such rows",
                        module=model.module_name,
                    )
                )
        return blamed

    def _write(
        self,
        documents: Mapping[str, MetadataDocument],
        replaced: set[str],
        stored_sources: Mapping[str, Mapping[str, Any]],
        stored_modules: Mapping[str, Mapping[str, Any]],
        result: LoadResult,
        *,
        update_only: bool,
    ) -> None:
        wanted_sources = {s.source_id: s.content_row() for doc in documents.values() for s in doc.sources}
        wanted_modules = {
            m.module_name: m.content_row()
            for doc in documents.values()
            for m in doc.modules
            if m.settings or not m.is_active
        }
        source_upserts = [
            row
            for source_id, row in wanted_sources.items()
            if _row_differs(
                stored_sources.get(source_id),
                row,
                ("source_config", "target_config", "transformation_config"),
            )
        ]
        module_upserts = [
            row
            for name, row in wanted_modules.items()
            if _row_differs(stored_modules.get(name), row, ("settings",))
        ]
        source_deletes: list[dict[str, Any]] = []
        module_deletes: list[dict[str, Any]] = []
        if not update_only:
            source_deletes = [
                {"source_id": sid}
                for sid, row in stored_sources.items()
                if row.get("source_file") in replaced and sid not in wanted_sources
            ]
            module_deletes = [
                {"module_name": name}
                for name, row in stored_modules.items()
                if row.get("source_file") in replaced and name not in wanted_modules
            ]
        for row in source_upserts:
            result.affected_modules.add(row["module_name"])
            old = stored_sources.get(row["source_id"])
            if old is not None:
                result.affected_modules.add(old["module_name"])
        for row in source_deletes:
            result.affected_modules.add(stored_sources[row["source_id"]]["module_name"])
        result.affected_modules |= {r["module_name"] for r in [*module_upserts, *module_deletes]}
        # Settings first: a reader that sees the new sources also sees their settings.
        if module_upserts or module_deletes:
            self.tables.modules.merge(module_upserts, module_deletes)
        if source_upserts or source_deletes:
            self.tables.control.merge(source_upserts, source_deletes)
        result.sources_upserted, result.sources_deleted = len(source_upserts), len(source_deletes)
        result.modules_upserted, result.modules_deleted = len(module_upserts), len(module_deletes)

    # -- reading the desired state -----------------------------------------------------------
    def desired_state(self, only_modules: set[str] | None = None) -> DesiredState:
        """Valid modules from the tables, plus the issues of modules that are not valid. A bad
        module (invalid JSON in an INSERTed row, a cycle, ...) is reported and skipped; the
        others proceed."""
        if only_modules is not None:
            from lakeflow_job_meta.engine.scoped_rows import read_module_rows

            control_rows, module_rows = read_module_rows(self.tables, only_modules)
        else:
            control_rows, module_rows = self.tables.control.read_all(), self.tables.modules.read_all()
        return desired_state_from_rows(
            control_rows,
            module_rows,
            control_table=self.control_table,
            modules_table=self.tables.modules.name,
            default_warehouse_id=self.default_warehouse_id,
            only_modules=only_modules,
        )


def desired_state_from_rows(
    control_rows: Iterable[Mapping[str, Any]],
    module_rows: Iterable[Mapping[str, Any]],
    *,
    control_table: str,
    modules_table: str,
    default_warehouse_id: str | None = None,
    only_modules: set[str] | None = None,
) -> DesiredState:
    """Parse and validate the rows into modules. With ``only_modules`` only those modules and,
    transitively, the modules their ``run_job`` tasks name are parsed and validated: that is
    everything their validity depends on (source ids and module names are the tables' keys, so
    no duplicate can hide in a module left out), and it keeps a one-module cycle of the monitor
    from re-validating the whole table."""
    source_rows: dict[str, list[Mapping[str, Any]]] = {}
    for row in control_rows:
        source_rows.setdefault(str(row.get("module_name") or ""), []).append(row)
    settings_rows: dict[str, list[Mapping[str, Any]]] = {}
    for row in module_rows:
        settings_rows.setdefault(str(row.get("module_name") or ""), []).append(row)
    known = set(source_rows) | set(settings_rows)

    sources: list[Source] = []
    settings: list[ModuleSettings] = []
    issues: dict[str, list[MetadataIssue]] = {}
    pending = sorted(known if only_modules is None else only_modules, reverse=True)
    wanted: set[str] = set()
    while pending:
        module_name = pending.pop()
        if module_name in wanted:
            continue
        wanted.add(module_name)
        for row in source_rows.get(module_name, []):
            parsed = source_from_row(dict(row), control_table)
            if isinstance(parsed, Source):
                sources.append(parsed)
                pending += [t for t, _ in run_job_targets(parsed.transformation_config) if t not in wanted]
            else:
                issues.setdefault(module_name, []).extend(parsed)
        for row in settings_rows.get(module_name, []):
            parsed_module = module_settings_from_row(dict(row), modules_table)
            if isinstance(parsed_module, ModuleSettings):
                settings.append(parsed_module)
            else:
                issues.setdefault(module_name, []).extend(parsed_module)
    by_name: dict[str, ModuleSettings] = {m.module_name: m for m in settings}
    for issue in validate_all(
        sources, settings, default_warehouse_id=default_warehouse_id, control_table=control_table
    ):
        for module_name in _modules_of_issue(issue, sources, settings):
            issues.setdefault(module_name, []).append(issue)
    grouped: dict[str, list[Source]] = {}
    for source in sources:
        grouped.setdefault(source.module_name, []).append(source)
    modules: dict[str, Module] = {}
    for name, members in grouped.items():
        if name in issues:
            continue
        module_settings = by_name.get(name)
        if module_settings is not None and not module_settings.is_active:
            continue
        modules[name] = Module(
            name=name,
            sources=tuple(sorted(members, key=lambda s: s.source_id)),
            settings=dict(module_settings.settings) if module_settings else {},
        )
    return DesiredState(modules=modules, issues=issues, known=known)


def _modules_of_issue(
    issue: MetadataIssue, sources: list[Source], settings: list[ModuleSettings]
) -> set[str]:
    """Which module an issue belongs to: the validator names it; an issue it cannot place
    (none known today) is charged to every module, so nothing invalid is ever applied."""
    if issue.module:
        return {issue.module}
    return {s.module_name for s in sources} | {m.module_name for m in settings}
