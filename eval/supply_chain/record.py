"""Run one supply-chain economy and keep what the experiments plot: a `History` of daily series.

Per day: agents alive per kind, the mean offered price per good (paper Figure 11A: every alive
producer's current price), the transaction price per good (11B: that day's trades only, NaN
without trades), trades per good, every transaction's (day, seller kind, buyer kind) for the
rasters (Figure 17), positions of every agent (traces, snapshots) and the path travelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...envs.supply_chain import SupplyChainCore


@dataclass
class History:
    scenario: Any
    kind: np.ndarray                       # [N]
    r: np.ndarray                          # [N]
    alive: list = field(default_factory=list)          # [D] arrays [K]
    offered: list = field(default_factory=list)        # [D] arrays [G]
    transacted: list = field(default_factory=list)     # [D] arrays [G]
    trades: list = field(default_factory=list)         # [D] arrays [G]
    tx: list = field(default_factory=list)             # (day, seller kind, buyer kind, seller, buyer) rows
    xy: list = field(default_factory=list)             # [D+1] arrays [N, 2]
    alive_agents: list = field(default_factory=list)   # [D+1] arrays [N] bool
    died: np.ndarray | None = None
    path: np.ndarray | None = None
    shocks: list = field(default_factory=list)

    @property
    def days(self) -> int:
        return len(self.alive)

    def array(self, name: str) -> np.ndarray:
        return np.array(getattr(self, name))

    def lifespan(self) -> np.ndarray:
        """[N] days each agent lived (the run's length for survivors: censored)."""
        return np.where(self.died >= 0, self.died + 1, self.days)

    def path_per_day(self) -> float:
        """Mean distance an agent travelled per day it was alive (paper Figure 15)."""
        return float(self.path.sum() / max(self.lifespan().sum(), 1))

    def tx_array(self) -> np.ndarray:
        return np.array(self.tx, dtype=np.int64).reshape(-1, 5)


def simulate(core: SupplyChainCore, seed: int, days: "int | None" = None,
             actions: "Callable[[np.ndarray], np.ndarray] | None" = None, mask: "np.ndarray | None" = None,
             on_day: "Callable[[SupplyChainCore], None] | None" = None) -> History:
    """Run `core` from reset(seed) for `days` (default the scenario's); `actions(obs)` drives the agents
    in `mask` (default: none, every agent follows the built-in rules)."""
    obs = core.reset(seed=seed)
    st = core.state
    h = History(core.scenario, st.kind.copy(), st.r.copy())
    h.xy.append(st.xy.copy())
    h.alive_agents.append(st.alive.copy())
    n_days = core.scenario.days if days is None else days
    k = len(core.kind_names)
    for _ in range(n_days):
        if core.done:
            break
        a = actions(obs) if actions is not None else None
        obs, *_ = core.step(a, mask=mask if actions is not None else None)
        s = core.summary()
        h.alive.append(np.bincount(st.kind[st.alive], minlength=k))
        h.offered.append(np.array(list(s["offered_price"].values())))
        h.transacted.append(np.array(list(s["transaction_price"].values())))
        h.trades.append(np.array(list(s["trades"].values())))
        tr = core.last_trades
        d = st.t - 1
        h.tx.extend(zip([d] * tr.seller.size, st.kind[tr.seller].tolist(), st.kind[tr.buyer].tolist(),
                        tr.seller.tolist(), tr.buyer.tolist()))
        h.xy.append(st.xy.copy())
        h.alive_agents.append(st.alive.copy())
        if on_day is not None:
            on_day(core)
    h.died = st.died.copy()
    h.path = st.path.copy()
    h.shocks = list(core.shocks)
    return h


__all__ = ["History", "simulate"]
