"""Entry points: YAML text or files -> validated models, plus every issue with file:line.

Pipeline per file: safe YAML with line numbers -> schema check of the header (variables,
environments) -> environment choice and ``${var.*}`` substitution -> the file's ``defaults``
merged under every module -> schema check of the whole document -> models -> semantic validation. A file is all or nothing: ``document`` is None when it
could not be turned into models; when it could, ``issues`` may still hold semantic problems, and
callers treat any issue as blocking for that file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.defaults import with_defaults
from lakeflow_job_meta.metadata.files import read_yaml_file
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES
from lakeflow_job_meta.metadata.locations import (
    FieldPath,
    LineMap,
    Locator,
    YamlOrigin,
    sorted_issues,
    yaml_issue,
)
from lakeflow_job_meta.metadata.models import MetadataDocument, ModuleSettings, Source
from lakeflow_job_meta.metadata.row_shape import RowShape
from lakeflow_job_meta.metadata.schema import schema_problems
from lakeflow_job_meta.metadata.tags import Cloud
from lakeflow_job_meta.metadata.validation import validate_all
from lakeflow_job_meta.metadata.variables import (
    DEFAULT_MODE,
    EnvironmentSelection,
    FileDeclarations,
    apply_variables,
    check_declared,
    undeclared_overrides,
)
from lakeflow_job_meta.metadata.yaml_loader import LoadedYaml, YamlLimits, load_yaml
from lakeflow_job_meta.vocabulary import EnvironmentMode

__all__ = [
    "FilesParseResult",
    "ParseResult",
    "parse_document",
    "parse_files",
    "parse_files_detailed",
    "validate_all",
]

# Keys of a YAML module that are not job settings.
_MODULE_KEYS = ("module_name", "sources", "is_active")
_MODULE_FIELD = re.compile(r"^modules\[(\d+)\]")


@dataclass(frozen=True)
class ParseResult:
    """One file's outcome. ``locator`` maps its models back to lines for :func:`validate_all`."""

    document: MetadataDocument | None
    issues: list[MetadataIssue]
    environment: EnvironmentSelection | None = None
    locator: Locator = field(default_factory=Locator)
    declared_variables: frozenset[str] = frozenset()
    # The file's environments (name -> mode); ``header_read`` is False when the file could not
    # be read as far as its variables and environments (then what it declares is unknown).
    declared_environments: Mapping[str, EnvironmentMode] = field(default_factory=dict)
    header_read: bool = False

    @property
    def declarations(self) -> FileDeclarations:
        return FileDeclarations(dict(self.declared_environments), self.declared_variables)


class _HeaderRead(TypedDict):
    """The :class:`ParseResult` fields known once a file's header passed the schema."""

    declared_variables: frozenset[str]
    declared_environments: Mapping[str, EnvironmentMode]
    header_read: bool


@dataclass(frozen=True)
class FilesParseResult:
    """Many files' outcome: documents that parsed, every issue (per file and across files)."""

    documents: list[MetadataDocument]
    issues: list[MetadataIssue]
    environment: EnvironmentSelection | None = None


def parse_document(
    text: str | bytes,
    path: str,
    *,
    variables: Mapping[str, str] | None = None,
    env: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    default_warehouse_id: str | None = None,
    cloud: Cloud | None = None,
) -> ParseResult:
    """Parse and validate one YAML document; ``path`` is what messages call the file.

    ``variables`` are ``--var`` overrides; ones this file does not declare are ignored (they may
    belong to another file). Semantic checks see this file alone, so references that another
    file or a SQL row could satisfy (``depends_on`` targets, ``run_job`` modules) are left to
    :func:`validate_all` over the whole set.
    """
    result = _parse(text, path, variables, env, max_bytes, default_warehouse_id)
    if result.document is None:
        return result
    issues = validate_all(
        result.document.sources,
        result.document.modules,
        default_warehouse_id=default_warehouse_id,
        locator=result.locator,
        partial=True,
        cloud=cloud,
    )
    return replace(result, issues=issues)


