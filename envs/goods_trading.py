"""Trading the goods after energy: offers, clearing and payment of every further good a scenario
lists (renewable-energy certificates), then the goods' own booking.

Energy is cleared and settled first by the core pipeline (`step.market_step`); then each further
good g, in the scenario's order: the agent's one action row is decoded against good g's
reference price, span and the agent's reserve / limit for it (`goods.GoodSpec.roles`), the
scenario's mechanism clears it over the same channels (the agents' goods and prices replaced by
good g's), and its trades are paid from the channel balances (or wallets) the earlier goods left,
so a channel carries trades of several goods and never pays more than it holds. Traded units
move between the agents' stocks (`MarketState.holdings`). Afterwards each good books what this
step's energy settlement implies (certificates issued for energy delivered, quotas grown with
energy consumed) and, on the last step, its episode's end (retirement, penalties).
Only markets with more than one good come here; the single-good path is untouched.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from . import kernels
from .breakdown import BREAKDOWN_FIELDS
from .clearing import clear
from .goods import scenario_goods
from .offers import ASK, BID, CONCESSION, MIN_QUANTITY, QUANTITY, Offers
from .settlement import ROUND_OFF, Settlement
from .state import AgentParams, MarketState

_COL = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}


class GoodsResult(NamedTuple):
    """What the further goods did this step (index g of the per-good arrays; 0 = energy, unused)."""

    trades: tuple            # per good g >= 1: Trades (before payment)
    paid_qty: tuple          # per good g >= 1: [T_g] units paid for
    offers: tuple            # per good g >= 1: Offers
    sellable: np.ndarray     # [N, G] units each agent could sell (column 0 unused)
    needed: np.ndarray       # [N, G]
    supply: np.ndarray       # [G] units offered for sale (0 for energy)
    demand: np.ndarray       # [G]
    volume: np.ndarray       # [G] units paid for
    value: np.ndarray        # [G] EUR paid
    holdings: np.ndarray     # [N, G] after trades, issue and retirement
    owed: np.ndarray         # [N, G]
    issued: np.ndarray       # [G] since reset
    retired: np.ndarray      # [G] since reset
    penalty: float           # EUR of quota penalties booked this step


def good_view(agents: AgentParams, g: int, sells: np.ndarray, buys: np.ndarray, reserve: np.ndarray,
              limit: np.ndarray) -> AgentParams:
    """The agent parameters a mechanism sees when it clears good g."""
    return dataclasses.replace(agents, sells_good=np.where(sells, g, -1).astype(np.int8),
                               buys_good=np.where(buys, g, -1).astype(np.int8), reserve=reserve, limit=limit)


def decode_good(sc, spec, actions, ref: float, sellable, needed, sells, buys, reserve, limit, active) -> Offers:
    """Offers of good g from the shared action row: prices against the good's reference price and
    span, never under the reserve / over the limit; shares (a+1)/2 of what is held / needed."""
    lo, hi = spec.price_bounds(sc)
    span = spec.span(sc)
    ask = np.clip(ref + actions[:, ASK] * span, reserve, None)
    ask = np.maximum(np.minimum(ask, hi), reserve)
    bid = np.clip(ref + actions[:, BID] * span, 0.0, limit)
    share = 0.5 * (actions[:, QUANTITY] + 1.0)
    sell_qty = share * sellable
    buy_qty = share * needed
    sell_qty = np.where(active & sells & (sell_qty >= MIN_QUANTITY), sell_qty, 0.0)
    buy_qty = np.where(active & buys & (buy_qty >= MIN_QUANTITY), buy_qty, 0.0)
    return Offers(ask, bid, sell_qty, buy_qty, 0.5 * (actions[:, CONCESSION] + 1.0))


def trade_goods(sc, agents: AgentParams, state: MarketState, actions: np.ndarray, st: Settlement,
                last_step: bool) -> tuple[Settlement, GoodsResult]:
    """Clear and pay goods 1.. after energy's settlement `st`; returns the settlement with the
    goods' payments folded in (balances, flow, wallets, revenue, cost, profit, payment counts)."""
    goods = scenario_goods(sc)
    n, G = agents.n, len(goods)
    balance_u, wallet = st.balance_u.copy(), st.wallet.copy()
    flow = st.flow.copy()
    bd = st.breakdown
    holdings, owed = state.holdings.copy(), state.owed.copy()
    issued, retired = state.issued.copy(), state.retired.copy()
    sellable_all, needed_all = np.zeros((n, G)), np.zeros((n, G))
    supply, demand, volume, value = (np.zeros(G) for _ in range(4))
    all_trades, all_paid, all_offers = [], [], []
    for g in range(1, G):
        spec = goods[g]
        sells, buys, reserve, limit = spec.roles(sc, agents)
        sellable, needed = spec.tradable(sc, agents, state, g)
        sellable, needed = np.where(state.active, sellable, 0.0), np.where(state.active, needed, 0.0)
        sellable_all[:, g], needed_all[:, g] = sellable, needed
        offers = decode_good(sc, spec, actions, float(state.ref_price[g]), sellable, needed, sells, buys,
                             reserve, limit, state.active)
        view = state.replace(balance_u=balance_u, wallet=wallet)
        trades = clear(sc, good_view(agents, g, sells, buys, reserve, limit), view, offers)
        trades = trades._replace(good=np.full(trades.seller.shape[0], g, dtype=np.int64))
        cut = trades.cut if trades.cut is not None else np.zeros(trades.channel.shape[0], dtype=np.int8)
        (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, exchange_in, exchange_out,
         n_failed, n_partial) = kernels.pay_trades(
            channel=trades.channel, seller=trades.seller, buyer=trades.buyer, qty=trades.qty, price=trades.price,
            cut=cut, u=state.u, capacity=state.capacity, balance_u=balance_u, n=n, round_off=ROUND_OFF)
        balance_u = np.clip(balance_u + flow_in_u, 0.0, state.capacity)
        flow = flow - flow_in_u
        wallet = wallet + exchange_in - exchange_out
        holdings[:, g] += bought - sold
        bd[:, _COL["revenue"]] += revenue
        bd[:, _COL["cost"]] += cost
        bd[:, _COL["profit"]] += revenue - cost
        bd[:, _COL["failed_payments"]] += n_failed
        bd[:, _COL["partial_payments"]] += n_partial
        supply[g], demand[g] = offers.sell_qty.sum(), offers.buy_qty.sum()
        volume[g], value[g] = paid_qty.sum(), paid.sum()
        all_trades.append(trades)
        all_paid.append(paid_qty)
        all_offers.append(offers)
    penalty = 0.0
    for g in range(1, G):
        spec = goods[g]
        if spec.book is not None:
            spec.book(sc, agents, state, g, bd, _COL, holdings, owed, issued)
        if last_step and spec.end is not None:
            penalty += spec.end(sc, agents, state, g, holdings, owed, retired, wallet, bd, _COL)
    st = st._replace(balance_u=balance_u, flow=flow, wallet=wallet, breakdown=bd, grid_account=st.grid_account + penalty)
    return st, GoodsResult(tuple(all_trades), tuple(all_paid), tuple(all_offers), sellable_all, needed_all, supply,
                           demand, volume, value, holdings, owed, issued, retired, penalty)


__all__ = ["trade_goods", "decode_good", "good_view", "GoodsResult"]
