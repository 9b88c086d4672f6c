"""Which sources a source waits for, and dependency cycles.

Rule (the original tool's, kept for compatibility): a source with ``transformation_config.depends_on`` waits for exactly
those sources (an empty list means "start at once"); any other source waits for every active
source of the closest lower ``execution_order`` in its module. Sources sharing an order run in
parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lakeflow_job_meta.metadata.models import Source


@dataclass(frozen=True)
class Dependency:
    """An upstream source, and for a condition task upstream the branch (``"true"``/``"false"``)."""

    source_id: str
    outcome: str | None = None


def explicit_dependencies(source: Source) -> list[Dependency] | None:
    """The source's ``depends_on`` entries, or None when it has none (execution_order applies)."""
    entries: Any = source.transformation_config.get("depends_on")
    if entries is None or not isinstance(entries, list):
        return None
    found = []
    for entry in entries:
        if isinstance(entry, str):
            found.append(Dependency(entry))
        elif isinstance(entry, Mapping) and isinstance(entry.get("source_id"), str):
            outcome = entry.get("outcome")
            found.append(Dependency(entry["source_id"], None if outcome is None else str(outcome)))
    return found


def resolve_dependencies(sources: Iterable[Source]) -> dict[str, tuple[Dependency, ...]]:
    """Upstream sources of every *active* source of one module, keyed by ``source_id``."""
    active = [s for s in sources if s.is_active and _is_order(s.execution_order)]
    orders = sorted({s.execution_order for s in active})
    by_order: dict[int, list[str]] = {}
    for source in active:
        by_order.setdefault(source.execution_order, []).append(source.source_id)
    resolved: dict[str, tuple[Dependency, ...]] = {}
    for source in active:
        explicit = explicit_dependencies(source)
        if explicit is not None:
            resolved[source.source_id] = tuple(explicit)
            continue
        lower = [order for order in orders if order < source.execution_order]
        upstream = sorted(by_order[lower[-1]]) if lower else []
        resolved[source.source_id] = tuple(Dependency(source_id) for source_id in upstream)
    return resolved


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Cycles of a directed graph (node -> the nodes it waits for), each as ``[a, b, ..., a]``
    starting at its smallest node, one per distinct set of nodes. Iterative: modules may hold
    1000 tasks in a chain, deeper than Python's recursion limit."""
    edges = {node: sorted(n for n in targets if n in graph) for node, targets in graph.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in sorted(edges):
        if root in state:
            continue
        path = [root]
        state[root] = 1
        stack = [iter(edges[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                loop = path[path.index(child) :]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    start = loop.index(min(loop))
                    ordered = loop[start:] + loop[:start]
                    cycles.append([*ordered, ordered[0]])
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(edges[child]))
    return cycles


def _is_order(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
