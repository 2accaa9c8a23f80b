"""Welfare of a market step, realized and optimal, and the centralized-market comparison.

    prev = core.state                      # the state the step starts from (its channels)
    core.step(actions)
    opt = optimal_welfare(core, prev)      # OptimumResult: .welfare, .qty, ...
    real = realized_welfare(core)          # the same units

A reference under the evaluation pipeline (settings -> jobs -> runs -> statistics -> report),
used by the run layer's recorder (`eval.recorder`): it consumes a `MarketCore` after a step and
produces EUR figures, by handing the step's `MarketInterval` to `eval.optimum.solve_interval`
(the linear program) and by valuing what the step settled in the same units. Which optimum a
mechanism is measured against is its declaration (`Mechanism.optimum_network`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..envs import mechanisms
from ..envs.breakdown import BREAKDOWN_FIELDS
from .optimum import MarketInterval, OptimumResult, default_network, solve_interval, storage_values

_COL = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}


# ---- one step of a MarketCore ------------------------------------------------------------------

def interval_of(core: Any, state: Any = None) -> MarketInterval:
    """The interval of the step just taken (`core.last_result`).

    `state` is the MarketState that step started from (keep `prev = core.state` before
    `core.step`; `run_episode`'s callback receives it). Without it the channel set is
    reconstructed: the channels open after the step plus every channel that carried a trade
    (balances rolled back by the step's flows); a channel that closed this step without a trade
    is then missing and one that opened this step is present, so pass `state` for the exact set."""
    res = core.last_result
    if res is None:
        raise RuntimeError("no step has been taken yet: optimal_welfare needs core.last_result")
    sc, ag = core.scenario, core.agents
    if state is not None:
        u, v, is_open, capacity, balance_u, active = state.u, state.v, state.open, state.capacity, state.balance_u, state.active
    else:
        now = core.state
        u, v, capacity = now.u, now.v, now.capacity
        is_open = now.open.copy()
        tr_ch = res.trades.channel[res.trades.channel >= 0]
        is_open[tr_ch] = True
        balance_u = np.where(now.open & ~np.isin(np.arange(u.shape[0]), tr_ch), now.balance_u,
                             res.settlement.balance_u + res.settlement.flow)
        active = np.ones(ag.n, dtype=bool)
    return MarketInterval(
        kind=ag.kind, sells_good=ag.sells_good, buys_good=ag.buys_good, sellable=res.sellable, needed=res.needed,
        marginal_cost=ag.marginal_cost, reserve=ag.reserve, limit=ag.limit, efficiency=ag.efficiency,
        grid_limit=ag.grid_limit, active=active, u=u, v=v, open=is_open, capacity=capacity, balance_u=balance_u,
        feed_in=float(sc.feed_in_tariff), retail=float(sc.retail_tariff),
        ref_price=float(state.ref_price[0]) if state is not None else float("nan"),
        value_of_lost_load=float(sc.value_of_lost_load), network_charge=float(sc.network_charge))


def optimal_welfare(core: Any, state: Any = None, *, network: str | None = None, storage_sides: str = "exact",
                    storage_value: Any = "reserve_limit", liquidity: Any = None) -> OptimumResult:
    """Optimal welfare (EUR) of the interval just stepped, given its supplies, needs, reserve
    prices, limits and open channels. `state`: the MarketState the step started from (see
    `interval_of`). `network` defaults to `default_network(core)`. Liquidity is ignored by default
    (an upper bound of any clearing's welfare); "reserve" keeps it an upper bound of bilateral
    clearing, "ref" or a price gives the liquidity-feasible optimum at that price (an estimate)."""
    iv = interval_of(core, state)
    return solve_interval(iv, network=network or default_network(core), storage_sides=storage_sides,
                          storage_value=storage_value, liquidity=liquidity)


def realized_welfare(core: Any, storage_value: Any = "reserve_limit") -> float:
    """Welfare (EUR) the step just taken realized, in the units of `optimal_welfare`: the sum of
    the step's rewards (without the stores' end-of-episode revaluation) plus, for storage,
    charged x charge value - discharged x discharge cost (zero with storage_value="reward").
    The rewards already carry the scenario's accounting (network charges, value of lost load),
    which the optimum prices the same way (`eval.optimum`)."""
    res = core.last_result
    if res is None:
        raise RuntimeError("no step has been taken yet: realized_welfare needs core.last_result")
    return realized_from_breakdown(res.settlement.breakdown, core.agents, storage_value)


def realized_from_breakdown(breakdown: np.ndarray, agents: Any, storage_value: Any = "reserve_limit") -> float:
    """`realized_welfare` from a settlement breakdown [N, F] and the agent parameters.

    The stores' end-of-episode revaluation (`storage_value`, booked in the last step's profit) is
    left out: it is not surplus of that step's trades, and no step's optimum contains it."""
    cv, dc = storage_values(agents.kind, agents.reserve, agents.limit, agents.efficiency, storage_value)
    b = breakdown
    trade_profit = b[:, _COL["profit"]] - b[:, _COL["storage_value"]]
    return float(trade_profit.sum() + (cv * b[:, _COL["charged"]] - dc * b[:, _COL["discharged"]]).sum())


# ---- the traditional-market comparison ---------------------------------------------------------

@dataclass
class BenchmarkResult:
    """One episode under the centralized double auction, with its welfare per step."""

    episode: Any                 # policies.rollout.EpisodeResult
    realized: np.ndarray         # [T] EUR, realized_welfare per step
    optimal: np.ndarray          # [T] EUR, optimal_welfare per step (network "complete"), NaN if not computed
    reward_welfare: np.ndarray   # [T] EUR, sum of rewards per step

    @property
    def efficiency(self) -> float:
        """sum(realized) / sum(optimal) over the episode."""
        if self.optimal.size == 0 or np.isnan(self.optimal).any():
            return float("nan")
        o = float(self.optimal.sum())
        return float(self.realized.sum() / o) if o > 0 else float("nan")


def centralized_benchmark(scenario: Any, seed: Any, policy: Any, *, optimum: bool = True,
                          storage_value: Any = "reserve_limit", mechanism: str = "double_auction",
                          **overrides: Any) -> BenchmarkResult:
    """Rerun the episode of (`scenario`, `seed`) with the same policies but under `mechanism` (by
    default the uniform-price exchange, the 'traditional market' a P2P design is compared with),
    measured against that mechanism's optimum (`Mechanism.optimum_network`).

    `policy`: anything `run_episode` accepts (a Policy, a dict kind -> Policy, (policy, agents)
    pairs) or a zero-argument callable returning one, e.g. a Policy class (fresh policies). The weather,
    demand and shocks are those of the same seed as long as every channel reopening is funded in
    both runs: a refused reopening (wallet-dependent) shifts the random stream of later steps."""
    from ..envs.core import MarketCore
    from ..policies.rollout import run_episode

    from collections.abc import Mapping, Sequence

    from ..policies.base import Policy

    if isinstance(policy, (Policy, Mapping)) or (isinstance(policy, Sequence) and not isinstance(policy, str)):
        assignments = policy
    elif callable(policy):  # a Policy class or a factory
        assignments = policy()
    else:
        raise TypeError(f"policy must be a Policy, assignments or a callable returning them; got {type(policy).__name__}")
    network = mechanisms.get(mechanism).optimum_network
    core = MarketCore(scenario, mechanism=mechanism, **overrides)
    realized, optimal, rsum = [], [], []

    def on_step(c: Any, prev: Any) -> None:
        realized.append(realized_welfare(c, storage_value))
        rsum.append(float(c.last_result.settlement.breakdown[:, 0].sum()))
        optimal.append(optimal_welfare(c, prev, network=network, storage_value=storage_value).welfare
                       if optimum else np.nan)

    ep = run_episode(core, assignments, seed=seed, callback=on_step)
    return BenchmarkResult(ep, np.asarray(realized), np.asarray(optimal, dtype=np.float64), np.asarray(rsum))


__all__ = ["optimal_welfare", "realized_welfare", "realized_from_breakdown", "interval_of", "BenchmarkResult",
           "centralized_benchmark"]
