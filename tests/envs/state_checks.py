"""Helpers for the hardening tests: exact comparison of state dicts and a full snapshot of a core."""

from __future__ import annotations

from typing import Any

import numpy as np


def same(a: Any, b: Any, path: str = "") -> None:
    """Assert two nested state dicts are identical: same keys, same types, arrays of the same dtype,
    shape and bits (NaN-aware)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys {sorted(map(str, a))} vs {b!r:.200}"
        for k in a:
            same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a!r:.80} vs {b!r:.80}"
        assert a.tobytes() == b.tobytes(), f"{path}: values differ"
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {a!r:.80} vs {b!r:.80}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), f"{path}: {a!r} vs {b!r}"


def snapshot(core) -> dict[str, Any]:
    """Everything a rejection must leave untouched: the state dict (generators included) and the
    identity of the core's objects."""
    return {"dict": core.state_dict(), "ids": (id(core.state), id(core.agents), id(core.last_result),
                                               id(core._static), id(core._scale))}


def assert_untouched(core, snap: dict[str, Any]) -> None:
    same(snap["dict"], core.state_dict())
    assert snap["ids"] == (id(core.state), id(core.agents), id(core.last_result), id(core._static), id(core._scale))
