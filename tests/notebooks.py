"""Run the example notebooks in-process: their code cells, in order, with a minimal ``dbutils``.

Only the parts of ``dbutils`` the examples use exist here (widgets, ``notebook.exit``,
``jobs.taskValues``), so a notebook that starts using something else fails loudly instead of
silently passing. A cell whose first line starts with ``# Databricks only:`` marks where the
runnable part ends: it and every later cell need the Databricks Runtime (Auto Loader, volumes)
and are not run; the notebooks say so in that comment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATABRICKS_ONLY = "# Databricks only:"
PY_CELL_SEPARATOR = "# COMMAND ----------"


class NotebookExit(Exception):
    """``dbutils.notebook.exit(value)``: ends the notebook with a value (a run result, not an error)."""

    def __init__(self, value: str):
        super().__init__(value)
        self.value = value


class Widgets:
    """``dbutils.widgets``: parameters given by the job override the widget defaults."""

    def __init__(self, parameters: dict[str, str]):
        self.parameters = dict(parameters)
        self.defaults: dict[str, str] = {}

    def text(self, name: str, default_value: str, label: str | None = None) -> None:
        self.defaults[name] = default_value

    def dropdown(self, name: str, default_value: str, choices: list[str], label: str | None = None) -> None:
        if default_value not in choices:
            raise ValueError(f"dropdown {name}: default {default_value!r} is not one of {choices}")
        self.defaults[name] = default_value

    def get(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.defaults:
            return self.defaults[name]
        # What Databricks raises for an undefined widget.
        raise ValueError(f"InputWidgetNotDefined: No input widget named {name} is defined")


class _Notebook:
    def exit(self, value: str) -> None:
        raise NotebookExit(value)


class _TaskValues:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


class _Jobs:
    def __init__(self) -> None:
        self.taskValues = _TaskValues()


class DBUtils:
    def __init__(self, parameters: dict[str, str]):
        self.widgets = Widgets(parameters)
        self.notebook = _Notebook()
        self.jobs = _Jobs()


def code_cells(path: Path) -> list[str]:
    """The code cells of a ``.ipynb`` or a Databricks ``.py`` source notebook, in order."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return ["".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
    cells = []
    for chunk in text.split(PY_CELL_SEPARATOR):
        lines = [
            line
            for line in chunk.splitlines()
            if not line.startswith("# MAGIC") and line.strip() != "# Databricks notebook source"
        ]
        if any(line.strip() for line in lines):
            cells.append("\n".join(lines).strip("\n") + "\n")
    return cells


def runnable_cells(path: Path) -> tuple[list[str], list[str]]:
    """(cells runnable off Databricks, the Databricks-only rest)."""
    cells = code_cells(path)
    for index, cell in enumerate(cells):
        if cell.lstrip().startswith(DATABRICKS_ONLY):
            return cells[:index], cells[index:]
    return cells, []


def run_notebook(
    path: Path, parameters: dict[str, str], *, spark: Any = None
) -> tuple[dict[str, Any], DBUtils]:
    """Execute the runnable cells with notebook globals; returns the namespace and dbutils.
    ``NotebookExit`` propagates, as it ends a notebook run on Databricks."""
    dbutils = DBUtils(parameters)
    namespace: dict[str, Any] = {"__name__": "__main__", "dbutils": dbutils, "spark": spark, "display": print}
    cells, _ = runnable_cells(path)
    for index, cell in enumerate(cells):
        exec(compile(cell, f"{path.name}[cell {index}]", "exec"), namespace)
    return namespace, dbutils
