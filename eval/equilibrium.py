"""The mean-field equilibrium reference of the evaluation; the solver lives in
`channelmarket.policies.equilibrium` because `MeanFieldPolicy` needs it too (imports run
envs <- policies <- eval). `cached_equilibrium` remembers it per process for the jobs."""

from __future__ import annotations

from typing import Any

from ..envs.scenario import Scenario
from ..policies.equilibrium import *  # noqa: F401,F403
from ..policies.equilibrium import __all__ as _SOLVER_ALL
from ..policies.equilibrium import equilibrium

_EQ_CACHE: dict[tuple[str, int], Any] = {}


def cached_equilibrium(sc: Scenario, seed: int) -> Any:
    """`equilibrium(sc, seed)`, remembered per process (it depends only on the scenario and the
    seed, so jobs of several populations on one seed share it)."""
    key = (sc.to_json(), int(seed))
    if key not in _EQ_CACHE:
        if len(_EQ_CACHE) >= 64:
            _EQ_CACHE.pop(next(iter(_EQ_CACHE)))
        _EQ_CACHE[key] = equilibrium(sc, seed=int(seed))
    return _EQ_CACHE[key]


__all__ = [*_SOLVER_ALL, "cached_equilibrium"]
