"""YAML the loader's tests and its fuzzing share: plain scalars that resolve in surprising ways,
and the pure-Python loader's answer to compare the fast tier with."""

from __future__ import annotations

from lakeflow_job_meta.metadata.yaml_loader import TrackingLoader, YamlLimits

# Plain scalars the implicit resolvers claim one way or another (some as issues: a huge integer,
# '<<' outside a key, '=', '.inf'), some no resolver claims, and some that are not scalars at all.
_TRICKY_WORDS = (
    "yes No ON off y true False ~ null NULL 0 017 0o17 0x1F 0b101 1_000 +12 -3 1:30 190:20:30 "
    "1.5 1. .5 1e3 1.0e+3 -1.5E-2 6.8523015e+5 ._ .inf -.Inf .NaN 2024-01-31 "
    "2024-01-31T10:00:00Z 2024-1-1 = << a x.y /p & * 99999999999999999999"
)
TRICKY_PLAIN_SCALARS = (*_TRICKY_WORDS.split(), "", "'quoted 1'", '"2"', "a b")


def pure_python(text: str, limits: YamlLimits | None = None) -> tuple[object, list, list]:
    """Data, lines (in order) and issues of the pure-Python loader, which words every message."""
    loader = TrackingLoader(text, limits or YamlLimits())
    try:
        root = loader.get_single_node()
        data = loader.build(root)
    finally:
        loader.dispose()
    return data, loader.lines.items(), loader.issues
