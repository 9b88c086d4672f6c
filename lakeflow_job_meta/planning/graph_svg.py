"""A module's task graph (:func:`lakeflow_job_meta.planning.graph.task_graph`) drawn as SVG on the
server, so the status page shows the same DAG as ``graph`` with no JavaScript and no CDN.

Layout is deliberately simple and deterministic: a task's layer is one more than its deepest
upstream task (longest path), tasks sit in task-key order within a layer, edges are straight
lines with an arrowhead, labelled with a condition outcome. Every text is XML-escaped: task
keys come from user metadata.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from lakeflow_job_meta.planning.graph import DEFAULT_RUN_IF, TaskGraph

NODE_WIDTH, NODE_HEIGHT = 190, 46
GAP_X, GAP_Y, MARGIN = 30, 54, 16
MAX_LABEL = 26


def layers(graph: TaskGraph) -> dict[str, int]:
    """task key -> layer (0 for tasks without upstream tasks); an edge naming an unknown task
    or a cycle (invalid metadata never gets here) leaves the task in layer 0."""
    upstream: dict[str, list[str]] = {node.task_key: [] for node in graph.nodes}
    for edge in graph.edges:
        if edge.downstream in upstream and edge.upstream in upstream:
            upstream[edge.downstream].append(edge.upstream)
    depth: dict[str, int] = {}

    def visit(key: str, seen: frozenset[str]) -> int:
        if key in depth:
            return depth[key]
        parents = [p for p in upstream[key] if p not in seen]
        depth[key] = 1 + max((visit(p, seen | {key}) for p in parents), default=-1)
        return depth[key]

    for node in graph.nodes:
        visit(node.task_key, frozenset())
    return depth


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def render_svg(graph: TaskGraph) -> str:
    """The graph as a standalone ``<svg>`` element (each task a ``<g class="task">`` with a
    ``data-task`` attribute, so tests and people find every task by its key)."""
    depth = layers(graph)
    rows: dict[int, list[str]] = {}
    for node in graph.nodes:
        rows.setdefault(depth[node.task_key], []).append(node.task_key)
    widest = max((len(keys) for keys in rows.values()), default=1)
    width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X
    height = MARGIN * 2 + max(len(rows), 1) * (NODE_HEIGHT + GAP_Y) - GAP_Y
    place: dict[str, tuple[int, int]] = {}
    for layer, keys in rows.items():
        offset = (width - (len(keys) * NODE_WIDTH + (len(keys) - 1) * GAP_X)) // 2
        for index, key in enumerate(keys):
            place[key] = (offset + index * (NODE_WIDTH + GAP_X), MARGIN + layer * (NODE_HEIGHT + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="task-graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr("task graph of " + graph.name)}>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for edge in graph.edges:
        if edge.upstream not in place or edge.downstream not in place:
            continue
        (x1, y1), (x2, y2) = place[edge.upstream], place[edge.downstream]
        sx, sy, ex, ey = x1 + NODE_WIDTH // 2, y1 + NODE_HEIGHT, x2 + NODE_WIDTH // 2, y2
        parts.append(
            f'<line class="dep" x1="{sx}" y1="{sy}" x2="{ex}" y2="{ey}" stroke="#555" '
            f'stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
        if edge.outcome is not None:
            parts.append(
                f'<text x="{(sx + ex) // 2 + 4}" y="{(sy + ey) // 2}" font-size="11" '
                f'fill="#333">{escape(edge.outcome)}</text>'
            )
    for node in graph.nodes:
        x, y = place[node.task_key]
        condition = node.task_type == "condition"
        fill = "#fff6d6" if condition else "#eef3fb"
        sub = node.task_type if node.run_if == DEFAULT_RUN_IF else f"{node.task_type} · {node.run_if}"
        parts.append(
            f'<g class="task" data-task={quoteattr(node.task_key)}>'
            f"<title>{escape(node.task_key)} ({escape(sub)})</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="{4 if not condition else 14}" '
            f'fill="{fill}" stroke="#35588a"/>'
            f'<text x="{x + 10}" y="{y + 19}" font-size="13" font-weight="600" fill="#111">'
            f"{escape(_short(node.task_key))}</text>"
            f'<text x="{x + 10}" y="{y + 36}" font-size="11" fill="#444">{escape(_short(sub))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
