"""Pictures of a module's task DAG, drawn from the compiled job settings (what the job will run).

Pure: settings in, text out. Nodes are task keys with their task type, edges the dependencies,
labelled with a condition task's outcome (``true``/``false``). Drawn from the compiled settings
rather than the metadata so the picture shows the ``depends_on`` that ``execution_order``
produced, exactly as the job will have it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

GraphFormat = Literal["mermaid", "dot"]
GRAPH_FORMATS: tuple[GraphFormat, ...] = ("mermaid", "dot")

# Compiled task field -> the metadata's task type (sql_task is split below).
_TASK_FIELDS: dict[str, str] = {
    "notebook_task": "notebook",
    "python_wheel_task": "python_wheel",
    "spark_python_task": "spark_python",
    "spark_jar_task": "spark_jar",
    "pipeline_task": "pipeline",
    "run_job_task": "run_job",
    "dbt_task": "dbt",
    "condition_task": "condition",
    "for_each_task": "for_each",
}
DEFAULT_RUN_IF = "ALL_SUCCESS"


@dataclass(frozen=True)
class Node:
    task_key: str
    task_type: str
    run_if: str = DEFAULT_RUN_IF


@dataclass(frozen=True)
class Edge:
    upstream: str
    downstream: str
    outcome: str | None = None


@dataclass(frozen=True)
class TaskGraph:
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def as_dict(self) -> dict[str, Any]:
        """The graph as JSON: what ``graph --json`` prints and the status page's API serves."""
        return {
            "job_name": self.name,
            "tasks": [
                {"task_key": n.task_key, "task_type": n.task_type, "run_if": n.run_if} for n in self.nodes
            ],
            "dependencies": [
                {"upstream": e.upstream, "downstream": e.downstream, "outcome": e.outcome} for e in self.edges
            ],
        }


def task_type(task: Mapping[str, Any], managed_files: Mapping[str, str] | None = None) -> str:
    """The metadata task type of a compiled task. An inline ``sql_query`` is compiled into a
    managed workspace file, so a ``sql_task.file`` among ``managed_files`` is a ``sql_query``."""
    if "sql_task" in task:
        sql_task = task["sql_task"]
        path = (sql_task.get("file") or {}).get("path")
        if "query" in sql_task or (path is not None and path in (managed_files or {})):
            return "sql_query"
        return "sql_file" if path is not None else "sql"
    for name, kind in _TASK_FIELDS.items():
        if name in task:
            if kind == "for_each":
                inner = task[name].get("task") or {}
                return f"for_each({task_type(inner, managed_files)})"
            return kind
    return "task"


def task_graph(
    name: str, settings: Mapping[str, Any], managed_files: Mapping[str, str] | None = None
) -> TaskGraph:
    """The DAG of the job's top-level tasks, in task-key order."""
    tasks = sorted(settings.get("tasks") or [], key=lambda t: str(t.get("task_key")))
    nodes = tuple(
        Node(str(t["task_key"]), task_type(t, managed_files), str(t.get("run_if") or DEFAULT_RUN_IF))
        for t in tasks
    )
    edges = tuple(
        Edge(str(dep["task_key"]), str(t["task_key"]), dep.get("outcome"))
        for t in tasks
        for dep in sorted(t.get("depends_on") or [], key=lambda d: str(d.get("task_key")))
    )
    return TaskGraph(name, nodes, edges)


def _label(node: Node) -> str:
    label = f"{node.task_key}\n{node.task_type}"
    return label if node.run_if == DEFAULT_RUN_IF else f"{label}\nrun_if {node.run_if}"


def render_mermaid(graph: TaskGraph) -> str:
    """A Mermaid ``flowchart``. Node ids are positional (``t0``...): a task key such as ``end``
    is a Mermaid keyword, and labels carry the real names."""
    ids = {node.task_key: f"t{index}" for index, node in enumerate(graph.nodes)}
    lines = ["---", f"title: {json.dumps(graph.name)}", "---", "flowchart TD"]
    for node in graph.nodes:
        text = _label(node).replace('"', "#quot;").replace("\n", "<br/>")
        shape = '{{"{0}"}}' if node.task_type == "condition" else '["{0}"]'
        lines.append(f"    {ids[node.task_key]}{shape.format(text)}")
    for edge in graph.edges:
        arrow = f'-->|"{edge.outcome}"|' if edge.outcome is not None else "-->"
        lines.append(f"    {ids.get(edge.upstream, edge.upstream)} {arrow} {ids[edge.downstream]}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(graph: TaskGraph) -> str:
    """A Graphviz ``digraph`` (``dot -Tsvg``)."""
    lines = [
        f"digraph {_dot_quote(graph.name)} {{",
        "    rankdir=TB;",
        "    node [shape=box, fontname=Helvetica];",
    ]
    for node in graph.nodes:
        shape = ", shape=diamond" if node.task_type == "condition" else ""
        lines.append(f"    {_dot_quote(node.task_key)} [label={_dot_quote(_label(node))}{shape}];")
    for edge in graph.edges:
        label = f" [label={_dot_quote(edge.outcome)}]" if edge.outcome is not None else ""
        lines.append(f"    {_dot_quote(edge.upstream)} -> {_dot_quote(edge.downstream)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(graph: TaskGraph, fmt: GraphFormat = "mermaid") -> str:
    if fmt == "dot":
        return render_dot(graph)
    if fmt == "mermaid":
        return render_mermaid(graph)
    raise ValueError(f"unknown graph format {fmt!r}: use one of {', '.join(GRAPH_FORMATS)}")


def task_lines(graph: TaskGraph) -> list[str]:
    """One line per task for a plan: ``+ task key (type) <- upstream, gate[true]``."""
    upstream: dict[str, list[str]] = {}
    for edge in graph.edges:
        text = edge.upstream if edge.outcome is None else f"{edge.upstream}[{edge.outcome}]"
        upstream.setdefault(edge.downstream, []).append(text)
    lines = []
    for node in graph.nodes:
        line = f"+ task {node.task_key} ({node.task_type})"
        if node.task_key in upstream:
            line += " <- " + ", ".join(upstream[node.task_key])
        if node.run_if != DEFAULT_RUN_IF:
            line += f" run_if {node.run_if}"
        lines.append(line)
    return lines
