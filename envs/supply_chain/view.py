"""`SupplyChainView`: the energy market's `MarketView` fields, read off the supply-chain economy.

The policies of channel_market_v0 (risk-factor, ε-auction, the simple baselines, learned models)
read a `MarketView` (`envs/view.py`) and answer in its action convention (`envs/offers.py`). This
view declares the same fields with the supply chain's meaning, so those policies act here without
a change:

| field                                  | in the supply chain                                         |
|----------------------------------------|-------------------------------------------------------------|
| prices (`ref_price`, `reserve`, `limit`, trade prices) | in units of each good's price cap (one span for all goods) |
| `scenario`                             | `PriceRules`: retail tariff 1 (the cap), feed-in 0, one step a day, `episode_steps` = days |
| `ref_price` [G]                        | mean current price of each good's alive producers / cap     |
| `grid`                                 | False: the market is all there is                           |
| `price_unit`                           | 1 / 120: the cap spans the energy market's default tariff window (30-150 EUR/MWh) |
| `sells_good`, `buys_good`              | the good it produces while it holds some (else -1: a buyer that day); its input (Farmers: food) |
| `reserve` (own)                        | its product's unit cost basis / cap                         |
| `limit` (own)                          | 1: nobody pays over the cap                                 |
| `tradable()` (own)                     | (product units held, units it lacks: input target, or food target if more) |
| `u`, `v`, `open`, `topology_version`   | customer slots: slot i * K + k, seller i, customer `partner[i, k]` |
| `balance_u`, `channel_capacity` (own)  | the seller's wallet; both wallets (a relation has no funds of its own) |
| `my_trades()` (own)                    | the day's sales, channel = the slot (every trade is paid)   |
| `breakdown()` (own)                    | profit, revenue, cost, units sold and bought; the energy-only fields 0 |
| `capacity`, `power`, `grid_limit`, ... | scales of its plant: 2 batches, a batch, its input target   |

`is_store` is False everywhere (no stores), `advised` returns the direction unchanged. Actions
come back in the energy convention (`protocol.negotiate` decodes them); a fifth column (movement)
is optional. A producer sells its product and buys its input with one row: the policies'
`simple.dual_role` agents, whose concession column is the seller's and whose bid opens where that
concession ends at the buyer's highest price (`simple.reach_bid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..breakdown import BREAKDOWN_FIELDS
from ..view import MarketView, OwnTrades, own_trades, read_only
from ..offers import price_span
from ..scenario import PRESETS
from .scenario import KIND_NAMES

# EUR/MWh between the energy market's default feed-in and retail tariffs: what one cap is worth to the
# baselines' absolute parameters (`price_unit`)
ENERGY_WINDOW = float(price_span(PRESETS["energy_default"]))


@dataclass(frozen=True)
class PriceRules:
    """The tariff fields the energy policies read, in cap units; `supply` is the real scenario."""

    name: str
    episode_steps: int
    supply: Any
    retail_tariff: float = 1.0
    feed_in_tariff: float = 0.0
    base_price: float = 0.5
    step_hours: float = 1.0


class SupplyChainView(MarketView):
    """What a policy controlling `agents` may read of a `SupplyChainCore` (see the module docstring):
    a `MarketView` sharing its binding (`agents`, `controlled`), clock-free fields (`n_agents`,
    `schema`, `done`, `summary()`), NaN-outside masking (`_own`), the own-parameter dispatch and the
    own-trades filter (`own_trades`); the fields whose meaning differs are redefined here."""

    kind_names = KIND_NAMES

    def __init__(self, core: Any, agents: Any = None) -> None:
        if core.state is None:
            raise RuntimeError("the market has no agents yet; call reset(seed=...) first")
        super().__init__(core, agents)
        self._rules = PriceRules(core.scenario.name, int(core.scenario.days), core.scenario)

    # ---- who and when (public) ------------------------------------------------------------------
    scenario = property(lambda self: self._rules)
    t = property(lambda self: int(self._core.state.t))
    episode_steps = property(lambda self: int(self._core.scenario.days))
    stepped = property(lambda self: self._core.state.t > 0)

    @property
    def _st(self):
        return self._core.state

    @property
    def kind(self) -> np.ndarray:
        return read_only(self._st.kind)

    @property
    def sells_good(self) -> np.ndarray:
        """[N] the good it produces while it holds some, else -1: one with nothing to sell is a buyer
        that day (the energy convention's one quantity column then sets its purchases)."""
        st = self._st
        has = st.hold[np.arange(self.n_agents), st.out_good] > 0
        return read_only(np.where(has, st.out_good, -1))

    @property
    def buys_good(self) -> np.ndarray:
        st = self._st
        return read_only(np.where(st.in_good >= 0, st.in_good, self._core.food))

    @property
    def is_store(self) -> np.ndarray:
        return read_only(np.zeros(self.n_agents, dtype=bool))

    @property
    def active(self) -> np.ndarray:
        return read_only(self._st.alive.copy())

    # ---- relations (customer slots) ---------------------------------------------------------------
    @property
    def u(self) -> np.ndarray:
        st = self._st
        return read_only(np.repeat(np.arange(self.n_agents), st.partner.shape[1]))

    @property
    def v(self) -> np.ndarray:
        p = self._st.partner.ravel()
        return read_only(np.where(p >= 0, p, self.u))

    @property
    def open(self) -> np.ndarray:
        return read_only(self._st.partner.ravel() >= 0)

    @property
    def topology_version(self) -> int:
        return int(self._core.topology_version)

    def _mine(self) -> np.ndarray:
        return self._controlled[self.u] | self._controlled[self.v]

    @property
    def balance_u(self) -> np.ndarray:
        """[E] the seller's wallet on relations with a controlled endpoint; NaN elsewhere."""
        money = self._st.money
        return read_only(np.where(self._mine(), money[self.u], np.nan))

    @property
    def channel_capacity(self) -> np.ndarray:
        """[E] both wallets on relations with a controlled endpoint; NaN elsewhere."""
        money = self._st.money
        return read_only(np.where(self._mine(), money[self.u] + money[self.v], np.nan))

    # ---- prices and the last day (public) -----------------------------------------------------------
    @property
    def ref_price(self) -> np.ndarray:
        return read_only(self._core.mean_price() / self._core._cap)

    @property
    def grid(self) -> bool:
        """No grid: what an agent does not sell or buy in the market stays unsold or lacking."""
        return False

    @property
    def price_unit(self) -> float:
        """One EUR/MWh of the energy market in cap units: the cap spans the energy market's default
        tariff window (`ENERGY_WINDOW`), so a baseline's margin of 2 EUR/MWh is 2 / 120 of the cap."""
        return 1.0 / ENERGY_WINDOW

    # ---- own agents ---------------------------------------------------------------------------------
    def _plant(self) -> dict[str, np.ndarray]:
        core, st = self._core, self._st
        batch = core._batch[st.kind]
        target = np.where(st.in_good >= 0, core.scenario.input_batches * batch, self._food_target())
        reserve = st.out_cost / core._cap[st.out_good]
        return {"reserve": reserve, "limit": np.ones(self.n_agents), "capacity": 2.0 * batch, "power": batch,
                "efficiency": np.ones(self.n_agents), "grid_limit": np.maximum(target, 1.0),
                "marginal_cost": reserve, "initial_soc": np.zeros(self.n_agents)}

    def _food_target(self) -> np.ndarray:
        return self._core.scenario.food_target * (1.5 - self._st.r)

    def _own_param(self, name: str) -> np.ndarray:
        """An own parameter (`MarketView.__getattr__` dispatches `OWN_PARAMS` here): its plant's scales."""
        return self._own(self._plant()[name])

    @property
    def soc(self) -> np.ndarray:
        return self._own(np.zeros(self.n_agents))

    def tradable(self) -> tuple[np.ndarray, np.ndarray]:
        """(units of its product held, units it lacks: of its input target or, more if so, of its food
        target), own agents; NaN elsewhere. Food counts because one quantity column sets an agent's
        purchases of both (`protocol.negotiate`): a producer whose input stock is full still eats."""
        core, st = self._core, self._st
        rows = np.arange(self.n_agents)
        sellable = st.hold[rows, st.out_good]
        buys = np.asarray(self.buys_good)
        target = np.where(st.in_good >= 0, core.scenario.input_batches * core._batch[st.kind], self._food_target())
        needed = np.maximum(target - st.hold[rows, buys], 0.0)
        food_lack = np.maximum(self._food_target() - st.hold[rows, core.food], 0.0)
        needed = np.where(st.in_good >= 0, np.maximum(needed, food_lack), needed)
        alive = st.alive
        return self._own(np.where(alive, sellable, 0.0)), self._own(np.where(alive, needed, 0.0))

    def advised(self, agents: np.ndarray, direction: np.ndarray) -> np.ndarray:
        return np.asarray(direction)

    def my_trades(self) -> OwnTrades:
        tr = self._core.last_trades
        price = tr.price / self._core._cap[tr.good]
        return own_trades(self._controlled, (tr.slot, tr.seller, tr.buyer, tr.good, tr.qty, price, tr.qty,
                                             tr.qty * price, np.zeros(tr.qty.shape, bool), np.zeros(tr.qty.shape, bool)))

    def breakdown(self) -> dict[str, np.ndarray]:
        core, tr, n = self._core, self._core.last_trades, self.n_agents
        vals = {k: np.zeros(n) for k in BREAKDOWN_FIELDS}
        vals.update(profit=core._profit, revenue=core._sales, cost=core._purchases,
                    sold=np.bincount(tr.seller, weights=tr.qty, minlength=n),
                    bought=np.bincount(tr.buyer, weights=tr.qty, minlength=n))
        return {k: self._own(v) for k, v in vals.items()}

    def __repr__(self) -> str:
        return f"SupplyChainView({self._core.scenario.name!r}, {self._agents.shape[0]} of {self.n_agents} agents)"


__all__ = ["SupplyChainView", "PriceRules"]
