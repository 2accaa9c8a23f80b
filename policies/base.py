"""The one vectorized policy protocol shared by baselines and learned policies.

A policy controls a subset of M agents of one market (their indices into the core's arrays),
keeps its own state as arrays (one row per controlled agent, one per channel where a rule
needs it), and maps obs[M, O] to actions[M, 4] in the env's action space:

    policy.bind(core, agents=np.array([...]), seed=0)   # at episode start
    actions = policy.act(obs[agents])                     # every step, before core.step
    policy.update(core)                                   # every step, after core.step (optional)

`core` is the `MarketCore`; policies may read its state and last step's result (trades,
settlement) but never write to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Policy:
    """Base class: subclasses implement `act`; `bind` and `update` are optional hooks."""

    name: str = "policy"

    def __init__(self) -> None:
        self.core = None
        self.agents: np.ndarray = np.zeros(0, dtype=np.int64)
        self.rng: np.random.Generator = np.random.default_rng()

    def bind(self, core: Any, agents: np.ndarray, seed: Any = None) -> None:
        """Attach to a market for one episode: `agents` are the controlled agent indices."""
        self.core = core
        self.agents = np.asarray(agents, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """actions[M, 4] float in [-1, 1] for obs[M, O] of the controlled agents."""
        raise NotImplementedError

    def update(self, core: Any) -> None:
        """Called after each market step; read `core.last_result` to update own state."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
