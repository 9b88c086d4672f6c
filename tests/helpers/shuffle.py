"""Reordering that must change nothing."""

from __future__ import annotations

import random
from typing import Any


def shuffled_dict(value: Any, rng: random.Random) -> Any:
    """The same value with every dict's key order shuffled."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled_dict(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled_dict(v, rng) for v in value]
    return value
