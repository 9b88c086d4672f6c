"""YAML in the control table's own shape: a top-level list of sources, each naming its module.

::

    - source_id: customers_ingest
      module_name: my_pipeline
      source_type: sql
      execution_order: 1
      transformation_config: {task_type: sql_query, sql_task: {...}}

This is the row shape the reference README shows. Such a file carries no module settings: they
come from the modules table or from another file's ``modules:`` entry. The loader runs its normal
pipeline on an equivalent ``modules:`` document built here; this module translates field paths
both ways so every message names the file's own lines and fields (``[2].execution_order``),
never the synthetic ``modules[0].sources[1]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.locations import FieldPath, LineMap, format_path

_SYNTHETIC = re.compile(r"^modules\[(\d+)\](?:\.sources\[(\d+)\])?")


@dataclass(frozen=True)
class RowShape:
    """A row-shaped file rewritten as a ``modules:`` document, with the way back."""

    document: dict[str, Any]
    lines: LineMap  # line map of ``document``'s paths, pointing at the original lines
    # (module index, source index) -> row index in the file; module index -> its first row.
    rows: dict[tuple[int, int], int]
    first_row: dict[int, int]
    original_lines: LineMap  # the file's own line map (paths ``(row, ...)``)
    # Rows that are not mappings: "must be an object" says it all, no module_name complaint.
    not_mappings: frozenset[int] = frozenset()

    @staticmethod
    def from_rows(rows: Sequence[Any], lines: LineMap) -> RowShape:
        """Group rows by ``module_name`` in file order. A row without a usable name gets a module
        of its own, without ``module_name``, so the schema reports it like any other mistake."""
        modules: list[dict[str, Any]] = []
        index_of: dict[str, int] = {}
        row_of: dict[tuple[int, int], int] = {}
        first_row: dict[int, int] = {}
        for row_index, row in enumerate(rows):
            name = row.get("module_name") if isinstance(row, dict) else None
            if isinstance(name, str) and name in index_of:
                module_index = index_of[name]
            else:
                module_index = len(modules)
                module: dict[str, Any] = {"sources": []}
                if isinstance(row, dict) and "module_name" in row:
                    module["module_name"] = name
                modules.append(module)
                first_row[module_index] = row_index
                if isinstance(name, str):
                    index_of[name] = module_index
            sources = modules[module_index]["sources"]
            row_of[(module_index, len(sources))] = row_index
            sources.append(
                {k: v for k, v in row.items() if k != "module_name"} if isinstance(row, dict) else row
            )
        not_mappings = frozenset(i for i, row in enumerate(rows) if not isinstance(row, dict))
        shape = RowShape({"modules": modules}, LineMap(), row_of, first_row, lines, not_mappings)
        shape._record_lines()
        return shape

    def _record_lines(self) -> None:
        original = self.original_lines
        self.lines.record((), original.line_of(()))
        self.lines.record(("modules",), original.line_of(()))
        for module_index, row_index in self.first_row.items():
            self.lines.record(("modules", module_index), original.line_of((row_index,)))
            self.lines.record(("modules", module_index, "sources"), original.line_of((row_index,)))
            self.lines.record(
                ("modules", module_index, "module_name"), original.line_of((row_index, "module_name"))
            )
        for (module_index, source_index), row_index in self.rows.items():
            prefix = ("modules", module_index, "sources", source_index)
            for path, line in original.items():
                if path[:1] == (row_index,):
                    self.lines.record((*prefix, *path[1:]), line)

    def original_path(self, module_index: int, source_index: int) -> FieldPath:
        return (self.rows[(module_index, source_index)],)

    def restore_all(self, issues: list[MetadataIssue]) -> list[MetadataIssue]:
        restored = [self.restore(issue) for issue in issues]
        noise = {format_path((row, "module_name")) for row in self.not_mappings}
        return [issue for issue in restored if issue.field not in noise]

    def restore(self, issue: MetadataIssue) -> MetadataIssue:
        """The issue with its field path in the file's terms: ``modules[0].sources[1].x`` ->
        ``[3].x``; a module-level field goes to the module's first row."""
        match = _SYNTHETIC.match(issue.field)
        if match is None:
            return issue
        module_index = int(match.group(1))
        rest = issue.field[match.end() :]
        if match.group(2) is not None:
            row = self.rows.get((module_index, int(match.group(2))))
        else:
            row = self.first_row.get(module_index)
            rest = "" if rest == ".sources" else rest
        if row is None:
            return issue
        return replace(issue, field=format_path((row,)) + rest)
