"""Task-graph pictures: the pure renderer, ``graph MODULE`` and the graphs shown in docs/.

``docs/EXAMPLE_GRAPHS.md`` is generated from the examples; when it is stale, rewrite it with
``python tests/planning/test_graph.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from lakeflow_job_meta.metadata.loader import parse_files_detailed  # noqa: E402
from lakeflow_job_meta.metadata.models import Module  # noqa: E402
from lakeflow_job_meta.metadata.task_keys import sanitize_task_key  # noqa: E402
from lakeflow_job_meta.planning.compiler import CompileContext, compile_module  # noqa: E402
from lakeflow_job_meta.planning.graph import (  # noqa: E402
    Edge,
    render_dot,
    render_graph,
    render_mermaid,
    task_graph,
    task_lines,
    task_type,
)

EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
DOC = REPO / "docs" / "EXAMPLE_GRAPHS.md"

SETTINGS = {
    "tasks": [
        {"task_key": "load", "notebook_task": {"notebook_path": "/Workspace/x"}},
        {"task_key": "gate", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"},
         "depends_on": [{"task_key": "load"}]},
        {"task_key": "end", "sql_task": {"file": {"path": "/Workspace/q.sql"}, "warehouse_id": "w"},
         "depends_on": [{"task_key": "gate", "outcome": "true"}]},
        {"task_key": "alert", "run_if": "ALL_DONE", "sql_task": {"file": {"path": "/Workspace/managed.sql"}},
         "depends_on": [{"task_key": "gate", "outcome": "false"}]},
    ]
}  # fmt: skip


def _example_modules() -> dict[str, Module]:
    result = parse_files_detailed([str(EXAMPLES)])
    assert result.issues == []
    document = result.documents[0]
    settings = {m.module_name: m.settings for m in document.modules}
    names = sorted({s.module_name for s in document.sources})
    return {
        name: Module(
            name, tuple(s for s in document.sources if s.module_name == name), settings.get(name, {})
        )
        for name in names
    }


def _context() -> CompileContext:
    return CompileContext(
        control_table="main.ops.etl_control",
        control_table_id="0123456789ab",
        env_name=None,
        env_mode="production",
        default_warehouse_id=None,
        managed_sql_root="/Workspace/Shared/lakeflow_job_meta/0123456789ab",
        default_pause_status=None,
    )


def render_example_graphs() -> str:
    """The document of every example module's graph, as docs/ holds it."""
    parts = [
        "# The examples' task graphs\n",
        "Generated from `examples/metadata_examples.yaml` by `lakeflow-job-meta graph MODULE` "
        "(Mermaid; `--format dot` gives Graphviz). Nodes are task keys with their task type; edges "
        "are the dependencies `execution_order` and `depends_on` produce, labelled with a condition "
        "task's outcome. Regenerate with `python tests/planning/test_graph.py`.\n",
    ]
    for name, module in _example_modules().items():
        job = compile_module(module, _context()).job
        if job is None:
            continue
        parts.append(
            f"## {name}\n\n```mermaid\n{render_mermaid(task_graph(name, job.settings, job.managed_files))}```\n"
        )
    return "\n".join(parts)


def test_task_types_of_compiled_tasks() -> None:
    managed = {"/Workspace/managed.sql": "SELECT 1"}
    types = {t["task_key"]: task_type(t, managed) for t in SETTINGS["tasks"]}
    assert types == {"load": "notebook", "gate": "condition", "end": "sql_file", "alert": "sql_query"}
    assert task_type({"for_each_task": {"task": {"dbt_task": {}}}}) == "for_each(dbt)"


def test_graph_nodes_and_labelled_edges() -> None:
    graph = task_graph("job", SETTINGS, {"/Workspace/managed.sql": "SELECT 1"})
    assert [n.task_key for n in graph.nodes] == ["alert", "end", "gate", "load"]
    assert set(graph.edges) == {
        Edge("load", "gate"),
        Edge("gate", "end", "true"),
        Edge("gate", "alert", "false"),
    }


def test_mermaid_uses_safe_ids_and_labels_outcomes() -> None:
    text = render_mermaid(task_graph("job", SETTINGS))
    assert "flowchart TD" in text
    # `end` is a Mermaid keyword: it only appears inside a quoted label.
    assert '["end<br/>sql_file"]' in text
    assert '{"gate<br/>condition"}' in text
    assert "run_if ALL_DONE" in text
    assert text.count('-->|"true"|') == 1 and text.count('-->|"false"|') == 1
    assert "\n    end" not in text


def test_dot_quotes_names_and_labels_outcomes() -> None:
    text = render_dot(task_graph('a "job"', SETTINGS))
    assert text.startswith('digraph "a \\"job\\"" {')
    assert '"gate" -> "end" [label="true"];' in text
    assert '"gate" [label="gate\\ncondition", shape=diamond];' in text
    assert text.rstrip().endswith("}")
    with pytest.raises(ValueError, match="unknown graph format"):
        render_graph(task_graph("job", SETTINGS), "svg")  # type: ignore[arg-type]


def test_plan_lines_list_tasks_with_upstreams() -> None:
    lines = task_lines(task_graph("job", SETTINGS))
    assert "+ task end (sql_file) <- gate[true]" in lines
    assert "+ task alert (sql_file) <- gate[false] run_if ALL_DONE" in lines
    assert "+ task load (notebook)" in lines


def test_docs_show_the_examples_graphs() -> None:
    assert DOC.read_text(encoding="utf-8") == render_example_graphs(), (
        "docs/EXAMPLE_GRAPHS.md is stale: run python tests/planning/test_graph.py"
    )


def test_cli_graph_draws_every_active_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("deltalake")
    from lakeflow_job_meta.cli.main import main

    table = str(tmp_path / "ctl")
    assert main(["load", str(EXAMPLES), "--control-table", table]) == 0
    capsys.readouterr()
    assert main(["graph", "sales_daily", "--control-table", table]) == 0
    out, err = capsys.readouterr()
    active = [s for s in _example_modules()["sales_daily"].sources if s.is_active]
    assert len(active) == 7
    for source in active:
        assert f'"{sanitize_task_key(source.source_id)}<br/>' in out
    assert "customers_quality_check" not in out  # inactive: not a task
    assert out.count("-->") == 6
    assert err == ""
    assert main(["graph", "sales_daily", "--control-table", table, "--format", "dot"]) == 0
    assert '"quality_gate" -> "daily_aggregations" [label="true"];' in capsys.readouterr().out
    assert main(["graph", "no_such_module", "--control-table", table]) == 1
    assert "no module 'no_such_module'" in capsys.readouterr().err


def test_plan_shows_a_new_modules_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("deltalake")
    from lakeflow_job_meta.cli.main import main

    table = str(tmp_path / "ctl")
    assert main(["load", str(EXAMPLES), "--control-table", table]) == 0
    capsys.readouterr()
    assert main(["plan", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}"]) == 0
    out = capsys.readouterr().out
    block = out.split('+ create sales_daily "sales_daily"\n', 1)[1].split("  + create", 1)[0]
    assert "      + task quality_gate (condition) <- freshness_check\n" in block
    assert "      + task daily_aggregations (sql_file) <- quality_gate[true]\n" in block
    assert "      + task customers_ingest (sql_query)\n" in block


if __name__ == "__main__":
    DOC.write_text(render_example_graphs(), encoding="utf-8")
    print(f"wrote {DOC}")
