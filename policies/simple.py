"""Plain baselines: the floor any learned policy must clear, plus the action-encoding helpers
every rule-based policy shares.

- `Truthful`: asks at its reserve, bids at its limit, offers everything, concedes fully.
- `FixedMarkup`: sellers post reserve x (1 + m) (or reference price x (1 + m)) and never
  concede; buyers are price takers: they open at the reference price and concede up to
  their limit, so they accept any posted price they can bear.
- `ZeroIntelligence`: Gode and Sunder's (1993) budget-constrained ZI-C trader: a uniform
  random ask in [reserve, retail tariff], a uniform random bid in [0, limit], random
  concession; never trades at a loss, never learns.
- `RandomPolicy`: uniform random actions in [-1, 1]^4 (no constraint beyond the env's own).

Encoding (the inverse of `channelmarket.envs.offers.decode`): the env opens an ask at
`clip(ref + a * span, reserve, retail)` with `span` the tariff spread (`offers.price_span`), so a target ask
`p` is `a = (p - ref) / span`, clipped to [-1, 1]; bids likewise with `clip(., 0, limit)`.
The opening window is therefore `ref +- span`: a target outside it opens at the window's
edge (the concession still reaches reserve/limit by round K). `encode_actions` computes
exact encodings from the view's `ref_price`, the price `decode` will use this step.

Every helper takes `market`: the policy's `MarketView` (`envs/view.py`; what the baselines
pass), or a `MarketCore`, read through its view of `agents`. They read nothing else.

Storage is both a seller and a buyer, but one action quantity picks one side per step. All
rule-based baselines share one direction rule, `storage_direction`, so they differ only in
pricing: sell when the reference price is at or above the scenario's daily mean price or
when the episode ends before the store could empty, buy otherwise.

Producers (`dual_role`: non-store agents that sell and buy in one step, as in the supply chain,
where a Miller sells flour and buys corn; none in the energy market) also answer with one row:
the quantity column is the larger of the two shares, the concession column is the seller's, and
the bid opens where that concession ends at the buyer's highest price (`reach_bid`,
`encode_actions(..., buyer_reach=...)`). Parameters in money (EUR/MWh margins, EUR of loyalty
points) are scaled by the view's `price_unit` (1 in the energy market), so a policy means the same
share of the tariff window on every market.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..envs.offers import ASK, BID, CONCESSION, N_ACTIONS, QUANTITY, price_span
from ..envs.view import MarketView
from .base import Policy


# ---- encoding helpers ----------------------------------------------------------------------

# action units an exact-bound encoding moves asks down / bids up: far above the round-off of
# ref + a * span (so a target on the reserve / limit is clipped back onto it exactly), far
# below any price that matters (1e-12 x span EUR/MWh)
NUDGE = 1e-12

def as_view(market: Any, agents: np.ndarray) -> MarketView:
    """`market` itself if it is a `MarketView`, else the view of `agents` of the core `market`."""
    return market if isinstance(market, MarketView) else market.view(agents)


def price_window(market: Any, agents: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(reference price of the good each agent sells [M], of the good it buys [M], span):
    exactly the values `decode` uses on the next `core.step`."""
    view = as_view(market, agents)
    ref = view.ref_price
    span = price_span(view.scenario)
    sell_ref = ref[np.maximum(view.sells_good[agents], 0)]
    buy_ref = ref[np.maximum(view.buys_good[agents], 0)]
    return sell_ref, buy_ref, span


def ask_action(target: np.ndarray, ref: np.ndarray, span: float, floor: bool = False) -> np.ndarray:
    """Action column that opens the ask at `target` (or the window edge nearest to it).
    `floor=True` nudges it down by NUDGE so a target equal to the reserve decodes exactly to it
    (the env lifts the few-ulp undershoot back onto the reserve)."""
    a = (np.asarray(target, dtype=np.float64) - ref) / span
    if floor:
        a = a - NUDGE
    return np.clip(a, -1.0, 1.0)


def bid_action(target: np.ndarray, ref: np.ndarray, span: float, ceil: bool = False) -> np.ndarray:
    """Action column that opens the bid at `target` (or the window edge nearest to it).
    `ceil=True` nudges it up by NUDGE so a target equal to the limit decodes exactly to it."""
    a = (np.asarray(target, dtype=np.float64) - ref) / span
    if ceil:
        a = a + NUDGE
    return np.clip(a, -1.0, 1.0)


