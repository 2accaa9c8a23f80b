"""The payment layer over a batch of markets: one settlement's report split into each market's
report, and the aftermath (`layer.after_payments`) of every market in one pass.

A batch lays its markets out market-major (agents m*N .., channel slots m*E ..) and no channel
connects two markets, so one call of a payment kernel over the whole batch pays each market
exactly as the market alone: a market's payments keep their relative order, and every float
sum is per agent or per channel, in that order. Only the counts and sums a market's report
holds (failures by reason, hops, routed payments and their fees, background payments,
rebalances, splices, faults) and its fee sink are per market: they come from per-trade,
per-payer and per-agent outputs with a market key (`np.bincount`), the routed fees summed
market by market in the same order as a market alone sums them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..trades import ROUTED
from . import reasons as R
from .accounts import charge, credit_fees
from .background import background_draws, pay_background
from .faults import closing_of, force_close
from .layer import PaymentReport
from .rebalance import rebalance_n
from .splice import splice

N_REASONS = len(R.REASON_NAMES)


class MarketReports(NamedTuple):
    """Every market's `PaymentReport` fields as [M] (or [M, K]) arrays; `earned` [M*N]."""

    failures: np.ndarray    # [M, len(REASON_NAMES)] int64
    routed: np.ndarray      # [M] int64
    hops: np.ndarray        # [M, H + 1] int64
    fees_paid: np.ndarray   # [M] float64
    earned: np.ndarray      # [M*N] float64
    background: np.ndarray
    background_failed: np.ndarray
    rebalances: np.ndarray
    splices_in: np.ndarray
    splices_out: np.ndarray
    agent_faults: np.ndarray
    channel_faults: np.ndarray

    def reports(self, n: int) -> tuple:
        """One `PaymentReport` per market (plain ints and floats, as a market alone reports)."""
        cols = [a.tolist() for a in (self.routed, self.fees_paid, self.background, self.background_failed,
                                     self.rebalances, self.splices_in, self.splices_out, self.agent_faults,
                                     self.channel_faults)]
        return tuple(PaymentReport(self.failures[m], r, self.hops[m], fp, self.earned[m * n:(m + 1) * n], bg, bgf, rb,
                                   si, so, af, cf)
                     for m, (r, fp, bg, bgf, rb, si, so, af, cf) in enumerate(zip(*cols)))


def split_report(report: PaymentReport, trades, paid_qty: np.ndarray, failed: np.ndarray, failed_agent, failed_channel,
                 trade_market: np.ndarray, agent_market: np.ndarray, m_count: int, max_hops: int) -> MarketReports:
    """The report of one settlement over the whole batch (`layer.pay_trades`) as every market's:
    the same counts `trade_payments` makes, keyed by the trade's (or unrouted buyer's) market."""
    channel = trades.channel
    routed = channel == ROUTED
    hops = np.zeros((m_count, max_hops + 1), dtype=np.int64)
    failures = np.zeros((m_count, N_REASONS), dtype=np.int64)
    # direct trades: failed ones by cause (released by a fault, or the buyer's side), paid ones one hop
    direct_failed = failed & ~routed
    if direct_failed.any():
        cause = np.full(channel.shape[0], R.INSUFFICIENT_BALANCE, dtype=np.int64)
        if failed_agent is not None and (failed_agent.any() or failed_channel.any()):
            on_ch = channel >= 0
            released = (failed_agent[trades.seller] | failed_agent[trades.buyer]
                        | (on_ch & failed_channel[np.where(on_ch, channel, 0)]))
            cause[released] = R.PEER_FAULT
        failures += np.bincount(trade_market[direct_failed] * N_REASONS + cause[direct_failed],
                                minlength=m_count * N_REASONS).reshape(m_count, N_REASONS)
    one = min(1, max_hops)
    hops[:, one] += np.bincount(trade_market[(paid_qty > 0) & (channel >= 0)], minlength=m_count)
    # routed trades: their reasons and fees, in clearing order
    idx = np.flatnonzero(routed)
    reason = report.routed_reason
    rm = trade_market[idx]
    ok = reason == R.OK
    routed_ok = np.bincount(rm[ok], minlength=m_count)
    fees_paid = np.zeros(m_count)
    if idx.shape[0]:
        bad = ~ok
        failures += np.bincount(rm[bad] * N_REASONS + reason[bad], minlength=m_count * N_REASONS).reshape(
            m_count, N_REASONS)
        n_hops = (trades.route[idx] >= 0).sum(axis=1)
        good = ok & (n_hops <= max_hops)
        hops += np.bincount(rm[good] * (max_hops + 1) + n_hops[good], minlength=m_count * (max_hops + 1)).reshape(
            m_count, max_hops + 1)
        order = np.argsort(rm, kind="stable")
        fee, bounds = report.routed_fee[order], np.searchsorted(rm[order], np.arange(m_count + 1))
        for m in np.flatnonzero(np.diff(bounds)):   # `fee.sum()` of each market's routed trades, as alone
            fees_paid[m] = fee[bounds[m]:bounds[m + 1]].sum()
    if trades.unrouted is not None:   # buyers the route search found no seller for
        code = trades.unrouted.astype(np.int64)
        keep = code < N_REASONS
        failures += np.bincount(agent_market[keep] * N_REASONS + code[keep], minlength=m_count * N_REASONS).reshape(
            m_count, N_REASONS)
        failures[:, R.OK] = 0
    zero = np.zeros(m_count, dtype=np.int64)
    return MarketReports(failures, routed_ok, hops, fees_paid, report.earned, zero, zero, zero, zero, zero, zero, zero)


