"""Where a piece of metadata came from, so every issue points at something a user can open.

YAML origins are ``file:LINE`` plus a field path such as ``modules[0].sources[2].execution_order``;
rows INSERTed by SQL are ``table <name> source_id=<id>`` plus the field inside the row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lakeflow_job_meta.errors import MetadataIssue, reading_order
from lakeflow_job_meta.metadata.models import ModuleSettings, Source

PathPart = str | int
FieldPath = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: Sequence[PathPart]) -> str:
    """``("modules", 0, "tags", "a.b")`` -> ``modules[0].tags["a.b"]`` (keys that would be
    ambiguous after a dot are quoted)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


class LineMap:
    """1-based start line of every node of one YAML file, keyed by field path.

    Mapping entries are recorded at the line of their *key*, so an error about a block value
    points at the line that names it.
    """

    def __init__(self, lines: Mapping[FieldPath, int] | None = None):
        self._lines: dict[FieldPath, int] = dict(lines or {})

    def record(self, path: FieldPath, line: int) -> None:
        self._lines.setdefault(path, line)

    def line_of(self, path: Sequence[PathPart]) -> int:
        """Line of ``path``, or of its nearest recorded ancestor (a missing field is reported
        where its parent is)."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get((), 1)

    def items(self) -> list[tuple[FieldPath, int]]:
        return list(self._lines.items())

    def __contains__(self, path: object) -> bool:
        return path in self._lines


def yaml_issue(
    file: str, lines: LineMap, path: FieldPath, message: str, line_path: FieldPath | None = None
) -> MetadataIssue:
    """Issue at ``file:LINE`` for ``path``; ``line_path`` picks a different node for the line (an
    unknown key is reported on the key's own line, under its parent's field path)."""
    line = lines.line_of(path if line_path is None else line_path)
    return MetadataIssue(f"{file}:{line}", format_path(path), message, file=file)


def sorted_issues(issues: Iterable[MetadataIssue]) -> list[MetadataIssue]:
    """Distinct issues in reading order: by file, then line as a number (``a.yaml:9`` before
    ``a.yaml:10``), then field and message."""
    return sorted(set(issues), key=reading_order)


def table_location(table: str | None, key_column: str, key: object) -> str:
    """``table <name> source_id=<id>``: where a row that came by SQL is reported."""
    return f"table {table or 'control_table'} {key_column}={key}"


@dataclass(frozen=True)
class YamlOrigin:
    """Path of a source or module mapping inside its file, and that file's line map."""

    path: FieldPath
    lines: LineMap


class Locator:
    """Turns (model, field inside it, message) into a located :class:`MetadataIssue`.

    The loader registers every YAML source and module it builds; anything unregistered is located
    by its own ``source_file``/``line`` or, for SQL rows (``source_file`` None), by table and key.
    """

    def __init__(self, control_table: str | None = None):
        self.control_table = control_table
        self._sources: dict[tuple[str, str, int | None], YamlOrigin] = {}
        self._modules: dict[tuple[str, str, int | None], YamlOrigin] = {}

    @property
    def modules_table(self) -> str:
        return f"{self.control_table or 'control_table'}_modules"

    def add_source(self, source: Source, origin: YamlOrigin) -> None:
        self._sources[(source.source_file or "", source.source_id, source.line)] = origin

    def add_module(self, module: ModuleSettings, origin: YamlOrigin) -> None:
        self._modules[(module.source_file or "", module.module_name, module.line)] = origin

    def update(self, other: Locator) -> None:
        self._sources.update(other._sources)
        self._modules.update(other._modules)

    def with_table(self, control_table: str | None) -> Locator:
        located = Locator(control_table)
        located.update(self)
        return located

    def describe_source(self, source: Source) -> str:
        """Short reference to where a source lives, for messages naming two places."""
        place = self._yaml_place(self._source_origin(source), source.source_file, source.line, ())
        if place is not None:
            return place[0]
        return self._describe_table(self.control_table or "control_table", source.source_file)

    def describe_module(self, module: ModuleSettings) -> str:
        place = self._yaml_place(self._module_origin(module), module.source_file, module.line, ())
        if place is not None:
            return place[0]
        return self._describe_table(self.modules_table, module.source_file)

    def source_issue(self, source: Source, field: FieldPath, message: str) -> MetadataIssue:
        place = self._yaml_place(self._source_origin(source), source.source_file, source.line, field)
        if place is None:
            location = table_location(self.control_table, "source_id", source.source_id)
            return MetadataIssue(location, format_path(field), message, module=source.module_name)
        return MetadataIssue(
            place[0], format_path(place[1]), message, module=source.module_name, file=source.source_file
        )

    def module_issue(self, module: ModuleSettings, field: FieldPath, message: str) -> MetadataIssue:
        place = self._yaml_place(self._module_origin(module), module.source_file, module.line, field)
        if place is None:
            # A row of the modules table holds these fields inside its ``settings`` JSON column.
            location = table_location(self.modules_table, "module_name", module.module_name)
            inside = ("settings", *field) if field else ()
            return MetadataIssue(location, format_path(inside), message, module=module.module_name)
        return MetadataIssue(
            place[0], format_path(place[1]), message, module=module.module_name, file=module.source_file
        )

    @staticmethod
    def _yaml_place(
        origin: YamlOrigin | None, file: str | None, line: int | None, field: FieldPath
    ) -> tuple[str, FieldPath] | None:
        """``(file:LINE, full field path)`` of a model read from YAML, or None for table rows
        (INSERTed by SQL, or YAML rows read back from the table, whose line is not stored)."""
        if file is None or (origin is None and line is None):
            return None
        if origin is None:
            return f"{file}:{line}", field
        full = origin.path + field
        return f"{file}:{origin.lines.line_of(full)}", full

    @staticmethod
    def _describe_table(table: str, source_file: str | None) -> str:
        if source_file is None:
            return f"table {table} (inserted by SQL)"
        return f"table {table} (loaded from {source_file})"

    def _source_origin(self, source: Source) -> YamlOrigin | None:
        return self._sources.get((source.source_file or "", source.source_id, source.line))

    def _module_origin(self, module: ModuleSettings) -> YamlOrigin | None:
        return self._modules.get((module.source_file or "", module.module_name, module.line))
