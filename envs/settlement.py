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


def settle(sc: Scenario, agents: AgentParams, trades: Trades, sellable: np.ndarray, needed: np.ndarray,
           u: np.ndarray, v: np.ndarray, capacity: np.ndarray, balance_u: np.ndarray, wallet: np.ndarray,
           soc: np.ndarray, grid_account: float) -> Settlement:
    n = agents.n
    e = u.shape[0]
    ch = trades.channel
    on_channel = ch != ON_CHAIN
    amount = trades.qty * trades.price

    # payer's side of each channel trade
    chc = np.where(on_channel, ch, 0)
    buyer_is_u = on_channel & (u[chc] == trades.buyer)
    side = np.where(buyer_is_u, balance_u[chc], capacity[chc] - balance_u[chc])
    side = np.where(on_channel, side, np.inf)
    paid = np.minimum(amount, side)
    short = paid < amount
    with np.errstate(divide="ignore", invalid="ignore"):
        paid_qty = np.where(short, np.where(trades.price > 0, paid / trades.price, 0.0), trades.qty)
    cut = trades.cut if trades.cut is not None else np.zeros(ch.shape[0], dtype=np.int8)
    failed = (cut == LIQUIDITY_EMPTY) | (short & (paid <= 0.0))
    partial = ~failed & ((cut == LIQUIDITY_CUT) | (short & (paid < amount * (1.0 - ROUND_OFF))))

    # channel balances: u pays -> balance_u falls
    signed = np.where(buyer_is_u, -paid, paid)
    flow_in_u = np.bincount(ch[on_channel], weights=signed[on_channel], minlength=e)
    new_balance_u = balance_u + flow_in_u
    np.clip(new_balance_u, 0.0, capacity, out=new_balance_u)  # guards float round-off only
    flow = -flow_in_u

    # per-agent peer-to-peer totals
    sold = np.bincount(trades.seller, weights=paid_qty, minlength=n)
    bought = np.bincount(trades.buyer, weights=paid_qty, minlength=n)
    revenue = np.bincount(trades.seller, weights=paid, minlength=n)
    cost = np.bincount(trades.buyer, weights=paid, minlength=n)
    exch = ~on_channel
    wallet = wallet.copy()
    if exch.any():
        wallet += np.bincount(trades.seller[exch], weights=paid[exch], minlength=n)
        wallet -= np.bincount(trades.buyer[exch], weights=paid[exch], minlength=n)
    n_failed = np.bincount(trades.buyer, weights=failed, minlength=n)
    n_partial = np.bincount(trades.buyer, weights=partial, minlength=n)

    # storage
    storage = agents.is_storage
    eff = agents.efficiency
    charged = np.where(storage, bought, 0.0)
    discharged = np.where(storage, sold, 0.0)
    new_soc = np.where(storage, np.clip(soc + charged * eff - discharged / eff, 0.0, agents.capacity), soc)

    # grid backstop
    generator = agents.is_generator
    consumer = agents.is_consumer
    residual_gen = np.where(generator, np.maximum(sellable - sold, 0.0), 0.0)
    grid_sold = np.minimum(residual_gen, agents.grid_limit)
    curtailed = residual_gen - grid_sold
    residual_need = np.where(consumer, np.maximum(needed - bought, 0.0), 0.0)
    grid_bought = np.minimum(residual_need, agents.grid_limit)
    unserved = residual_need - grid_bought
    grid_revenue = grid_sold * sc.feed_in_tariff
    grid_cost = grid_bought * sc.retail_tariff
    wallet += grid_revenue - grid_cost
    grid_account = grid_account + float(grid_cost.sum() - grid_revenue.sum())

    revenue = revenue + grid_revenue
    cost = cost + grid_cost
    value = np.where(consumer, agents.limit * (bought + grid_bought), 0.0)
    profit = revenue - cost - agents.marginal_cost * (sold + grid_sold) + value

    breakdown = np.stack(
        [profit, revenue, cost, sold, bought, grid_sold, grid_bought, curtailed, unserved,
         charged, discharged, n_failed, n_partial, np.zeros(n)], axis=1)
    return Settlement(paid_qty, paid, failed, partial, new_balance_u, flow, wallet, new_soc,
                      grid_account, breakdown)


def add_storage_value(sc: Scenario, agents: AgentParams, soc: np.ndarray, active: np.ndarray,
                      breakdown: np.ndarray) -> None:
    """At the episode's end: value of the stored energy gained (or lost) since reset, added to
    the active stores' profit and `storage_value` columns of `breakdown` (in place, a fresh array)."""
    value = np.where(agents.is_storage & active,
                     (soc - agents.initial_soc) * agents.efficiency * sc.base_price, 0.0)
    breakdown[:, BREAKDOWN_FIELDS.index("storage_value")] = value
    breakdown[:, 0] += value
