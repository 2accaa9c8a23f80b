"""What the step and settlement call: trade payments over direct channels and routes, and the
step's payment report.

`pay_trades` pays the step's agreed trades: direct channel trades exactly as before (each cut to
its buyer's side; `kernels.pay_trades`), then routed trades in clearing order through `htlc`
(all or nothing, fees on top of the price, paid by the buyer). Trades touching an agent or
channel that failed this step are released (`reasons.PEER_FAULT`). Without routes and faults it
is `kernels.pay_trades` itself, so the default market is unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import kernels
from ..trades import LIQUIDITY_EMPTY, ON_CHAIN, ROUTED
from . import reasons as R
from .accounts import charge, credit_fees
from .htlc import pay_routes
from . import rebalance as _rebalance, routes as _routes  # noqa: F401  (register their kernels with the others)


class PaymentReport(NamedTuple):
    """The payment layer's step, for the summary and infos (plain counts and per-agent arrays)."""

    failures: np.ndarray       # [len(REASON_NAMES)] int64 failed payments (and unrouted buyers) by reason
    routed: int                # routed trade payments that completed
    hops: np.ndarray           # [H + 1] int64 histogram of completed trade payments by hops (index = hops)
    fees_paid: float           # EUR paid in routing fees by buyers of trades
    earned: np.ndarray         # [N] EUR routing fees earned as an intermediary (trades, background, rebalancing)
    background: int = 0        # background payments that completed
    background_failed: int = 0
    rebalances: int = 0
    splices_in: int = 0
    splices_out: int = 0
    agent_faults: int = 0
    channel_faults: int = 0

    @property
    def mean_hops(self) -> float:
        k = int(self.hops.sum())
        return float((np.arange(self.hops.shape[0]) * self.hops).sum() / k) if k else 0.0


def empty_report(n: int, max_hops: int) -> PaymentReport:
    return PaymentReport(np.zeros(len(R.REASON_NAMES), dtype=np.int64), 0, np.zeros(max_hops + 1, dtype=np.int64),
                         0.0, np.zeros(n))


def pay_trades(trades, u, v, capacity, balance_u, fee_base, fee_rate, n: int, round_off: float,
               max_fee_share: float, max_hops: int, failed_agent=None, failed_channel=None):
    """`kernels.pay_trades`' outputs for direct and routed trades, plus (fees paid [N], report)."""
    t = trades.channel.shape[0]
    cut = trades.cut if trades.cut is not None else np.zeros(t, dtype=np.int8)
    routed = trades.channel == ROUTED
    channel, qty = trades.channel, trades.qty
    released = np.zeros(t, dtype=bool)
    if failed_agent is not None:   # direct trades of failed agents or over failed channels: released
        on_ch = (channel >= 0)
        ch = np.where(on_ch, channel, 0)
        released = ~routed & (failed_agent[trades.seller] | failed_agent[trades.buyer] | (on_ch & failed_channel[ch]))
    if routed.any() or released.any():
        channel = np.where(routed, ON_CHAIN, channel)   # paid below, over their routes
        qty = np.where(routed | released, 0.0, qty)
        cut = np.where(released, LIQUIDITY_EMPTY, cut).astype(np.int8)
    (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
     n_partial) = kernels.pay_trades(channel=channel, seller=trades.seller, buyer=trades.buyer, qty=qty,
                                     price=trades.price, cut=cut, u=u, capacity=capacity, balance_u=balance_u,
                                     n=n, round_off=round_off)
    report = empty_report(n, max_hops)
    fees = np.zeros(n)
    failures = report.failures
    if trades.unrouted is not None:   # buyers the route search found no seller for
        failures += np.bincount(trades.unrouted, minlength=len(R.REASON_NAMES))[: len(R.REASON_NAMES)]
        failures[R.OK] = 0
    direct_failed = failed & ~routed
    failures[R.PEER_FAULT] += int((direct_failed & released).sum())
    failures[R.INSUFFICIENT_BALANCE] += int((direct_failed & ~released).sum())
    report.hops[min(1, max_hops)] += int(((paid_qty > 0) & (channel >= 0)).sum())
    if not routed.any():
        return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out,
                n_failed, n_partial, fees, report)
    # routed trades, in clearing order, over the balances the direct payments left
    idx = np.flatnonzero(routed)
    bal_after = np.clip(balance_u + flow_in_u, 0.0, capacity)
    amount = trades.qty[idx] * trades.price[idx]
    fa = failed_agent if failed_agent is not None else np.zeros(n, dtype=bool)
    fc = failed_channel if failed_channel is not None else np.zeros(u.shape[0], dtype=bool)
    reason, fee, bal, r_flow, earned = pay_routes(
        route=trades.route[idx], payer=trades.buyer[idx], amount=amount, max_fee=amount * max_fee_share, u=u, v=v,
        capacity=capacity, balance_u=bal_after, fee_base=fee_base, fee_rate=fee_rate, blocked_agent=fa,
        blocked_channel=fc, n=n)
    ok = reason == R.OK
    r_paid = np.where(ok, amount, 0.0)
    r_qty = np.where(ok, trades.qty[idx], 0.0)
    paid, paid_qty, failed = paid.copy(), paid_qty.copy(), failed.copy()
    paid[idx], paid_qty[idx], failed[idx] = r_paid, r_qty, ~ok
    s, b = trades.seller[idx], trades.buyer[idx]
    sold = sold + np.bincount(s, weights=r_qty, minlength=n)
    bought = bought + np.bincount(b, weights=r_qty, minlength=n)
    revenue = revenue + np.bincount(s, weights=r_paid, minlength=n)
    cost = cost + np.bincount(b, weights=r_paid, minlength=n)
    n_failed = n_failed + np.bincount(b, weights=~ok, minlength=n)
    fees = np.bincount(b, weights=fee, minlength=n)
    flow_in_u = flow_in_u + r_flow
    failures += np.bincount(reason[~ok], minlength=len(R.REASON_NAMES))
    hops = (trades.route[idx] >= 0).sum(axis=1)
    report.hops[:] += np.bincount(hops[ok], minlength=max_hops + 1)[: max_hops + 1]
    report = report._replace(routed=int(ok.sum()), fees_paid=float(fee.sum()), earned=earned)
    return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
            n_partial, fees, report)


