"""The ε-auction as a market baseline: the controlled agents agree on who trades with whom by
Bertsekas' auction before the market's bilateral negotiation, then act out the assignment.

Each step (from the Python-DTU team's auction-based agreement, MAPC 2011, on the market):
1. Buyers' demand lots bid for sellers' supply lots reachable over an open channel whose two
   ends are both controlled by this policy, the buyer's side holding money. Values: buyer
   limit, seller ask = reserve + `margin`; benefit per MWh = limit - ask; quantities are the
   energy the agents can sell (`sellable`) and need (`needed`), cut into lots as in the core's
   `eps_auction` clearing (`channelmarket.envs.mechanisms.eps_auction.match_lots`); storage sells or
   buys by the shared `storage_direction` rule.
2. The shared solver (`channelmarket.envs.eps_auction.auction`) assigns lots. A matched lot
   is priced at the seller's ask plus the auction's price of that lot (its premium; ~0 when
   supply is plentiful, up to the buyer's limit when it is scarce), and a channel carries no
   more than its payer side can pay at those prices.
3. The assignment becomes actions: a matched seller offers its matched quantity and opens
   at the lowest price of its matched lots; a matched buyer wants its matched quantity and
   bids the highest price of its matched lots; nobody concedes. Every matched pair then has
   bid >= ask and agrees at round 0 of the bilateral negotiation. Unmatched agents offer
   quantity 0 (generators sell to the grid, consumers buy from it).

In a market without a grid (`view.grid` False: the supply chain) nobody has a grid to fall back
on: the unmatched rest of an agent's product goes to the open market at its ask (quantity: all of
it) and, as a consumer buys from the grid at its limit, it accepts sellers' prices up to its limit
(no concession is needed: the bid opens there). The energy market has a grid, so nothing changes there.

Mapping limits: the env rations a buyer's quantity over every channel that agrees, not only
its matched ones, so the realized flows can differ from the assignment (never the totals per
agent); opening prices outside the window ref +- span open at its edge, which keeps
bid >= ask on every matched pair. Partners this policy does not control are not bid for.

Storage reserves (`storage_reserve="cost_basis"`, the default): a store's ask reflects what its
charge cost, not the feed-in tariff. The policy tracks each controlled store's cost basis: the
acquisition cost of the charge it holds (EUR; the initial charge at the scenario's base price),
raised by what every purchase paid and lowered at the average cost by every sale, and a store
asks at least basis / (charge) / one-way efficiency (+ margin) for a delivered MWh. With
`storage_reserve="feed_in"` (the old rule) a store asks reserve + margin, the feed-in tariff, and
sells below what it paid: about -42 EUR per store per day on `energy_default` in issue 10.

It reads the market through its `MarketView`: the channel graph and the reference price, and its
own agents' values, quantities and channel balances (both its pairs' endpoints are its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..envs.mechanisms.eps_auction import LOTS_PER_AGENT, MAX_LOTS, cap_by_balance, match_lots
from .base import Policy
from ..envs.offers import BID, QUANTITY
from .simple import bid_action, encode_actions, price_window, trading_roles

STORAGE_RESERVES = ("cost_basis", "feed_in")


class EpsAuctionBaseline(Policy):
    """Agents coordinated by the ε-auction (see module docstring)."""

    name = "eps_auction"

    def __init__(self, margin: float = 2.0, eps: float = 0.01, lots_per_agent: int = LOTS_PER_AGENT,
                 max_lots: int = MAX_LOTS, storage_reserve: str = "cost_basis") -> None:
        super().__init__()
        if storage_reserve not in STORAGE_RESERVES:
            raise ValueError(f"EpsAuctionBaseline storage_reserve = {storage_reserve!r}; allowed: "
                             f"{', '.join(map(repr, STORAGE_RESERVES))}")
        self.storage_reserve = storage_reserve
        self.stored_cost = np.zeros(0)    # [N] EUR the controlled stores paid for the charge they hold
        self._soc_before = np.zeros(0)
        if not (np.isfinite(margin) and margin >= 0):
            raise ValueError(f"EpsAuctionBaseline margin = {margin!r}; allowed: a number >= 0 (EUR/MWh)")
        if not (np.isfinite(eps) and eps > 0):
            raise ValueError(f"EpsAuctionBaseline eps = {eps!r}; allowed: a number > 0 (EUR/MWh)")
        self.margin, self.eps = float(margin), float(eps)
        self.lots_per_agent, self.max_lots = int(lots_per_agent), int(max_lots)
        self.matched_sell = np.zeros(0)   # [M] MWh matched this step per controlled agent
        self.matched_buy = np.zeros(0)
        self.pairs = None                 # matched lots of the last assignment (see `assign`)

    def bind(self, core: Any, agents: np.ndarray, seed: Any = None) -> None:
        super().bind(core, agents, seed)
        self.controlled = np.zeros(self.view.n_agents, dtype=bool)
        self.controlled[self.agents] = True
        view = self.view
        self._stores = self.controlled & view.is_store
        soc = np.where(self._stores, np.nan_to_num(view.soc), 0.0)
        self.stored_cost = soc * view.scenario.base_price   # the initial charge at the base price
        self._soc_before = soc

    def update(self, core: Any) -> None:
        """Cost basis after the step: purchases add what they paid, sales remove charge at the average cost."""
        view = self.view
        tr = view.my_trades()
        n = view.n_agents
        stores = self._stores
        paid_in = np.bincount(tr.buyer, weights=tr.paid, minlength=n)
        sold_mwh = np.bincount(tr.seller, weights=tr.paid_qty, minlength=n)
        eff = np.where(stores, np.nan_to_num(view.efficiency, nan=1.0), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            avg = np.where(self._soc_before > 1e-12, self.stored_cost / self._soc_before, 0.0)
        cost = self.stored_cost + paid_in - avg * sold_mwh / eff
        soc = np.where(stores, np.nan_to_num(view.soc), 0.0)
        self.stored_cost = np.where(stores & (soc > 1e-12), np.maximum(cost, 0.0), 0.0)
        self._soc_before = soc

    def cost_basis(self) -> np.ndarray:
        """[N] EUR per delivered MWh of each controlled store's charge (its cost / charge / one-way
        efficiency); 0 for other agents and empty stores."""
        view = self.view
        soc = np.where(self._stores, np.nan_to_num(view.soc), 0.0)
        eff = np.where(self._stores, np.nan_to_num(view.efficiency, nan=1.0), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(soc > 1e-12, self.stored_cost / np.maximum(soc, 1e-300) / eff, 0.0)

    def assign(self):
        """Solve this step's assignment. Returns (sell_qty [N], buy_qty [N], ask [N], bid [N],
        direction [M]): matched quantities and prices (nan where unmatched)."""
        view, idx = self.view, self.agents
        ag = st = view
        sc = view.scenario
        n = view.n_agents
        sellable, needed, direction_m, seller_ok, buyer_ok = trading_roles(view, idx, self.controlled)
        buyer_ok &= needed > 0
        sell_q = np.where(seller_ok, sellable, 0.0)
        buy_q = np.where(buyer_ok, needed, 0.0)
        unit = view.price_unit                   # margin and eps are EUR/MWh: in this market's prices
        value_s = np.minimum(self.reserves() + self.margin * unit, sc.retail_tariff)

        u, v, is_open = st.u, st.v, st.open
        fwd = np.flatnonzero(is_open & seller_ok[u] & buyer_ok[v] & (ag.sells_good[u] == ag.buys_good[v]))
        rev = np.flatnonzero(is_open & seller_ok[v] & buyer_ok[u] & (ag.sells_good[v] == ag.buys_good[u]))
        channel = np.concatenate([fwd, rev])
        seller = np.concatenate([u[fwd], v[rev]])
        buyer = np.concatenate([v[fwd], u[rev]])
        balance_u = st.balance_u                  # own channels (both ends are controlled here)
        payer = np.concatenate([st.channel_capacity[fwd] - balance_u[fwd], balance_u[rev]])
        surplus = np.where(payer > 0, ag.limit[buyer] - value_s[seller], 0.0)
        nan = np.full(n, np.nan)
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        self.pairs = (empty_i, empty_i, empty_i, empty_f, empty_f)
        if channel.shape[0] == 0:
            return np.zeros(n), np.zeros(n), nan, nan.copy(), direction_m
        m = match_lots(seller, buyer, surplus, sell_q, buy_q, self.eps * unit, priority=payer,
                       lots_per_agent=self.lots_per_agent, max_lots=self.max_lots)
        k = m.pair
        price = np.clip(value_s[seller[k]] + m.premium, value_s[seller[k]], ag.limit[buyer[k]])
        qty = cap_by_balance(channel[k], m.qty, price, surplus[k] * m.qty, payer[k])
        keep = qty > 0
        k, qty, price = k[keep], qty[keep], price[keep]
        s, b = seller[k], buyer[k]
        self.pairs = (channel[k], s, b, qty, price)   # matched lots: channel, seller, buyer, MWh, EUR/MWh
        sold = np.bincount(s, weights=qty, minlength=n)
        bought = np.bincount(b, weights=qty, minlength=n)
        ask = np.full(n, np.inf)
        bid = np.full(n, -np.inf)
        np.minimum.at(ask, s, price)
        np.maximum.at(bid, b, price)
        ask = np.where(np.isfinite(ask), ask, np.nan)
        bid = np.where(np.isfinite(bid), bid, np.nan)
        return sold, bought, ask, bid, direction_m

    def reserves(self) -> np.ndarray:
        """[N] the lowest price each agent sells at: its reserve, for stores (cost_basis) at least
        the cost basis of its charge."""
        res = self.view.reserve
        if self.storage_reserve == "cost_basis" and self._stores.any():
            res = np.where(self._stores, np.maximum(res, self.cost_basis()), res)
        return res

    def act(self, obs: np.ndarray) -> np.ndarray:
        view, idx = self.view, self.agents
        sc = view.scenario
        sellable, needed = view.tradable()
        sold, bought, ask, bid, direction = self.assign()
        self.matched_sell, self.matched_buy = sold[idx], bought[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            sell_share = np.where(sellable[idx] > 0, sold[idx] / sellable[idx], 0.0)
            buy_share = np.where(needed[idx] > 0, bought[idx] / needed[idx], 0.0)
        # unmatched: a price that cannot matter (quantity 0): reserve-based ask, zero-ish bid
        ask_t = np.where(np.isnan(ask[idx]), np.minimum(self.reserves()[idx] + self.margin * view.price_unit,
                                                        sc.retail_tariff), ask[idx])
        bid_t = np.where(np.isnan(bid[idx]), 0.0, bid[idx])
        # storage acting out a match keeps the matched side; unmatched storage offers nothing
        # asks nudged down and bids up (NUDGE): a matched pair (bid >= ask) still agrees after decoding
        out = encode_actions(view, idx, ask_t, bid_t, sell_share, buy_share, 0.0, direction, exact_bounds=True)
        if not view.grid:   # no grid to fall back on (the supply chain): the open market takes the rest
            _, buy_ref, span = price_window(view, idx)
            out[:, QUANTITY] = 1.0
            out[:, BID] = bid_action(view.limit[idx], buy_ref, span, ceil=True)
        return out


__all__ = ["EpsAuctionBaseline"]
