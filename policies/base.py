"""The one vectorized policy protocol shared by baselines and learned policies.

A policy controls a subset of M agents of one market (their indices into the core's arrays),
keeps its own state as arrays (one row per controlled agent, one per channel where a rule
needs it), and maps obs[M, O] to actions[M, A] in the env's action space (A = 4, the base columns
ask, bid, quantity, concession; a wider market pads the optional ones — `policies.widths`):

    policy.bind(core, agents=np.array([...]), seed=0)   # at episode start
    actions = policy.act(obs[agents])                     # every step, before core.step
    policy.update(core)                                   # every step, after core.step (optional)

What a policy reads of the market is declared: `self.view`, the read-only `MarketView` of its
agents (`channelmarket.envs.view`: public market data — rules, clock, who sells and buys what,
the channel graph, the reference price, the last step's summary — and its own agents' private
data — reserves, limits, plant, charge, channel balances, trades, profit), and `self.schema`,
the observation's column names (`obs[:, self.schema["reserve"]]`, or `self.col(obs, "reserve")`).
The built-in baselines read nothing else; `self.core` stays set for the runners that step the
market, not for policies to read.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

# policy -> (core, agents, view): the view of the current binding, kept outside the policy's own
# attributes (trainers checkpoint a policy's state as its plain attributes)
_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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

    @property
    def view(self) -> Any:
        """The read-only `MarketView` of the bound market for the controlled agents."""
        core, agents = self.core, self.agents
        if core is None:
            raise RuntimeError(f"{self.name}: not bound to a market; call bind(core, agents) first")
        try:
            entry = _VIEWS.get(self)
        except TypeError:       # an unhashable policy: a fresh view each time
            return core.view(agents)
        if entry is None or entry[0] is not core or entry[1] is not agents:
            entry = (core, agents, core.view(agents))
            _VIEWS[self] = entry
        return entry[2]

    @property
    def schema(self) -> Any:
        """The bound market's observation schema (`envs.obs_schema.ObsSchema`)."""
        return self.view.schema

    def col(self, obs: np.ndarray, *names: str) -> np.ndarray:
        """Observation columns by name: obs[:, name] ([M]) or obs[:, names] ([M, k])."""
        return self.schema.take(obs, *names)

    def act(self, obs: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """actions[M, A] float in [-1, 1] for obs[M, O] of the controlled agents (A = 4 base columns, or
        the market's full width for a policy trained with its optional columns)."""
        raise NotImplementedError

    def update(self, core: Any) -> None:
        """Called after each market step; read `self.view.my_trades()` / `breakdown()` to update own state."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
