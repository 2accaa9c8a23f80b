"""Settlement: pay every trade, settle the residual with the grid, book energy and profit.

A channel trade is paid from the buyer's side of its channel. Buyers place their quantities
knowing their own balances (clearing), so an agreed trade the channel could carry only in part
counts as a partial payment and one whose buyer side was empty as a failed payment; a trade
that still exceeds its side here is cut to it and counted the same way.
Exchange trades (channel = -1, double auction) pay wallet to wallet. What generators do not
sell goes to the grid at the feed-in tariff up to their grid limit, the rest is curtailed;
what consumers do not buy comes from the grid at the retail tariff up to their grid limit, the
rest is unserved. Storage trades only peer-to-peer and moves its state of charge.

Reward (profit, EUR) per agent and step:
  peer-to-peer and grid revenue - peer-to-peer and grid cost - marginal cost x energy sold
  + (consumers) their limit price x energy served, i.e. the value of the energy they consumed
  + (storage, last step only) the change of its stored energy since reset, valued at the base
    price x one-way efficiency (what it would fetch discharged): a store neither gets its initial
    charge for free nor loses what it holds when the day ends.

A cut of less than a billionth of a payment is float round-off of the buyer's own balance
arithmetic, not a partial payment: the trade is cut to the balance but not flagged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import kernels
from .clearing import LIQUIDITY_CUT, LIQUIDITY_EMPTY, ON_CHAIN, Trades
from .scenario import Scenario
from .state import AgentParams

# Per-agent breakdown columns, in the order of `Settlement.breakdown`.
BREAKDOWN_FIELDS = (
    "profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought",
    "curtailed", "unserved", "charged", "discharged", "failed_payments", "partial_payments",
    "storage_value",
)
ROUND_OFF = 1e-9  # relative shortfall below which a cut payment is not counted as partial


class Settlement(NamedTuple):
    paid_qty: np.ndarray     # [T] MWh actually paid for
    paid: np.ndarray         # [T] EUR actually paid
    failed: np.ndarray       # [T] bool, nothing could be paid
    partial: np.ndarray      # [T] bool, cut to the channel balance
    balance_u: np.ndarray    # [E] after payments
    flow: np.ndarray         # [E] EUR u -> v this step
    wallet: np.ndarray       # [N] after grid bills and exchange trades
    soc: np.ndarray          # [N] after charging / discharging
    grid_account: float
    breakdown: np.ndarray    # [N, len(BREAKDOWN_FIELDS)] float64


def pay_trades_numpy(channel, seller, buyer, qty, price, cut, u, capacity, balance_u, n, round_off):
    """Pay every trade from its buyer's channel side (or wallet to wallet for exchange trades):
    (paid, paid_qty, failed, partial [T]; flow into u's side [E]; sold, bought, revenue, cost,
    exchange in, exchange out, failed and partial counts [N]). `kernels.pay_trades` is its twin."""
    e = u.shape[0]
    on_channel = channel != ON_CHAIN
    amount = qty * price
    chc = np.where(on_channel, channel, 0)
    buyer_is_u = on_channel & (u[chc] == buyer)
    side = np.where(buyer_is_u, balance_u[chc], capacity[chc] - balance_u[chc])
    side = np.where(on_channel, side, np.inf)
    paid = np.minimum(amount, side)
    short = paid < amount
    with np.errstate(divide="ignore", invalid="ignore"):
        paid_qty = np.where(short, np.where(price > 0, paid / price, 0.0), qty)
    failed = (cut == LIQUIDITY_EMPTY) | (short & (paid <= 0.0))
    partial = ~failed & ((cut == LIQUIDITY_CUT) | (short & (paid < amount * (1.0 - round_off))))
    signed = np.where(buyer_is_u, -paid, paid)
    flow_in_u = np.bincount(channel[on_channel], weights=signed[on_channel], minlength=e)
    exch = ~on_channel
    return (paid, paid_qty, failed, partial, flow_in_u,
            np.bincount(seller, weights=paid_qty, minlength=n), np.bincount(buyer, weights=paid_qty, minlength=n),
            np.bincount(seller, weights=paid, minlength=n), np.bincount(buyer, weights=paid, minlength=n),
            np.bincount(seller[exch], weights=paid[exch], minlength=n),
            np.bincount(buyer[exch], weights=paid[exch], minlength=n),
            np.bincount(buyer, weights=failed, minlength=n), np.bincount(buyer, weights=partial, minlength=n))


def settle(sc: Scenario, agents: AgentParams, trades: Trades, sellable: np.ndarray, needed: np.ndarray,
           u: np.ndarray, v: np.ndarray, capacity: np.ndarray, balance_u: np.ndarray, wallet: np.ndarray,
           soc: np.ndarray, grid_account: float) -> Settlement:
    n = agents.n
    cut = trades.cut if trades.cut is not None else np.zeros(trades.channel.shape[0], dtype=np.int8)
    pay = kernels.pay_trades if kernels.pay_trades is not None else pay_trades_numpy
    (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, exchange_in, exchange_out,
     n_failed, n_partial) = pay(trades.channel, trades.seller, trades.buyer, trades.qty, trades.price, cut,
                                u, capacity, balance_u, n, ROUND_OFF)
    # channel balances: u pays -> balance_u falls
    new_balance_u = balance_u + flow_in_u
    np.clip(new_balance_u, 0.0, capacity, out=new_balance_u)  # guards float round-off only
    flow = -flow_in_u
    wallet = wallet + exchange_in - exchange_out

    book = kernels.book_agents if kernels.book_agents is not None else book_agents_numpy
    new_soc, wallet, grid_flow, breakdown = book(
        agents.is_storage, agents.is_generator, agents.is_consumer, agents.efficiency, agents.capacity,
        agents.grid_limit, agents.marginal_cost, agents.limit, sellable, needed, soc, wallet,
        sold, bought, revenue, cost, n_failed, n_partial, sc.feed_in_tariff, sc.retail_tariff)
    return Settlement(paid_qty, paid, failed, partial, new_balance_u, flow, wallet, new_soc,
                      grid_account + grid_flow, breakdown)


def book_agents_numpy(storage, generator, consumer, eff, capacity, grid_limit, marginal_cost, limit, sellable,
                      needed, soc, wallet, sold, bought, revenue, cost, n_failed, n_partial, feed_in, retail):
    """Per agent after the trades: storage charge, grid backstop, profit. Returns (soc, wallet,
    EUR the grid account gains, breakdown [N, F]). `kernels.book_agents` is its twin."""
    n = soc.shape[0]
    charged = np.where(storage, bought, 0.0)
    discharged = np.where(storage, sold, 0.0)
    new_soc = np.where(storage, np.clip(soc + charged * eff - discharged / eff, 0.0, capacity), soc)
    residual_gen = np.where(generator, np.maximum(sellable - sold, 0.0), 0.0)
    grid_sold = np.minimum(residual_gen, grid_limit)
    curtailed = residual_gen - grid_sold
    residual_need = np.where(consumer, np.maximum(needed - bought, 0.0), 0.0)
    grid_bought = np.minimum(residual_need, grid_limit)
    unserved = residual_need - grid_bought
    grid_revenue = grid_sold * feed_in
    grid_cost = grid_bought * retail
    wallet = wallet + (grid_revenue - grid_cost)
    grid_flow = float(grid_cost.sum() - grid_revenue.sum())
    revenue = revenue + grid_revenue
    cost = cost + grid_cost
    value = np.where(consumer, limit * (bought + grid_bought), 0.0)
    profit = revenue - cost - marginal_cost * (sold + grid_sold) + value
    breakdown = np.stack(
        [profit, revenue, cost, sold, bought, grid_sold, grid_bought, curtailed, unserved,
         charged, discharged, n_failed, n_partial, np.zeros(n)], axis=1)
    return new_soc, wallet, grid_flow, breakdown


def add_storage_value(sc: Scenario, agents: AgentParams, soc: np.ndarray, active: np.ndarray,
                      breakdown: np.ndarray) -> None:
    """At the episode's end: value of the stored energy gained (or lost) since reset, added to
    the active stores' profit and `storage_value` columns of `breakdown` (in place, a fresh array)."""
    value = np.where(agents.is_storage & active,
                     (soc - agents.initial_soc) * agents.efficiency * sc.base_price, 0.0)
    breakdown[:, BREAKDOWN_FIELDS.index("storage_value")] = value
    breakdown[:, 0] += value