def parse_files(
    paths: Iterable[str],
    variables: Mapping[str, str] | None = None,
    env: str | None = None,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    default_warehouse_id: str | None = None,
    extra_sources: Iterable[Source] = (),
    extra_modules: Iterable[ModuleSettings] = (),
    control_table: str | None = None,
    cloud: Cloud | None = None,
) -> tuple[list[MetadataDocument], list[MetadataIssue]]:
    """Read, parse and cross-validate files. See :func:`parse_files_detailed`."""
    result = parse_files_detailed(
        paths,
        variables,
        env,
        max_bytes=max_bytes,
        default_warehouse_id=default_warehouse_id,
        extra_sources=extra_sources,
        extra_modules=extra_modules,
        control_table=control_table,
        cloud=cloud,
    )
    return result.documents, result.issues


def parse_files_detailed(
    paths: Iterable[str],
    variables: Mapping[str, str] | None = None,
    env: str | None = None,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    default_warehouse_id: str | None = None,
    extra_sources: Iterable[Source] = (),
    extra_modules: Iterable[ModuleSettings] = (),
    control_table: str | None = None,
    cloud: Cloud | None = None,
) -> FilesParseResult:
    """Parse every file, then validate them as one set: duplicates across files, dependencies
    and ``run_job`` targets are checked together. ``extra_sources``/``extra_modules`` (rows
    INSERTed by SQL) join the cross-file checks so clashes with them are reported too.
    Documents with their own schema or syntax errors are left out of ``documents``."""
    overrides = dict(variables or {})
    documents: list[MetadataDocument] = []
    issues: list[MetadataIssue] = []
    locator = Locator(control_table)
    declared: set[str] = set()
    declared_environments: set[str] = set()
    headers_read = True
    environments: dict[str, EnvironmentSelection] = {}
    for path in paths:
        content = read_yaml_file(path, max_bytes)
        if isinstance(content, MetadataIssue):
            issues.append(content)
            continue
        result = _parse(content, path, overrides, env, max_bytes, default_warehouse_id)
        issues.extend(result.issues)
        declared |= result.declared_variables
        declared_environments |= set(result.declared_environments)
        headers_read = headers_read and result.header_read
        if result.environment is not None:
            environments[path] = result.environment
        if result.document is not None:
            documents.append(result.document)
            locator.update(result.locator)
    if headers_read:  # every file said what it declares: an undeclared --env/--var is exit 2
        check_declared(env, overrides, declared_environments, declared)
    else:
        issues.extend(undeclared_overrides(overrides, declared))
    selection = _agreed_environment(environments, issues)
    cross = validate_all(
        [*(s for d in documents for s in d.sources), *extra_sources],
        [*(m for d in documents for m in d.modules), *extra_modules],
        default_warehouse_id=default_warehouse_id,
        control_table=control_table,
        locator=locator,
        cloud=cloud,
    )
    issues.extend(cross)
    return FilesParseResult(documents, sorted_issues(issues), selection)


def _agreed_environment(
    found: Mapping[str, EnvironmentSelection], issues: list[MetadataIssue]
) -> EnvironmentSelection | None:
    """Every file must give the chosen environment the same mode; a production file deployed
    with development prefixes (or the reverse) would be a silent mistake."""
    if not found:
        return None
    first_path, first = next(iter(found.items()))
    for path, selection in found.items():
        if selection.mode != first.mode:
            issues.append(mode_disagreement(path, selection.name, selection.mode, first_path, first.mode))
    return first


def mode_disagreement(path: str, env: str, mode: str, other_path: str, other_mode: str) -> MetadataIssue:
    """The one message for two files giving an environment different modes (``validate`` across
    the files given, ``load`` and ``validate --control-table`` against the files in the table)."""
    return MetadataIssue(
        f"{path}:1", f"environments.{env}.mode", f"is {mode} here but {other_mode} in {other_path}", file=path
    )


