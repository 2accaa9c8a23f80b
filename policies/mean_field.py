"""`MeanFieldPolicy`: the equilibrium reference as a baseline that trades at the mean-field price path.

    pol = MeanFieldPolicy()                  # solves the equilibrium at bind, for the bound core
    run_episode("energy_default", pol, seed=0)

At `bind` the policy solves the mean-field equilibrium of the rest of the bound core's episode
(`channelmarket.policies.equilibrium`, perfect-foresight forecasts from a copy of the core's state),
unless an `EquilibriumResult` is given. Every step, for interval t with equilibrium price p_t:

- sellers ask max(reserve, p_t), buyers bid min(limit, p_t), concession `concession` (0: they
  post the equilibrium price and hold it, price takers at p_t);
- generators offer all their energy, consumers want all their need (truthful quantities);
- each store follows its equilibrium schedule: net sale x_t > 0 offers x_t MWh (as a share of
  what it can deliver now), x_t < 0 buys -x_t MWh (share of its headroom), 0 does nothing.

Prices map onto the env's action encoding by `encode_actions` (a = (target - ref) / span,
clipped to [-1, 1], span = retail - feed_in (`offers.price_span`); a target outside ref +- span opens at the
window's edge). `replan_every=k` re-solves from the current state every k steps: the physics
forecast of a seed is exact only while the market's channel reopenings draw the same random
numbers as the neutral forecast run (they stop doing so once a reopening is refused for lack
of funds, which depends on trades).

The solver lives in `channelmarket.policies.equilibrium` (it needs only `envs`); it is imported
when the policy binds, so importing `channelmarket.policies` does not import `eval`. It is a
perfect-foresight reference: it solves on the view's `oracle_copy()` (a copy of the whole market);
acting, it reads only its own agents' data and the public clock through its `MarketView`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Policy
from .simple import advised, encode_actions

EPS_MWH = 1e-9  # schedule entries below this are "do nothing" (averaging dust)


class MeanFieldPolicy(Policy):
    """Bids and asks at the mean-field equilibrium price path; stores follow their equilibrium schedule."""

    name = "mean_field"

    def __init__(self, equilibrium: Any = None, *, concession: float = 0.0, replan_every: int | None = None,
                 **solver_kwargs: Any) -> None:
        super().__init__()
        if not 0.0 <= concession <= 1.0:
            raise ValueError(f"MeanFieldPolicy concession = {concession!r}; allowed: a number in [0, 1]")
        if replan_every is not None and (isinstance(replan_every, bool) or not isinstance(replan_every, int)
                                         or replan_every < 1):
            raise ValueError(f"MeanFieldPolicy replan_every = {replan_every!r}; allowed: None or an integer >= 1")
        self.given = equilibrium
        self.concession = float(concession)
        self.replan_every = replan_every
        self.solver_kwargs = solver_kwargs
        self.eq = equilibrium
        self._row = np.zeros(0, dtype=np.int64)

    # ---- equilibrium --------------------------------------------------------------------------
    def solve(self, view: Any) -> Any:
        """The equilibrium of the rest of the viewed market's episode (on a copy of the market)."""
        from .equilibrium import equilibrium

        return equilibrium(view.oracle_copy(), **self.solver_kwargs)

    def _index_rows(self) -> None:
        """Row of each controlled agent in the equilibrium's storage columns (-1 if not a store)."""
        pos = np.full(self.view.n_agents, -1, dtype=np.int64)
        pos[self.eq.storage] = np.arange(self.eq.storage.shape[0])
        self._row = pos[self.agents]

    def bind(self, core: Any, agents: np.ndarray, seed: Any = None) -> None:
        super().bind(core, agents, seed)
        self.eq = self.given if self.given is not None else self.solve(self.view)
        self._index_rows()

    # ---- acting -------------------------------------------------------------------------------
    def targets(self) -> tuple[float, np.ndarray]:
        """(equilibrium price of the current interval, scheduled net sale [M] MWh of each controlled agent)."""
        t = self.view.t
        if self.replan_every is not None and self.given is None and t - self.eq.t0 >= self.replan_every:
            self.eq = self.solve(self.view)
            self._index_rows()
        p = self.eq.price_at(t)
        j = t - self.eq.t0
        net = np.zeros(self.agents.shape[0])
        sched = self.eq.storage_schedule
        if 0 <= j < sched.shape[0]:
            has = self._row >= 0
            net[has] = sched[j, self._row[has]]
        return p, net

    def act(self, obs: np.ndarray) -> np.ndarray:
        view, idx = self.view, self.agents
        p, net = self.targets()
        ask = np.maximum(view.reserve[idx], p)
        bid = np.minimum(view.limit[idx], p)
        storage = view.is_store[idx]
        sellable, needed = view.tradable()
        s, h = sellable[idx], needed[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            sell_share = np.where(storage, np.where(s > 0, net / s, 0.0), 1.0)
            buy_share = np.where(storage, np.where(h > 0, -net / h, 0.0), 1.0)
        direction = np.where(net > EPS_MWH, 1, np.where(net < -EPS_MWH, -1, 0))
        adv = advised(view, idx, direction)        # kinds with their own rule (a fleet under its target buys)
        buy_share = np.where((adv < 0) & (direction >= 0), 1.0, buy_share)
        direction = adv
        return encode_actions(view, idx, ask, bid, np.clip(sell_share, 0.0, 1.0), np.clip(buy_share, 0.0, 1.0),
                              self.concession, direction)


__all__ = ["MeanFieldPolicy"]
