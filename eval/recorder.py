"""Recording an episode: the per-step market numbers and per-agent totals the metrics need.

The run layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report):
`EpisodeRecorder` watches a `MarketCore` while an episode runs and hands back an
`EpisodeRecord` of plain arrays, from which `eval.metrics.episode_metrics` computes every
metric of the episode:

    rec = EpisodeRecorder(core, optimum=True)            # after core.reset(seed)
    while not core.done:
        rec.step(actions)                                  # core.step + record
    m = episode_metrics(rec.result(), equilibrium_price=eq.price)

or `run_episode(core, policies, seed, callback=rec)` (the recorder starts over when it sees
interval 0). Step-indexed arrays are per market interval t: the price is the interval's clearing
price (VWAP, carried over from the previous interval when nothing traded), the shock the one
active during the interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..envs.breakdown import BREAKDOWN_FIELDS
from .metrics import open_channel_utilization
from .welfare import optimal_welfare, realized_from_breakdown

_COL = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}

STEP_ARRAYS = ("t", "price", "ref_price", "shock", "volume", "supply", "demand", "attempted", "failed", "partial",
               "unserved", "curtailed", "grid_bought", "grid_sold", "needed", "utilization", "reward_welfare",
               "realized_welfare", "optimal_welfare")


@dataclass
class EpisodeRecord:
    """What `episode_metrics` needs, as arrays: steps[name] [T] and per-agent totals [N]."""

    steps: dict[str, np.ndarray]
    totals: dict[str, np.ndarray]      # every BREAKDOWN_FIELDS column summed over the episode [N]
    kind: np.ndarray                   # [N]
    policy_index: np.ndarray           # [N]
    policy_names: list[str]
    storage_value: Any = "reserve_limit"
    goods: tuple[str, ...] = ()        # further goods (certificates): steps[f"{good}_price"|"_volume"|"_ref_price"]

    @property
    def n_steps(self) -> int:
        return int(self.steps["t"].shape[0])


class EpisodeRecorder:
    """Records, after every step of a `MarketCore`, the per-step market numbers and per-agent
    totals the metrics need (O(N + E) a step), and the step's optimal welfare if `optimum`.

    Use `rec.step(actions)` in place of `core.step(actions)`, or pass the recorder as
    `run_episode(..., callback=rec)` (called as rec(core, previous_state)), or call
    `rec.record(previous_state)` after each `core.step`. The previous state (the one the step
    started from) gives the interval's shock, reference price and open channels."""

    def __init__(self, core: Any, *, optimum: bool = False, storage_value: Any = "reserve_limit",
                 optimum_kwargs: dict | None = None, policy_index: np.ndarray | None = None,
                 policy_names: list[str] | None = None) -> None:
        self.core = core
        self.optimum = bool(optimum)
        self.storage_value = storage_value
        self.optimum_kwargs = dict(optimum_kwargs or {})
        self.policy_index = policy_index
        self.policy_names = policy_names
        self._prev = None
        self._steps: dict[str, list] = {}
        self._totals: np.ndarray | None = None
        if core.state is not None:
            self.reset()

    def reset(self) -> None:
        """Start a new episode record (the core must have been reset)."""
        self._steps = {k: [] for k in STEP_ARRAYS}
        self._goods = tuple(self.core.scenario.goods[1:])   # per further good: price, reference price, volume
        for g in self._goods:
            self._steps.update({f"{g}_price": [], f"{g}_ref_price": [], f"{g}_volume": []})
        self._totals = np.zeros((self.core.n_agents, len(BREAKDOWN_FIELDS)))
        self._prev = self.core.state

    def step(self, actions: np.ndarray):
        """`core.step(actions)`, recorded; returns what `core.step` returns."""
        prev = self.core.state
        out = self.core.step(actions)
        self.record(prev)
        return out

    def __call__(self, core: Any, prev: Any) -> None:
        self.record(prev)

    def record(self, prev: Any = None) -> None:
        """Record the step just taken; `prev` is the state it started from (default: the state
        after the previous record, which misses a shock injected in between)."""
        core = self.core
        if prev is None:
            prev = self._prev
        if prev is not None and prev.t == 0 and core.state.t == 1:
            self.reset()  # a new episode (run_episode resets the core itself)
        if self._totals is None:
            self.reset()
        res, state = core.last_result, core.state
        st = res.settlement
        bd = st.breakdown
        active = prev.active if prev is not None else np.ones(core.n_agents, dtype=bool)
        s = self._steps
        s["t"].append(state.t - 1)
        s["price"].append(float(state.clearing_price[0]))
        s["ref_price"].append(float(prev.ref_price[0]) if prev is not None else float("nan"))
        s["shock"].append(int(prev.shock_kind) if prev is not None else 0)
        s["volume"].append(float(state.volume[0]))
        for g, name in enumerate(self._goods, start=1):
            s[f"{name}_price"].append(float(state.clearing_price[g]))
            s[f"{name}_ref_price"].append(float(prev.ref_price[g]) if prev is not None else float("nan"))
            s[f"{name}_volume"].append(float(state.volume[g]))
        s["supply"].append(float(state.supply[0]))
        s["demand"].append(float(state.demand_total[0]))
        s["attempted"].append(int(res.trades.qty.shape[0]))
        s["failed"].append(int(st.failed.sum()))
        s["partial"].append(int(st.partial.sum()))
        tot = bd.sum(axis=0)
        for k in ("unserved", "curtailed", "grid_bought", "grid_sold"):
            s[k].append(float(tot[_COL[k]]))
        s["needed"].append(float(res.needed[core.agents.is_consumer].sum()))
        s["utilization"].append(open_channel_utilization(state.utilization, state.open))
        s["reward_welfare"].append(float(np.where(active, bd[:, 0], 0.0).sum()))
        s["realized_welfare"].append(realized_from_breakdown(bd, core.agents, self.storage_value))
        if self.optimum:
            opt = optimal_welfare(core, prev, storage_value=self.storage_value, **self.optimum_kwargs)
            s["optimal_welfare"].append(opt.welfare)
        else:
            s["optimal_welfare"].append(float("nan"))
        self._totals += bd
        self._prev = state

    def result(self, episode: Any = None) -> EpisodeRecord:
        """The record; `episode` (a `run_episode` result) supplies the policy groups if the
        recorder was not given them."""
        n = self.core.n_agents
        if episode is not None and self.policy_index is None:
            self.policy_index, self.policy_names = episode.policy_index, list(episode.policy_names)
        steps = {k: np.asarray(v, dtype=np.int64 if k in ("t", "shock", "attempted", "failed", "partial")
                               else np.float64) for k, v in self._steps.items()}
        totals = {k: self._totals[:, i].copy() for i, k in enumerate(BREAKDOWN_FIELDS)} if self._totals is not None \
            else {k: np.zeros(n) for k in BREAKDOWN_FIELDS}
        pidx = np.zeros(n, dtype=np.int64) if self.policy_index is None else np.asarray(self.policy_index, dtype=np.int64)
        names = list(self.policy_names) if self.policy_names is not None else [str(g) for g in range(int(pidx.max()) + 1)]
        return EpisodeRecord(steps, totals, self.core.agents.kind.astype(np.int64).copy(), pidx, names,
                             self.storage_value, tuple(getattr(self, "_goods", ())))


__all__ = ["EpisodeRecord", "EpisodeRecorder", "STEP_ARRAYS"]