def _parse(
    content: str | bytes,
    path: str,
    overrides: Mapping[str, str] | None,
    env: str | None,
    max_bytes: int,
    default_warehouse_id: str | None = None,
) -> ParseResult:
    loaded = load_yaml(content, path, YamlLimits(max_bytes=max_bytes))
    if not isinstance(loaded, LoadedYaml):
        return ParseResult(None, loaded)
    if isinstance(loaded.data, list):
        rows = RowShape.from_rows(loaded.data, loaded.lines)
        result = _parse_data(rows.document, rows.lines, path, overrides, env, rows, default_warehouse_id)
        return replace(result, issues=sorted_issues(rows.restore_all(result.issues)))
    return _parse_data(loaded.data, loaded.lines, path, overrides, env, None, default_warehouse_id)


def _parse_data(
    data: dict[str, Any],
    lines: LineMap,
    path: str,
    overrides: Mapping[str, str] | None,
    env: str | None,
    rows: RowShape | None,
    default_warehouse_id: str | None = None,
) -> ParseResult:
    """Schema, variables and models of one parsed document. ``rows`` is set for a row-shaped
    file: its modules carry no settings, and its models are located at the file's own rows."""
    header = schema_problems(data, "header")
    if header:
        return ParseResult(
            None, sorted_issues(yaml_issue(path, lines, p.path, p.message, p.line_path) for p in header)
        )
    declared = frozenset(data.get("variables") or {})
    read: _HeaderRead = {
        "declared_variables": declared,
        "declared_environments": {  # the header passed the schema: every mode is one of its enum
            name: EnvironmentMode((spec or {}).get("mode", DEFAULT_MODE))
            for name, spec in (data.get("environments") or {}).items()
        },
        "header_read": True,
    }
    substituted = apply_variables(data, path, lines, overrides=overrides, env=env)
    full = {**data, "modules": substituted.modules}
    if substituted.issues:
        return ParseResult(
            None,
            sorted_issues(_with_modules(substituted.issues, full)),
            substituted.environment,
            **read,
        )
    if substituted.defaults is not None:
        # A bad default is reported once, at the defaults block, not again in every module.
        wrong = schema_problems(substituted.defaults, "defaults")
        if wrong:
            return ParseResult(
                None,
                sorted_issues(
                    yaml_issue(path, lines, ("defaults", *p.path), p.message, ("defaults", *p.line_path))
                    for p in wrong
                ),
                substituted.environment,
                **read,
            )
        full["modules"] = with_defaults(full["modules"], substituted.defaults)
    problems = schema_problems(full)
    if problems:
        issues = [yaml_issue(path, lines, p.path, p.message, p.line_path) for p in problems]
        issues += _semantic_issues_of_the_rest(
            full, lines, path, rows, [p.path for p in problems], default_warehouse_id
        )
        return ParseResult(
            None,
            sorted_issues(_with_modules(issues, full)),
            substituted.environment,
            **read,
        )
    sources, modules, locator = _models(full, lines, path, rows)
    document = MetadataDocument(path=path, sources=tuple(sources), modules=tuple(modules))
    return ParseResult(document, [], substituted.environment, locator, **read)