def opening_ask(market: Any, agents: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The ask `decode` opens at for action column `a` (same formula, for the M agents)."""
    view = as_view(market, agents)
    sell_ref, _, span = price_window(view, agents)
    res = view.reserve[agents]
    ask = np.maximum(sell_ref + a * span, res)
    return np.maximum(np.minimum(ask, view.scenario.retail_tariff), res)


def opening_bid(market: Any, agents: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The bid `decode` opens at for action column `a`."""
    view = as_view(market, agents)
    _, buy_ref, span = price_window(view, agents)
    return np.clip(buy_ref + a * span, 0.0, view.limit[agents])


def dual_role(market: Any, agents: np.ndarray) -> np.ndarray:
    """[M] bool: agents that sell and buy this step with one action row and are not stores — the
    supply chain's producers (they sell their product and buy their input). Never true in the energy
    market, whose non-store kinds either sell or buy. Their concession column is the seller's, so the
    buyer side is set through the opening bid (`reach_bid`)."""
    view = as_view(market, agents)
    return (view.sells_good[agents] >= 0) & (view.buys_good[agents] >= 0) & ~view.is_store[agents]


def reach_bid(reach: np.ndarray, share: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Opening bid b from which conceding `share` of the room to `limit` ends at `reach`:
    b + share x (limit - b) = reach, b in [0, reach] (a reach under share x limit opens at 0 and
    ends at share x limit)."""
    reach, share, limit = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (reach, share, limit)))
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (reach - share * limit) / (1.0 - share)
    return np.where(share < 1.0, np.clip(np.nan_to_num(b), 0.0, np.maximum(reach, 0.0)),
                    np.where(reach >= limit, reach, 0.0))


def concession_action(share: np.ndarray) -> np.ndarray:
    """Action column for a concession share in [0, 1]."""
    return np.clip(2.0 * np.asarray(share, dtype=np.float64) - 1.0, -1.0, 1.0)


def quantity_action(market: Any, agents: np.ndarray, sell_share: np.ndarray, buy_share: np.ndarray,
                    direction: np.ndarray | None = None) -> np.ndarray:
    """Action column for the shares (in [0, 1]) of sellable / needed energy offered.
    Generators use `sell_share`, consumers `buy_share`; storage sells `sell_share` of its
    deliverable charge when `direction` > 0 and buys `buy_share` of its headroom when < 0."""
    view = as_view(market, agents)
    sell_share = np.clip(np.broadcast_to(sell_share, agents.shape), 0.0, 1.0)
    buy_share = np.clip(np.broadcast_to(buy_share, agents.shape), 0.0, 1.0)
    buy_only = (view.sells_good[agents] < 0) & (view.buys_good[agents] >= 0)   # role: a pure buyer
    q = np.where(buy_only, 2.0 * buy_share - 1.0, 2.0 * sell_share - 1.0)
    # a producer that sells and buys in one row (supply chain): the larger share, so neither side starves
    q = np.where(dual_role(view, agents), 2.0 * np.maximum(sell_share, buy_share) - 1.0, q)
    if direction is None:
        direction = storage_direction(view, agents)
    st = view.is_store[agents]
    q = np.where(st, np.where(direction > 0, sell_share, np.where(direction < 0, -buy_share, 0.0)), q)
    return q


def storage_direction(market: Any, agents: np.ndarray) -> np.ndarray:
    """+1 sell, -1 buy, per controlled agent (0 for non-stores): sell when the reference
    price is at or above the scenario's daily mean price, or when the episode ends before
    the store could deliver its charge; buy otherwise. A kind with an `advise` hook (electric
    vehicles: buy below the departure target, idle while away) overrides this for its agents."""
    view = as_view(market, agents)
    sc = view.scenario
    storage = view.is_store[agents]
    ref = view.ref_price[np.maximum(view.sells_good[agents], 0)]
    per_step = np.maximum(view.power[agents] * sc.step_hours, 1e-12)
    steps_to_empty = np.ceil(view.soc[agents] * view.efficiency[agents] / per_step)
    remaining = sc.episode_steps - view.t
    sell = (ref >= sc.base_price) | (remaining <= steps_to_empty + 1)
    direction = np.where(storage, np.where(sell, 1, -1), 0).astype(np.int64)
    return advised(view, agents, direction)


def advised(market: Any, agents: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """`direction` [M] of `agents` with the `advise` hooks of their kinds applied (kinds.KindSpec)."""
    return as_view(market, agents).advised(agents, direction)


def trading_roles(market: Any, agents: np.ndarray, controlled: np.ndarray):
    """This step's roles of the controlled agents: (sellable [N], needed [N], storage direction
    [M] of `agents`, sellers [N] (controlled, active, sell a good and have energy to sell; stores
    only when selling), buyers [N] (controlled, active, buy a good; stores only when buying))."""
    view = as_view(market, agents)
    sellable, needed = view.tradable()
    direction_m = storage_direction(view, agents)
    direction = np.zeros(view.n_agents, dtype=np.int64)
    direction[agents] = direction_m
    storage = view.is_store
    ctrl = controlled & view.active
    sellers = ctrl & (view.sells_good >= 0) & (sellable > 0) & (~storage | (direction > 0))
    buyers = ctrl & (view.buys_good >= 0) & (~storage | (direction < 0))
    return sellable, needed, direction_m, sellers, buyers


def encode_actions(market: Any, agents: np.ndarray, ask: np.ndarray, bid: np.ndarray, sell_share: np.ndarray,
                   buy_share: np.ndarray, concession: np.ndarray, direction: np.ndarray | None = None,
                   exact_bounds: bool = False, buyer_reach: np.ndarray | None = None) -> np.ndarray:
    """actions[M, 4] for target opening prices, offered shares and concession shares.
    `exact_bounds` nudges asks down / bids up by NUDGE so targets equal to the reserve / limit
    decode exactly (the env clips them back onto the bound), and a bid >= an ask stays so.
    `buyer_reach` [M]: the highest price each agent's buyer side should reach; for `dual_role`
    agents (their concession is the seller's) the bid opens where that concession ends there
    (`reach_bid`). Other agents ignore it."""
    view = as_view(market, agents)
    sell_ref, buy_ref, span = price_window(view, agents)
    out = np.empty((agents.shape[0], N_ACTIONS))
    out[:, ASK] = ask_action(ask, sell_ref, span, floor=exact_bounds)
    out[:, BID] = bid_action(bid, buy_ref, span, ceil=exact_bounds)
    out[:, QUANTITY] = quantity_action(view, agents, sell_share, buy_share, direction)
    out[:, CONCESSION] = concession_action(np.broadcast_to(concession, agents.shape))
    if buyer_reach is not None:
        set_dual_bids(view, agents, out, buyer_reach)
    return out


def set_dual_bids(market: Any, agents: np.ndarray, actions: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """`actions` (in place) with the bid column of `dual_role` agents opening where their concession
    column ends at `reach` [M] (`reach_bid`); the other rows are left as they are."""
    view = as_view(market, agents)
    dual = dual_role(view, agents)
    if dual.any():
        _, buy_ref, span = price_window(view, agents)
        share = 0.5 * (actions[:, CONCESSION] + 1.0)
        b = reach_bid(np.broadcast_to(reach, agents.shape), share, view.limit[agents])
        actions[:, BID] = np.where(dual, bid_action(b, buy_ref, span), actions[:, BID])
    return actions


# ---- policies -------------------------------------------------------------------------------

class Truthful(Policy):
    """Reveals its values: ask at reserve, bid at limit, all energy offered, full concession.

    Where the reserve (limit) lies outside the opening window `ref +- span`, the ask (bid)
    opens at the window's edge and the full concession walks it to the reserve (limit) by
    round K, so the truthful agent still accepts every price within its values."""

    name = "truthful"

    def act(self, obs: np.ndarray) -> np.ndarray:
        view, idx = self.view, self.agents
        return encode_actions(view, idx, view.reserve[idx], view.limit[idx], 1.0, 1.0, 1.0, exact_bounds=True)


class FixedMarkup(Policy):
    """Sellers post a fixed markup and never concede; buyers take posted prices.

    basis="reserve": ask = reserve x (1 + markup); basis="ref": ask = max(reserve, ref x (1 + markup)).
    Buyers open at the reference price (x (1 + buyer_offset)) and concede `buyer_concession`
    of the way to their limit, i.e. accept any posted price up to it."""

    name = "fixed_markup"

    def __init__(self, markup: float = 0.1, basis: str = "ref", buyer_offset: float = 0.0,
                 buyer_concession: float = 1.0) -> None:
        super().__init__()
        if basis not in ("reserve", "ref"):
            raise ValueError(f"FixedMarkup basis = {basis!r}; allowed: 'reserve', 'ref'")
        if not (np.isfinite(markup) and markup >= 0):
            raise ValueError(f"FixedMarkup markup = {markup!r}; allowed: a number >= 0")
        if not 0.0 <= buyer_concession <= 1.0:
            raise ValueError(f"FixedMarkup buyer_concession = {buyer_concession!r}; allowed: [0, 1]")
        self.markup, self.basis = float(markup), basis
        self.buyer_offset, self.buyer_concession = float(buyer_offset), float(buyer_concession)

    def act(self, obs: np.ndarray) -> np.ndarray:
        view, idx = self.view, self.agents
        sell_ref, buy_ref, _ = price_window(view, idx)
        res = view.reserve[idx]
        base = res if self.basis == "reserve" else sell_ref
        ask = np.maximum(res, base * (1.0 + self.markup))
        bid = buy_ref * (1.0 + self.buyer_offset)
        is_seller = view.sells_good[idx] >= 0
        is_buyer = view.buys_good[idx] >= 0
        direction = storage_direction(view, idx)
        # sellers hold their price; storage in buying mode and consumers are buyers
        buying = is_buyer & (~is_seller | (direction < 0))
        conc = np.where(buying, self.buyer_concession, 0.0)
        reach = bid + self.buyer_concession * (view.limit[idx] - bid)    # a producer that also buys
        return encode_actions(view, idx, ask, bid, 1.0, 1.0, conc, direction, buyer_reach=reach)


class ZeroIntelligence(Policy):
    """Gode and Sunder's ZI-C trader: uniform random ask in [reserve, retail] and bid in
    [0, limit], drawn inside the opening window so the drawn price is the opening price
    exactly; a uniform random concession (the K rounds stand for ZI's repeated random
    quotes, always within the budget constraint); storage picks a random side and amount."""

    name = "zero_intelligence"

    def __init__(self, random_concession: bool = True) -> None:
        super().__init__()
        self.random_concession = bool(random_concession)

    def act(self, obs: np.ndarray) -> np.ndarray:
        view, idx = self.view, self.agents
        sc = view.scenario
        m = idx.shape[0]
        sell_ref, buy_ref, span = price_window(view, idx)
        res, lim = view.reserve[idx], view.limit[idx]
        a_lo = np.maximum(res, sell_ref - span)
        a_hi = np.maximum(np.minimum(sc.retail_tariff, sell_ref + span), a_lo)
        b_lo = np.maximum(0.0, buy_ref - span)
        b_hi = np.minimum(lim, buy_ref + span)
        b_lo = np.minimum(b_lo, b_hi)
        u = self.rng.random((4, m))
        ask = a_lo + u[0] * (a_hi - a_lo)
        bid = b_lo + u[1] * (b_hi - b_lo)
        conc = u[2] if self.random_concession else np.zeros(m)
        storage = view.is_store[idx]
        q = 2.0 * u[3] - 1.0                           # storage: random side and amount
        direction = advised(view, idx, np.where(q >= 0, 1, -1))
        share = np.where(storage, np.abs(q), 1.0)      # generators and consumers offer all
        return encode_actions(view, idx, ask, bid, share, share, conc, direction)


class RandomPolicy(Policy):
    """Uniform random actions in [-1, 1]^4."""

    name = "random"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, size=(obs.shape[0], N_ACTIONS))


__all__ = [
    "Truthful", "FixedMarkup", "ZeroIntelligence", "RandomPolicy", "encode_actions", "storage_direction",
    "price_window", "ask_action", "bid_action", "concession_action", "quantity_action", "opening_ask", "opening_bid",
    "dual_role", "reach_bid", "set_dual_bids",
]