def after_payments_markets(sc, state, st, reports: MarketReports, failed_agent: np.ndarray,
                           failed_channel: np.ndarray, rngs, agent_market: np.ndarray, edge_market: np.ndarray,
                           n_agents: int):
    """`layer.after_payments` of every market of a batch in one pass (`state` the batch's arrays,
    `st` its settlement, `rngs` each market's exogenous generator, which alone draws its background
    payments). Returns (settlement, capacity, open, fee sink [M], active, channels the faults
    closed [M], market reports)."""
    m_count = len(rngs)
    n = agent_market.shape[0]
    u, v = state.u, state.v
    bal, flow, wallet, bd = st.balance_u, st.flow, st.wallet, st.breakdown
    capacity, is_open, fee_sink, active = state.capacity, state.open, state.fee_sink, state.active
    earned = np.zeros(n)
    zero = np.zeros(m_count, dtype=np.int64)
    bg_done = bg_failed = zero
    if sc.background_payment_rate > 0.0:   # each market draws from its own generator; one routing pass
        send, recv, size = (np.concatenate(d) for d in zip(*(background_draws(sc, n_agents, g) for g in rngs)))
        bal, f, earn, payer, reason = pay_background(sc, send, recv, size, active & ~failed_agent, u, v, capacity,
                                                     bal, is_open & ~failed_channel, state.fee_base, state.fee_rate)
        flow, earned = flow - f, earned + earn
        pm = agent_market[payer]
        bg_done = np.bincount(pm[reason == R.OK], minlength=m_count)
        bg_failed = np.bincount(pm, minlength=m_count) - bg_done
    n_fault_closed = zero
    agent_faults = channel_faults = zero
    if failed_agent.any() or failed_channel.any():   # (no E-sized work in a step without faults)
        closing = closing_of(u, v, is_open, failed_agent, failed_channel)
        hit = np.bincount(edge_market[closing], minlength=m_count)   # channels each market force-closes
        new_open, new_wallet, _, _ = force_close(u, v, capacity, bal, is_open, wallet, 0.0, closing, sc.onchain_fee)
        is_open = new_open
        wallet = np.where((hit > 0)[agent_market], new_wallet, wallet)   # a market without closes: untouched
        fee_sink = np.where(hit > 0, fee_sink + sc.onchain_fee * hit, fee_sink)
        n_fault_closed = hit
        agent_faults = np.bincount(agent_market[failed_agent], minlength=m_count)
        channel_faults = np.bincount(edge_market[failed_channel & state.open], minlength=m_count)
    active = active & ~failed_agent
    usable = is_open if active.all() else is_open & active[u] & active[v]
    n_rebalanced = n_in = n_out = zero
    if sc.rebalance_below > 0.0:
        bal, f, paid, earn, by_agent = rebalance_n(sc, u, v, capacity, bal, usable, state.fee_base, state.fee_rate,
                                                   n, by_agent=True)
        flow, earned = flow - f, earned + earn
        charge(bd, paid)
        n_rebalanced = by_agent.reshape(m_count, n_agents).sum(axis=1)
    if sc.splice_below > 0.0 or sc.splice_above < 1.0:
        capacity, bal, wallet, _, fees, in_by, out_by = splice(sc, u, v, capacity, bal, usable, wallet, 0.0,
                                                               by_agent=True)
        charge(bd, fees)
        n_in, n_out = in_by.reshape(m_count, n_agents).sum(axis=1), out_by.reshape(m_count, n_agents).sum(axis=1)
        if sc.splice_below > 0.0:   # the kernel's fee sink arithmetic, per market
            fee_sink = fee_sink + float(sc.splice_fee) * n_in
        if sc.splice_above < 1.0:
            fee_sink = fee_sink + float(sc.splice_fee) * n_out
    credit_fees(bd, earned)
    bal = np.clip(bal, 0.0, capacity)
    reports = reports._replace(earned=reports.earned + earned, background=bg_done, background_failed=bg_failed,
                               rebalances=n_rebalanced, splices_in=n_in, splices_out=n_out, agent_faults=agent_faults,
                               channel_faults=channel_faults)
    st = st._replace(balance_u=bal, flow=flow, wallet=wallet, breakdown=bd, payments=None)
    return st, capacity, is_open, fee_sink, active, n_fault_closed, reports


__all__ = ["MarketReports", "split_report", "after_payments_markets"]