__all__ = ["PaymentReport", "empty_report", "pay_trades"]


def after_payments(sc, agents, state, st, failed_agent: np.ndarray, failed_channel: np.ndarray):
    """After the trades are paid, in this order: background payments (exogenous draws), the
    step's faults (failed agents leave, their channels and failed channels force-close),
    rebalancing, splicing. Returns (settlement with balances, flows, wallets, breakdown and report
    updated; capacity [E]; open [E]; fee sink; active [N]; channels the faults closed)."""
    from .background import background_payments
    from .faults import closing_of, force_close
    from .rebalance import rebalance_n
    from .splice import splice

    n = agents.n
    u, v = state.u, state.v
    report = st.payments if st.payments is not None else empty_report(n, sc.max_hops)
    bal, flow, wallet, bd = st.balance_u, st.flow, st.wallet, st.breakdown
    capacity, is_open, fee_sink, active = state.capacity, state.open, state.fee_sink, state.active
    earned = np.zeros(n)
    bg_done = bg_failed = 0
    if sc.background_payment_rate > 0.0:
        bal, f, earn, bg_done, bg_failed = background_payments(
            sc, active & ~failed_agent, u, v, capacity, bal, is_open & ~failed_channel, state.fee_base,
            state.fee_rate, state.rng_exo)
        flow, earned = flow - f, earned + earn
    closing = closing_of(u, v, is_open, failed_agent, failed_channel)
    is_open, wallet, fee_sink, n_fault_closed = force_close(u, v, capacity, bal, is_open, wallet, fee_sink, closing,
                                                            sc.onchain_fee)
    active = active & ~failed_agent
    usable = is_open & active[u] & active[v]
    n_rebalanced = n_in = n_out = 0
    if sc.rebalance_below > 0.0:
        bal, f, paid, earn, n_rebalanced = rebalance_n(sc, u, v, capacity, bal, usable, state.fee_base,
                                                       state.fee_rate, n)
        flow, earned = flow - f, earned + earn
        charge(bd, paid)
    if sc.splice_below > 0.0 or sc.splice_above < 1.0:
        capacity, bal, wallet, fee_sink, fees, n_in, n_out = splice(sc, u, v, capacity, bal, usable, wallet, fee_sink)
        charge(bd, fees)
    credit_fees(bd, earned)
    bal = np.clip(bal, 0.0, capacity)
    report = report._replace(earned=report.earned + earned, background=bg_done, background_failed=bg_failed,
                             rebalances=n_rebalanced, splices_in=n_in, splices_out=n_out,
                             agent_faults=int(failed_agent.sum()), channel_faults=int((failed_channel & state.open).sum()))
    st = st._replace(balance_u=bal, flow=flow, wallet=wallet, breakdown=bd, payments=report)
    return st, capacity, is_open, fee_sink, active, n_fault_closed


def summary_fields(st, max_hops: int) -> dict:
    """The payment layer's summary keys (plain numbers), the same keys with the layer off."""
    rep = st.payments
    out = {f"failed_{name}": 0 for name in R.FAILURE_NAMES}
    if rep is None:   # direct payments only: a failed payment found its buyer's side empty
        out["failed_insufficient_balance"] = int(st.failed.sum())
        out.update(routed_payments=0, mean_hops=1.0 if (st.paid_qty > 0).any() else 0.0, routing_fees=0.0,
                   fees_paid=0.0, background_payments=0, rebalances=0, splices=0, agent_faults=0, channel_faults=0)
        return out
    for i, name in enumerate(R.REASON_NAMES[1:], start=1):
        out[f"failed_{name}"] = int(rep.failures[i])
    out.update(routed_payments=int(rep.routed), mean_hops=rep.mean_hops, routing_fees=float(rep.earned.sum()),
               fees_paid=float(rep.fees_paid), background_payments=int(rep.background), rebalances=int(rep.rebalances),
               splices=int(rep.splices_in + rep.splices_out), agent_faults=int(rep.agent_faults),
               channel_faults=int(rep.channel_faults))
    return out


__all__ += ["after_payments", "summary_fields"]
