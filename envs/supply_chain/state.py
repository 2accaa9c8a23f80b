"""The supply-chain economy's state: one struct of arrays for N agents and their N x K customer slots.

Per agent: kind, risk factor, alive flag, position and heading, vital energy, money, the goods
it holds (`hold[N, G]`, G = corn, flour, bread, food), its input stock as cost lots (`lot_qty`,
`lot_cost` [N, L]: production takes the cheapest first), the unit cost of its product stock,
production in progress (`busy` days left, `wip` units, `wip_cost`), its current price, the last
price it paid for its input and for food, the path it travelled.

Per customer slot (the paper's "list of customers", the economy's channels: seller row i,
slot k, customer `partner[i, k]`): regular-customer points, transactions, their value, first
and last day, the last list price offered and its outcome, whether it was offered to, days
out of range. A slot opens when a customer comes within the radius and lapses after
`lapse_days` out of it or when either side dies. The slot arrays are the day's memory traffic (N x K),
so they are as narrow as their values allow, every value exact: customers int32 (agent indices), days
out of range int16 (at most `lapse_days`, scenario-bounded), transactions and first/last day float32
(whole numbers up to 2^24, `scenario.MAX_DAYS`; the rules read them as float64, so every computation
gives the float64 result).

Ledger (for the conservation tests): goods produced and consumed by production, food eaten,
per good; money is only moved between agents.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

LOTS = 4                     # input cost lots per agent


@dataclass
class SupplyState:
    kind: np.ndarray         # [N] int64, registry order (farmer, miller, baker, seller)
    out_good: np.ndarray     # [N] int64 good it produces
    in_good: np.ndarray      # [N] int64 good it needs for production (-1: none)
    r: np.ndarray            # [N] risk factor
    alive: np.ndarray        # [N] bool
    died: np.ndarray         # [N] int64 day of death (-1 alive)
    xy: np.ndarray           # [N, 2]
    heading: np.ndarray      # [N, 2] unit vector (zero: none yet)
    speed: np.ndarray        # [N] last day's speed
    path: np.ndarray         # [N] distance travelled
    vital: np.ndarray        # [N] in [0, 1]
    money: np.ndarray        # [N]
    hold: np.ndarray         # [N, G] units held
    lot_qty: np.ndarray      # [N, L] input units per lot
    lot_cost: np.ndarray     # [N, L] unit cost per lot
    out_cost: np.ndarray     # [N] unit cost of the product stock
    busy: np.ndarray         # [N] int64 production days left
    wip: np.ndarray          # [N] units in production
    wip_cost: np.ndarray     # [N] their total cost
    price: np.ndarray        # [N] current price of its product (last offered)
    last_paid: np.ndarray    # [N, 2] last unit price paid: input, food (NaN: never bought)
    # customer slots [N, K]
    partner: np.ndarray      # int32 customer (-1: free)
    points: np.ndarray       # float64 regular-customer points
    n_tr: np.ndarray         # float32 transactions (whole numbers)
    value_sum: np.ndarray    # float64 their value
    t_first: np.ndarray      # float32 day of the first (whole numbers)
    t_last: np.ndarray       # float32 day of the last (or of the opening)
    list_price: np.ndarray   # float64 last list price offered (NaN: none)
    outcome: np.ndarray      # int8 its outcome (risk_rules ACCEPTED / REJECTED, 0: none)
    offered: np.ndarray      # bool offered to since the memory reset
    away: np.ndarray         # int16 days out of range
    # ledger [G]
    produced: np.ndarray
    consumed: np.ndarray
    eaten: np.ndarray
    initial_goods: np.ndarray
    money0: float
    t: int
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return self.kind.shape[0]

    def array_dict(self) -> dict[str, np.ndarray]:
        """Every array of the state by field name (copies), plus t and the generator's state."""
        out = {f.name: getattr(self, f.name).copy() for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}
        return out


__all__ = ["SupplyState", "LOTS"]
