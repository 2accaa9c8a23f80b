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
  + (payment layer on) routing fees earned forwarding others' payments (`routing_fees`), and, in
    cost, routing fees paid on its own routed purchases, rebalancing fees and splice fees.

Accounting options (scenario fields; the defaults are the legacy market):
  `grid_billing="energy_account"`: grid bills and feed-in revenue settle on each agent's energy
  account (`MarketState.energy_account`), not on the on-chain wallet that funds channels, so grid
  purchases never strand an agent's channels. `network_charge` (EUR/MWh): the buyer of every P2P
  MWh paid pays it to the grid/network operator's account (`grid_account`), from its energy account
  (or wallet); it is a cost in the buyer's profit (`network_charges` column). `value_of_lost_load`
  (EUR/MWh): a consumer's profit loses it per MWh unserved (`lost_load` column; a loss of utility,
  no money moves), so shocks that leave demand unserved show in welfare.

A cut of less than a billionth of a payment is float round-off of the buyer's own balance
arithmetic, not a partial payment: the trade is cut to the balance but not flagged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import kernels
from .breakdown import BREAKDOWN_FIELDS
from .scenario import Scenario
from .state import AgentParams
from .trades import Trades

if TYPE_CHECKING:
    from .payments.layer import PaymentReport

ROUND_OFF = 1e-9  # relative shortfall below which a cut payment is not counted as partial
_NOTHING_EARNED = np.zeros(0)   # no payment layer: no routing fees to credit


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
    payments: "PaymentReport | None" = None  # the payment layer's report (routes, fees, failures by reason)
    energy_account: "np.ndarray | None" = None  # [N] after grid bills and network charges
    flow_in_u: "np.ndarray | None" = None  # [E] with `settle(defer_balances=True)`: the payments' flow into u's
    # sides, and balance_u / flow None until the caller computes them (`kernels.channels_after_payments`)


def settle(sc: Scenario, agents: AgentParams, trades: Trades, sellable: np.ndarray, needed: np.ndarray,
           u: np.ndarray, v: np.ndarray, capacity: np.ndarray, balance_u: np.ndarray, wallet: np.ndarray,
           soc: np.ndarray, grid_account: float, fee_base: "np.ndarray | None" = None,
           fee_rate: "np.ndarray | None" = None, failed_agent: "np.ndarray | None" = None,
           failed_channel: "np.ndarray | None" = None, energy_account: "np.ndarray | None" = None,
           defer_balances: bool = False) -> Settlement:
    """Pay the trades and book every agent. With the payment layer on (`Scenario.payments_on`)
    routed trades pay over their routes (buyers pay the routing fees on top, intermediaries earn
    them: `routing_fees` column, in the profit) and trades of agents or channels that failed this
    step are released (`envs/payments/layer.py`). Grid bills settle on `energy_account` when the
    scenario bills the grid apart from the channel wallet. Trades the clearing paid already
    (`Trades.payments`, `Mechanism.clear_and_pay`, over these channels) are not paid again: their
    payment outputs are booked as they are. `defer_balances`: the channel balances
    and flows are left to the caller (`balance_u` and `flow` None, `flow_in_u` given), which computes
    them in its own pass over the slots."""
    n = agents.n
    report = None
    fees_paid = None
    if sc.payments_on and fee_base is not None:
        if trades.payments is not None:   # the clearing paid them already, over these channels
            paid_out = trades.payments
        else:
            from .payments.layer import pay_trades as pay_layer

            paid_out = pay_layer(trades, u, v, capacity, balance_u, fee_base, fee_rate, n, ROUND_OFF,
                                 sc.max_fee_share, sc.max_hops, failed_agent, failed_channel)
        (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, exchange_in, exchange_out,
         n_failed, n_partial, fees_paid, report) = paid_out
        cost = cost + fees_paid
    else:
        cut = trades.cut if trades.cut is not None else np.zeros(trades.channel.shape[0], dtype=np.int8)
        (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, exchange_in, exchange_out,
         n_failed, n_partial) = kernels.pay_trades(
            channel=trades.channel, seller=trades.seller, buyer=trades.buyer, qty=trades.qty, price=trades.price,
            cut=cut, u=u, capacity=capacity, balance_u=balance_u, n=n, round_off=ROUND_OFF)
    # channel balances: u pays -> balance_u falls
    if defer_balances:
        new_balance_u = flow = None
    else:
        new_balance_u, flow = balances_after(balance_u=balance_u, flow_in_u=flow_in_u, capacity=capacity)
        flow_in_u = None
    wallet = wallet + exchange_in - exchange_out

    separate = sc.grid_billing == "energy_account"
    new_soc, booked, grid_flow, breakdown = kernels.book_agents(
        storage=agents.is_storage, generator=agents.is_generator, consumer=agents.is_consumer,
        eff=agents.efficiency, capacity=agents.capacity, grid_limit=agents.grid_limit,
        marginal_cost=agents.marginal_cost, limit=agents.limit, sellable=sellable, needed=needed, soc=soc,
        wallet=energy_account if separate else wallet, sold=sold, bought=bought, revenue=revenue, cost=cost,
        n_failed=n_failed, n_partial=n_partial, feed_in=sc.feed_in_tariff, retail=sc.retail_tariff,
        earned=report.earned if report is not None else _NOTHING_EARNED)   # routing fees credited in the pass
    if separate:
        energy_account = booked
    else:
        wallet = booked
    grid_account = grid_account + grid_flow
    if sc.network_charge > 0 or sc.value_of_lost_load > 0:
        grid_account, wallet, energy_account = _charges(sc, agents, breakdown, wallet, energy_account, grid_account)
    return Settlement(paid_qty, paid, failed, partial, new_balance_u, flow, wallet, new_soc,
                      grid_account, breakdown, report, energy_account, flow_in_u)


# the balances after the payments: one compiled pass (kept in `kernels`, whose fused channel pass composes it)
balances_after = kernels.balances_after
balances_after_numpy = kernels.balances_after_numpy


def _charges(sc: Scenario, agents: AgentParams, breakdown: np.ndarray, wallet, energy_account, grid_account: float):
    """Network charges on P2P purchases (buyer -> grid account) and the value of lost load, booked
    into `breakdown` (in place, a fresh array). Returns (grid_account, wallet, energy_account)."""
    col = BREAKDOWN_FIELDS.index
    charge = sc.network_charge * breakdown[:, col("bought")]
    lost = np.where(agents.is_consumer, sc.value_of_lost_load * breakdown[:, col("unserved")], 0.0)
    breakdown[:, col("network_charges")] = charge
    breakdown[:, col("lost_load")] = lost
    breakdown[:, col("cost")] += charge
    breakdown[:, 0] -= charge + lost
    total = float(charge.sum())
    if total:
        if sc.grid_billing == "energy_account":
            energy_account = energy_account - charge
        else:
            wallet = wallet - charge
        grid_account = grid_account + total
    return grid_account, wallet, energy_account


def add_storage_value(sc: Scenario, agents: AgentParams, soc: np.ndarray, active: np.ndarray,
                      breakdown: np.ndarray) -> None:
    """At the episode's end: value of the stored energy gained (or lost) since reset, added to
    the active stores' profit and `storage_value` columns of `breakdown` (in place, a fresh array)."""
    value = np.where(agents.is_storage & active,
                     (soc - agents.initial_soc) * agents.efficiency * sc.base_price, 0.0)
    breakdown[:, BREAKDOWN_FIELDS.index("storage_value")] = value
    breakdown[:, 0] += value
