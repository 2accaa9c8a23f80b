"""The risk-factor negotiator of the MASER model (Krolikowski, Kopys and Jedruch, 2016,
"Self-Organization in Multi-Agent Systems Based on Examples of Modeling Economic
Relationships between Agents", Front. Robot. AI 3:41), vectorized over the controlled agents
and, where a rule is per partner, over channel slots.

Every agent draws a risk factor r ~ U(r_range). In the paper a larger r makes an agent
"more prone to raise prices, to ignore lacking food, and not to offer preferential rates for
regular customers"; a lower r "makes the agent establish a steady cooperation".

## The rules (paper section -> here)

Offer price (Making an offer), per partner = per (channel, side):
1. Start from the minimal price that covers cost: the seller's reserve (storage: the larger
   of its reserve and the average cost of the energy in store, cost / efficiency).
2. Add a retail margin, a share of the room up to the retail tariff:
   margin = (margin_base + margin_risk * r) * (1 - discount(r) * regular), where
   regular = points / (points + points_half) in [0, 1) is how regular a customer the partner
   is, and discount(r) = regular_discount * clip(1 - r / regular_r_max, 0, 1) is zero for
   high-r agents: preferential rates are offered by low-r agents only.
   First contact: list price = reserve + margin * (retail - reserve).
3. Repeated contact (the partner already got an offer): the list price moves from the last
   one offered to that partner: toward the current first-contact price by `reversion` (the
   "current price greater or lower than the previous" clause), up by
   price_step * r * (1 - pressure) of the room if the last offer was accepted (risk-prone
   agents raise more, pressured ones do not), down by price_step * (1 - r) * (1 + pressure)
   if it was rejected (restrained and pressured agents cut harder).
4. Stock pressure (energy to sell): the price sent is
   reserve + (list - reserve) * (1 - pressure_weight * pressure); generators' pressure is
   their output share of rating (perishable energy), storage's its state of charge.

Purchase decision (Purchase), the paper's IF chain, in order (`purchase_decision`):
not interesting (not the good it needs, or storage that sells this step) -> no; cannot
afford (its channel balances to sellers cannot pay `min_affordable` of its need at the
reference price) -> no; first transaction -> yes; a bargain (price <= the last price it
paid) -> yes; otherwise a risk-taker refuses and waits, a restrained agent accepts. The agent
is restrained when r <= accept_r + accept_pressure * pressure, so the threshold moves with
its stock pressure (consumers: need / grid limit, i.e. risk of going unserved; storage:
1 - state of charge). For a price p the chain accepts exactly the p <= T with
T = limit (first transaction or restrained) or T = last price paid (risk-taker): see
`acceptance_threshold`.

Regular customers (Building-up relationships): per (channel, side) the seller grants its
partner points: + the EUR value of each transaction, and on every step without one,
- decay * average transaction value * (0.5 + r) / average steps between transactions
(risk-takers forget loyalty faster), floored at 0.

Advertising factor (Making an offer): an agent offers to every partner not offered to yet;
a partner already offered to gets the offer again with probability `advertising`.

## Mapping onto the env's action (ask, bid, quantity, concession per agent)

The env negotiates every channel with one opening price and one concession per agent, so
per-partner rules are summarised per agent:
- seller ask: opens at the highest list price it sends this step (its price to the least
  favoured partner) and its concession is set so that by round K it reaches the lowest
  price it sends (its best regular customer's rate). Partners meet it somewhere on that
  descending ladder, like MASER's reject -> lower offer -> accept protocol; which partner
  gets which rung is decided by the env, not by the seller (per-partner discrimination is
  lost, the spread of its rates is kept).
- advertising -> quantity: a seller offers the share of its sellable energy equal to the
  share of its buyer partners it sends an offer to this step.
- purchase decision -> bid: a buyer opens at the bottom of the opening window (but never
  above T) and concedes up to its acceptance threshold T by round K, so it accepts the
  first rung of the sellers' ladder at or below T (bargains at once, dearer offers only if
  restrained); a refusal ("no": not interesting or cannot afford) is quantity 0, and
  affordability caps the quantity at what its balances to sellers can pay at the reference
  price.
- accepted / rejected, per partner: a sent offer is accepted when a trade was paid over that
  channel with this agent as seller, rejected otherwise.
- Storage picks selling or buying with the shared `storage_direction` rule.
- Not mappable: MASER's seller picks the customer who accepted the highest price; the env
  rations proportionally. Movement (positions) does not exist in this market.

The per-channel state is indexed by channel slot and side (side 0 acts as u, side 1 as v);
a slot whose endpoints change (a channel closed and reopened between new agents) or that
reopens is reset, detected through the view's `topology_version`.

Everything the negotiator reads of the market comes through its `MarketView`: public prices, the
channel graph and who sells and buys what; its own agents' reserves, plant, charge, channel
balances and trades.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..envs.offers import ASK, BID, CONCESSION
from .base import Policy
from .simple import encode_actions, opening_ask, opening_bid, price_window, set_dual_bids, trading_roles

from ..envs.risk_rules import (  # noqa: F401  the rules live with the markets; re-exported here
    ACCEPT, ACCEPTED, BARGAIN, CANNOT_AFFORD, DECISION_NAMES, FIRST, NO_OFFER, NOT_INTERESTING, REJECTED, WAIT,
    RiskParams, acceptance_threshold, advertise, buys, decay_points, first_contact_price, is_restrained,
    margin_share, preferential_discount, pressured_price, purchase_decision, regular_share, repeat_price)


# ---- the policy ---------------------------------------------------------------------------------

class RiskFactor(Policy):
    """MASER's risk-factor negotiator over the env's per-agent action (see module docstring)."""

    name = "risk_factor"

    def __init__(self, params: RiskParams | None = None, r: np.ndarray | None = None, **kw: Any) -> None:
        super().__init__()
        self.params = params if params is not None else RiskParams(**kw)
        if params is not None and kw:
            raise TypeError("pass either params= or keyword parameters, not both")
        self._fixed_r = None if r is None else np.asarray(r, dtype=np.float64)

    # -- episode start -------------------------------------------------------------------
    def bind(self, core: Any, agents: np.ndarray, seed: Any = None) -> None:
        super().bind(core, agents, seed)
        view = self.view
        n, e, m = view.n_agents, view.u.shape[0], self.agents.shape[0]
        lo, hi = self.params.r_range
        r = self.rng.uniform(lo, hi, size=m) if self._fixed_r is None else np.broadcast_to(self._fixed_r, (m,)).copy()
        self.r = r                                     # [M]
        self.r_all = np.zeros(n)                       # [N], r of controlled agents, 0 elsewhere
        self.r_all[self.agents] = r
        self.controlled = np.zeros(n, dtype=bool)
        self.controlled[self.agents] = True
        self.local = np.full(n, -1, dtype=np.int64)
        self.local[self.agents] = np.arange(m)
        # per agent
        self.last_paid = np.full(m, np.nan)
        self.has_bought = np.zeros(m, dtype=bool)
        self.stock_cost = view.reserve[self.agents].astype(np.float64).copy()
        # per (channel slot, side)
        self.points = np.zeros((e, 2))
        self.n_trades = np.zeros((e, 2))
        self.value_sum = np.zeros((e, 2))
        self.t_first = np.zeros((e, 2))
        self.t_last = np.zeros((e, 2))
        self.list_price = np.full((e, 2), np.nan)      # last list price offered to the partner
        self.outcome = np.zeros((e, 2), dtype=np.int8)
        self.offered = np.zeros((e, 2), dtype=bool)
        self.sent = np.zeros((e, 2), dtype=bool)       # offers sent this step
        self.offer_price = np.full((e, 2), np.nan)     # prices sent this step (after pressure)
        self.decision = np.full(m, NOT_INTERESTING, dtype=np.int64)
        self.threshold = np.zeros(m)
        self._u = view.u.copy()
        self._v = view.v.copy()
        self._open = view.open.copy()
        self._topology = view.topology_version
        self._soc = view.soc[self.agents].copy()

    # -- topology ------------------------------------------------------------------------
    def _sync_topology(self) -> None:
        st = self.view
        if st.topology_version == self._topology:
            return
        changed = (st.u != self._u) | (st.v != self._v) | (st.open & ~self._open)
        if changed.any():
            for arr, val in ((self.points, 0.0), (self.n_trades, 0.0), (self.value_sum, 0.0), (self.t_first, 0.0),
                             (self.t_last, 0.0), (self.list_price, np.nan), (self.outcome, 0), (self.offered, False)):
                arr[changed] = val
        self._u, self._v, self._open = st.u.copy(), st.v.copy(), st.open.copy()
        self._topology = st.topology_version

    def _sides(self):
        st = self.view
        actor = np.stack([st.u, st.v], axis=1)      # [E, 2]
        partner = np.stack([st.v, st.u], axis=1)
        balance_u = st.balance_u                    # own channels only (NaN elsewhere)
        own_balance = np.stack([balance_u, st.channel_capacity - balance_u], axis=1)
        return actor, partner, own_balance

    # -- pressures and floors -------------------------------------------------------------
    def _seller_floor(self) -> np.ndarray:
        """[N] cost-covering floor: reserve; storage: max(reserve, stock cost / efficiency)."""
        ag = self.view
        floor = ag.reserve.astype(np.float64).copy()
        st_idx = self.agents[ag.is_store[self.agents]]
        loc = self.local[st_idx]
        floor[st_idx] = np.maximum(ag.reserve[st_idx], self.stock_cost[loc] / ag.efficiency[st_idx])
        return floor

    def _pressures(self, sellable: np.ndarray, needed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[N] seller pressure (energy to sell) and buyer pressure (energy lacking)."""
        ag = st = self.view
        sc = ag.scenario
        storage = ag.is_store
        fill = np.where(storage, st.soc / np.maximum(ag.capacity, 1e-12), 0.0)
        gen_scale = np.maximum(ag.capacity * sc.step_hours, 1e-12)
        sell_p = np.where(storage, fill, np.clip(sellable / gen_scale, 0.0, 1.0))
        buy_p = np.where(storage, 1.0 - fill, np.clip(needed / np.maximum(ag.grid_limit, 1e-12), 0.0, 1.0))
        return sell_p, buy_p

    # -- acting ---------------------------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        self._sync_topology()
        view, idx, p = self.view, self.agents, self.params
        ag = st = view
        sc = view.scenario
        n = view.n_agents
        sellable, needed, direction_m, selling, buying_kind = trading_roles(view, idx, self.controlled)
        sell_p, buy_p = self._pressures(sellable, needed)

        actor, partner, own_bal = self._sides()
        is_open = st.open[:, None]

        # ---- seller: per-partner prices and advertising
        eligible = is_open & selling[actor] & (ag.buys_good[partner] == ag.sells_good[actor]) & (ag.buys_good[partner] >= 0)
        draws = self.rng.random(eligible.shape)
        sent = advertise(self.offered, eligible, draws, p.advertising)
        floor_n = self._seller_floor()
        ceiling = sc.retail_tariff
        # prices only where an offer goes out (flat indices into the [E, 2] side arrays)
        si = np.flatnonzero(sent.ravel())
        a_s = actor.ravel()[si]
        fl, rs, ps = floor_n[a_s], self.r_all[a_s], sell_p[a_s]
        # points are money (EUR in the energy market): in this market's units through the view's price_unit
        first_now = first_contact_price(fl, ceiling, rs, regular_share(self.points.ravel()[si] / view.price_unit, p), p)
        last = self.list_price.ravel()[si]
        rep = ~np.isnan(last)
        lp = first_now.copy()
        lp[rep] = repeat_price(last[rep], first_now[rep], self.outcome.ravel()[si][rep], rs[rep], ps[rep], fl[rep],
                               ceiling, p)
        offer = pressured_price(lp, fl, ps, p)
        np.put(self.list_price, si, lp)
        self.offered |= sent
        self.sent = sent
        self.offer_price = np.full(sent.shape, np.nan)
        np.put(self.offer_price, si, offer)

        hi = np.full(n, -np.inf)
        lo = np.full(n, np.inf)
        np.maximum.at(hi, a_s, offer)
        np.minimum.at(lo, a_s, offer)
        n_elig = np.bincount(actor[eligible], minlength=n)
        n_sent = np.bincount(actor[sent], minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            sell_share = np.where(n_elig > 0, n_sent / np.maximum(n_elig, 1), 0.0)
        has_offer = n_sent > 0
        ask_target = np.where(has_offer, hi, floor_n + margin_share(self.r_all, 0.0, p) * (ceiling - floor_n))

        # ---- buyer: purchase decision as an acceptance threshold
        buy_side = is_open & buying_kind[actor] & (ag.sells_good[partner] == ag.buys_good[actor]) & (ag.sells_good[partner] >= 0)
        payable = np.bincount(actor[buy_side], weights=own_bal[buy_side], minlength=n)
        _, buy_ref, span = price_window(view, np.arange(n))
        want = needed * buy_ref
        with np.errstate(divide="ignore", invalid="ignore"):
            afford_share = np.where(want > 0, np.clip(payable / np.maximum(want, 1e-12), 0.0, 1.0), 0.0)
        interesting = buying_kind & (needed > 0)
        can_afford = afford_share >= p.min_affordable
        first = np.zeros(n, dtype=bool)
        last_paid = np.full(n, np.nan)
        first[idx] = ~self.has_bought
        last_paid[idx] = self.last_paid
        limit = ag.limit
        thr = acceptance_threshold(first, last_paid, self.r_all, buy_p, limit, p)
        # what the chain answers to an offer at the reference price (kept for inspection); the
        # bid encodes the whole chain: an interested, solvent buyer takes every price <= thr
        code = purchase_decision(interesting, can_afford, first, buy_ref, last_paid, self.r_all, buy_p, p)
        self.decision = code[idx]
        self.threshold = thr[idx]
        takes = interesting & can_afford
        buy_share = np.where(takes, afford_share, 0.0)

        # ---- encode: ask ladder from hi to lo; bid from the window bottom up to the threshold
        bid_open = np.minimum(thr[idx], np.maximum(buy_ref[idx] - span, 0.0))
        actions = encode_actions(view, idx, ask_target[idx], bid_open, sell_share[idx], buy_share[idx], 0.0,
                                 direction_m)
        a_open = opening_ask(view, idx, actions[:, ASK])
        res = ag.reserve[idx]
        lo_m = np.where(has_offer[idx], lo[idx], a_open)
        with np.errstate(divide="ignore", invalid="ignore"):
            c_sell = np.where(a_open - res > 1e-12, (a_open - lo_m) / (a_open - res), 0.0)
        b_open = opening_bid(view, idx, actions[:, BID])
        lim = limit[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            c_buy = np.where(lim - b_open > 1e-12, (thr[idx] - b_open) / (lim - b_open), 0.0)
        seller_role = selling[idx]
        conc = np.clip(np.where(seller_role, c_sell, c_buy), 0.0, 1.0)
        actions[:, CONCESSION] = 2.0 * conc - 1.0
        # a producer that sells and buys (supply chain) concedes as a seller; its bid opens so that
        # this concession ends at its acceptance threshold (no such agent in the energy market)
        set_dual_bids(view, idx, actions, np.where(takes[idx], thr[idx], 0.0))
        self._soc = st.soc[idx].copy()
        return actions

    # -- learning from the step --------------------------------------------------------------
    def update(self, core: Any) -> None:
        p = self.params
        view = self.view
        if not view.stepped:
            return
        tr = stl = view.my_trades()   # trades with a controlled seller or buyer, in clearing order
        n = view.n_agents
        e = self.points.shape[0]
        paid = stl.paid_qty > 0
        on_ch = tr.channel >= 0
        t = view.t - 1
        # channel state refers to the slots as they were during the step (before the lifecycle)
        sel = paid & on_ch & self.controlled[tr.seller]
        ch = tr.channel[sel]
        side = np.where(self._u[ch] == tr.seller[sel], 0, 1)
        flat = ch * 2 + side
        traded = np.zeros(e * 2, dtype=bool)
        traded[flat] = True
        value = np.bincount(flat, weights=stl.paid[sel], minlength=e * 2).reshape(e, 2)
        traded = traded.reshape(e, 2)
        new = traded & (self.n_trades == 0)
        self.t_first = np.where(new, t, self.t_first)
        self.n_trades = self.n_trades + traded
        self.value_sum = self.value_sum + value
        self.t_last = np.where(traded, t, self.t_last)
        self.points = decay_points(self.points + value, self.n_trades, self.value_sum, self.t_first, self.t_last,
                                   self.r_all[np.stack([self._u, self._v], axis=1)], ~traded, p)
        self.outcome = np.where(self.sent, np.where(traded, ACCEPTED, REJECTED), self.outcome).astype(np.int8)

        # buyers: last price paid, first transaction done
        bsel = paid & self.controlled[tr.buyer]
        if bsel.any():
            qty = np.bincount(tr.buyer[bsel], weights=stl.paid_qty[bsel], minlength=n)
            money = np.bincount(tr.buyer[bsel], weights=stl.paid[bsel], minlength=n)
            got = qty[self.agents] > 0
            vwap = money[self.agents][got] / qty[self.agents][got]
            self.last_paid[got] = vwap
            self.has_bought |= got
            # storage: average cost of the energy in store
            storage = view.is_store[self.agents]
            soc_new = view.soc[self.agents]
            upd = storage & got
            if upd.any():
                kept = np.minimum(self._soc[upd], soc_new[upd])
                total = np.maximum(soc_new[upd], 1e-12)
                self.stock_cost[upd] = (kept * self.stock_cost[upd] + money[self.agents][upd]) / total
        self._sync_topology()


__all__ = [
    "RiskFactor", "RiskParams", "purchase_decision", "acceptance_threshold", "first_contact_price", "repeat_price",
    "pressured_price", "margin_share", "preferential_discount", "regular_share", "decay_points", "advertise",
    "is_restrained", "buys", "NOT_INTERESTING", "CANNOT_AFFORD", "FIRST", "BARGAIN", "WAIT", "ACCEPT",
    "DECISION_NAMES", "ACCEPTED", "REJECTED", "NO_OFFER",
]