def _semantic_issues_of_the_rest(
    full: Mapping[str, Any],
    lines: LineMap,
    path: str,
    rows: RowShape | None,
    bad_paths: list[FieldPath],
    default_warehouse_id: str | None,
) -> list[MetadataIssue]:
    """Every problem of a file in one pass: the semantic checks of the parts the schema accepted
    run too. A source with a schema problem is left out (its ids still count as known, so nothing
    that depends on it is blamed); a module whose own settings have one is checked without them
    (settings-dependent checks skipped), so one mistake never invents another."""
    raw_modules = full.get("modules")
    if not isinstance(raw_modules, list):
        return []
    # ``modules`` and ``sources`` are lists: the parts after them are indexes.
    bad_sources = {
        (p[1], p[3])
        for p in bad_paths
        if len(p) >= 4
        and p[0] == "modules"
        and p[2] == "sources"
        and isinstance(p[1], int)
        and isinstance(p[3], int)
    }
    bad_settings = {
        p[1]
        for p in bad_paths
        if len(p) >= 2
        and p[0] == "modules"
        and isinstance(p[1], int)
        and not (len(p) >= 3 and p[2] == "sources" and len(p) >= 4)
    }
    if any(len(p) < 2 or p[0] != "modules" for p in bad_paths):
        return []  # the document's own shape is wrong: nothing below it can be judged
    named = {
        str(raw["source_id"])
        for entry in raw_modules
        if isinstance(entry, Mapping) and isinstance(entry.get("sources"), list)
        for raw in entry["sources"]
        if isinstance(raw, Mapping) and isinstance(raw.get("source_id"), str)
    }
    sources, modules, locator = _models(
        full, lines, path, rows, bad_sources=bad_sources, bad_settings=bad_settings
    )
    return validate_all(
        sources,
        modules,
        default_warehouse_id=default_warehouse_id,
        locator=locator,
        partial=True,
        known_source_ids=named,
    )


def _models(
    full: Mapping[str, Any],
    lines: LineMap,
    path: str,
    rows: RowShape | None,
    *,
    bad_sources: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
    bad_settings: set[int] = frozenset(),  # type: ignore[assignment]
) -> tuple[list[Source], list[ModuleSettings], Locator]:
    """Models of a schema-valid document (or of its valid parts: ``bad_sources`` are left out,
    modules in ``bad_settings`` contribute their sources but no settings)."""
    locator = Locator()
    sources: list[Source] = []
    modules: list[ModuleSettings] = []
    for module_index, entry in enumerate(full["modules"]):
        module_path = ("modules", module_index)
        if module_index in bad_settings and not isinstance(entry.get("module_name"), str):
            continue  # no name: its sources belong to nothing that can be checked
        settings = ModuleSettings(
            module_name=entry["module_name"],
            settings={key: value for key, value in entry.items() if key not in _MODULE_KEYS},
            is_active=entry.get("is_active", True),
            source_file=path,
            line=lines.line_of(module_path),
        )
        if rows is None and module_index not in bad_settings:
            modules.append(settings)
            locator.add_module(settings, YamlOrigin(module_path, lines))
        raw_sources = entry.get("sources") if isinstance(entry.get("sources"), list) else []
        for source_index, raw in enumerate(raw_sources):
            if (module_index, source_index) in bad_sources:
                continue
            source_path = (*module_path, "sources", source_index)
            source = Source(
                source_id=raw["source_id"],
                module_name=entry["module_name"],
                source_type=raw["source_type"],
                execution_order=raw["execution_order"],
                source_config=raw.get("source_config") or {},
                target_config=raw.get("target_config") or {},
                transformation_config=raw["transformation_config"],
                is_active=raw.get("is_active", True),
                source_file=path,
                line=lines.line_of(source_path),
            )
            sources.append(source)
            if rows is None:
                locator.add_source(source, YamlOrigin(source_path, lines))
            else:
                locator.add_source(
                    source, YamlOrigin(rows.original_path(module_index, source_index), rows.original_lines)
                )
    return sources, modules, locator


def _with_modules(issues: list[MetadataIssue], data: Mapping[str, Any]) -> list[MetadataIssue]:
    """Tag each issue under ``modules[i]`` with that module's name, so the engine can skip just
    the bad module."""
    raw = data.get("modules")
    names = [
        m.get("module_name") if isinstance(m, Mapping) else None
        for m in (raw if isinstance(raw, list) else [])
    ]
    tagged = []
    for issue in issues:
        match = _MODULE_FIELD.match(issue.field)
        if issue.module is None and match and int(match.group(1)) < len(names):
            name = names[int(match.group(1))]
            issue = replace(issue, module=name if isinstance(name, str) else None)
        tagged.append(issue)
    return tagged
