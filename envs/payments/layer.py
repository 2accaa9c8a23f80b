"""What the step and settlement call: trade payments over direct channels and routes, and the
step's payment report.

`pay_trades` pays the step's agreed trades: direct channel trades exactly as before (each cut to
its buyer's side; `kernels.pay_trades`), then routed trades in clearing order through `htlc`
(all or nothing, fees on top of the price, paid by the buyer). Trades touching an agent or
channel that failed this step are released (`reasons.PEER_FAULT`). Without routes and faults it
is `kernels.pay_trades` itself, so the default market is unchanged. One compiled kernel,
`trade_payments`, does all of it and counts the report (its twin composes the NumPy steps).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import kernels
from ..trades import LIQUIDITY_EMPTY, ON_CHAIN, ROUTED
from . import reasons as R
from .reasons import INSUFFICIENT_BALANCE, OK, PEER_FAULT

N_REASONS = len(R.REASON_NAMES)
from .accounts import charge, credit_fees
from ..compiled import THREADS, jit, prange, register

PARALLEL_TRADES = 50_000   # trades from which the payments run multi-threaded (two thread starts of ~40 us;
#   at 10,000 agents, 22,000 trades, the serial kernel was faster on this 2-core VM)
from .htlc import _pay_routes_into_nb, pay_routes_loop
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
    routed_reason: "np.ndarray | None" = None   # [R] int8 reason of each routed trade, in clearing order
    routed_fee: "np.ndarray | None" = None      # [R] EUR fee of each routed trade (with `routed_reason`, a batch
    #   splits its one settlement's report into its markets' reports)

    @property
    def mean_hops(self) -> float:
        k = int(self.hops.sum())
        return float((np.arange(self.hops.shape[0]) * self.hops).sum() / k) if k else 0.0


def empty_report(n: int, max_hops: int) -> PaymentReport:
    return PaymentReport(np.zeros(len(R.REASON_NAMES), dtype=np.int64), 0, np.zeros(max_hops + 1, dtype=np.int64),
                         0.0, np.zeros(n))


_NONE_UNROUTED = np.zeros(0, dtype=np.int8)


def pay_trades(trades, u, v, capacity, balance_u, fee_base, fee_rate, n: int, round_off: float,
               max_fee_share: float, max_hops: int, failed_agent=None, failed_channel=None):
    """`kernels.pay_trades`' outputs for direct and routed trades, plus (fees paid [N], report):
    one `trade_payments` call and the report built from its counts."""
    t = trades.channel.shape[0]
    cut = trades.cut if trades.cut is not None else np.zeros(t, dtype=np.int8)
    route = trades.route if trades.route is not None else np.full((t, 1), -1, dtype=np.int64)
    faults = failed_agent is not None and bool(failed_agent.any() or failed_channel.any())   # none: not read
    fa = failed_agent if failed_agent is not None else np.zeros(n, dtype=bool)
    fc = failed_channel if failed_channel is not None else np.zeros(u.shape[0], dtype=bool)
    unrouted = trades.unrouted if trades.unrouted is not None else _NONE_UNROUTED
    return payment_outputs(trade_payments(
        channel=trades.channel, seller=trades.seller, buyer=trades.buyer, qty=trades.qty, price=trades.price, cut=cut,
        route=route, unrouted=unrouted, u=u, v=v, capacity=capacity, balance_u=balance_u, fee_base=fee_base,
        fee_rate=fee_rate, blocked_agent=fa, blocked_channel=fc, faults=faults, n=n, round_off=round_off,
        max_fee_share=max_fee_share, max_hops=max_hops))


def payment_outputs(out) -> tuple:
    """`trade_payments`' twenty outputs as `pay_trades` returns them: the thirteen of
    `kernels.pay_trades`, fees paid [N] and the step's `PaymentReport`."""
    (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed, n_partial,
     fees, failures, hops, routed_ok, fee, earned, reason) = out
    report = PaymentReport(failures, int(routed_ok), hops, float(fee.sum()), earned, routed_reason=reason,
                           routed_fee=fee)
    return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
            n_partial, fees, report)


def trade_payments_numpy(channel, seller, buyer, qty, price, cut, route, unrouted, u, v, capacity, balance_u, fee_base,
                         fee_rate, blocked_agent, blocked_channel, faults, n, round_off, max_fee_share, max_hops):
    """Every trade paid: direct trades from their buyers' channel sides (`kernels.pay_trades`;
    with `faults`, those touching a blocked agent or channel are released), then the ROUTED
    ones in clearing order over what is left (`routed_settlement_numpy`). Returns
    `kernels.pay_trades`' thirteen outputs, then fees paid [N] by buyers, failures by reason
    [len(REASON_NAMES)] (trades only), completed payments by hops [H + 1], routed payments
    completed, the fee of each routed trade [R], fees earned [N] and the reason of each routed trade
    [R] (int8). The failures also count the buyers the route search found no seller for (`unrouted`
    [N] reasons, or empty). `blocked_agent` and `blocked_channel` are read only with `faults`."""
    t = channel.shape[0]
    routed = channel == ROUTED
    released = np.zeros(t, dtype=bool)
    if not faults:   # the blocked agents and channels are read only with faults
        blocked_agent, blocked_channel = np.zeros(n, dtype=bool), np.zeros(u.shape[0], dtype=bool)
    if faults:   # direct trades of failed agents or over failed channels: released
        on_ch = (channel >= 0)
        ch = np.where(on_ch, channel, 0)
        released = ~routed & (blocked_agent[seller] | blocked_agent[buyer] | (on_ch & blocked_channel[ch]))
    if routed.any() or released.any():
        channel = np.where(routed, ON_CHAIN, channel)   # paid below, over their routes
        qty_d = np.where(routed | released, 0.0, qty)
        cut = np.where(released, LIQUIDITY_EMPTY, cut).astype(np.int8)
    else:
        qty_d = qty
    (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
     n_partial) = kernels.pay_trades_numpy(channel, seller, buyer, qty_d, price, cut, u, capacity, balance_u, n,
                                           round_off)
    failures = np.zeros(len(R.REASON_NAMES), dtype=np.int64)
    hops_hist = np.zeros(max_hops + 1, dtype=np.int64)
    direct_failed = failed & ~routed
    failures[R.PEER_FAULT] += int((direct_failed & released).sum())
    failures[R.INSUFFICIENT_BALANCE] += int((direct_failed & ~released).sum())
    hops_hist[min(1, max_hops)] += int(((paid_qty > 0) & (channel >= 0)).sum())
    failures += np.bincount(unrouted, minlength=len(R.REASON_NAMES))[: len(R.REASON_NAMES)]
    failures[R.OK] = 0
    if not routed.any():
        return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
                n_partial, np.zeros(n), failures, hops_hist, 0, np.zeros(0), np.zeros(n), np.zeros(0, dtype=np.int8))
    # routed trades, in clearing order, over the balances the direct payments left
    idx = np.flatnonzero(routed)
    (reason, fee, r_paid, r_qty, sold, bought, revenue, cost, n_failed, fees, flow_in_u, earned) = \
        routed_settlement_numpy(route[idx], seller[idx], buyer[idx], qty[idx], price[idx], max_fee_share, u, v,
                                capacity, balance_u, flow_in_u, fee_base, fee_rate, blocked_agent, blocked_channel,
                                sold, bought, revenue, cost, n_failed, n)
    ok = reason == R.OK
    paid, paid_qty, failed = paid.copy(), paid_qty.copy(), failed.copy()
    paid[idx], paid_qty[idx], failed[idx] = r_paid, r_qty, ~ok
    failures += np.bincount(reason[~ok], minlength=len(R.REASON_NAMES))
    hops = (route[idx] >= 0).sum(axis=1)
    hops_hist += np.bincount(hops[ok], minlength=max_hops + 1)[: max_hops + 1]
    return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
            n_partial, fees, failures, hops_hist, int(ok.sum()), fee, earned, reason)


def routed_settlement_numpy(route, seller, buyer, qty, price, max_fee_share, u, v, capacity, balance_u, flow_in_u,
                            fee_base, fee_rate, blocked_agent, blocked_channel, sold, bought, revenue, cost,
                            n_failed, n):
    """Routed trades paid in order over the balances after the direct payments (`balance_u` +
    `flow_in_u`), HTLC-style (`htlc.pay_routes`), and booked: (reason [R], fee [R], paid [R] EUR,
    paid quantity [R], then sold, bought, revenue, cost, failed count [N] with the routed trades
    added, fees paid [N] by buyers, flow into u's sides [E] of all payments, fees earned [N])."""
    bal_after = np.clip(balance_u + flow_in_u, 0.0, capacity)
    amount = qty * price
    reason, fee, _, r_flow, earned = pay_routes_loop(route, buyer, amount, amount * max_fee_share, u, v, capacity,
                                                     bal_after, fee_base, fee_rate, blocked_agent, blocked_channel, n)
    ok = reason == R.OK
    r_paid = np.where(ok, amount, 0.0)
    r_qty = np.where(ok, qty, 0.0)
    sold = sold + np.bincount(seller, weights=r_qty, minlength=n)
    bought = bought + np.bincount(buyer, weights=r_qty, minlength=n)
    revenue = revenue + np.bincount(seller, weights=r_paid, minlength=n)
    cost = cost + np.bincount(buyer, weights=r_paid, minlength=n)
    n_failed = n_failed + np.bincount(buyer, weights=~ok, minlength=n)
    fees = np.bincount(buyer, weights=fee, minlength=n)
    return reason, fee, r_paid, r_qty, sold, bought, revenue, cost, n_failed, fees, flow_in_u + r_flow, earned


def _routed_sums(idx, seller, buyer, qty, amount, reason, fee, sold, bought, revenue, cost, n_failed,
                 fees):  # pragma: no cover - compiled
    """The routed trades' sums per agent, in trade order (a failed one adds zeros, as it pays nothing)."""
    for k in range(idx.shape[0]):
        t = idx[k]
        s = np.uint32(seller[t])
        b = np.uint32(buyer[t])
        if reason[k] == OK:
            sold[s] += qty[t]
            bought[b] += qty[t]
            revenue[s] += amount[k]
            cost[b] += amount[k]
        else:
            sold[s] += 0.0
            bought[b] += 0.0
            revenue[s] += 0.0
            cost[b] += 0.0
            n_failed[b] += 1.0
        fees[b] += fee[k]


def _add_payment_py(sums, s, b, pd, pq, on_chain, f, pa):  # pragma: no cover - compiled
    """One trade's payment into the per-agent sums [8, N] (sold, bought, revenue, cost, exchange in and
    out for an on-chain trade, failed and partial counts: a count is never -0.0, so skipping the
    addition of 0.0 changes no bit)."""
    if on_chain:
        sums[4, s] += pd
        sums[5, b] += pd
    sums[0, s] += pq
    sums[1, b] += pq
    sums[2, s] += pd
    sums[3, b] += pd
    if f:
        sums[6, b] += 1.0
    if pa:
        sums[7, b] += 1.0


_add_payment = jit(_add_payment_py, inline=True) or _add_payment_py


def _direct_sums(channel, seller, buyer, paid, paid_qty, failed, partial, sums):  # pragma: no cover - compiled
    """The direct payments' sums per agent, in trade order, into sums [8, N] (sold, bought, revenue,
    cost, exchange in, exchange out, failed and partial counts; routed trades adding what they
    paid there: nothing, and their failed or partial flags), as `kernels._pay_nb` sums them."""
    for t in range(channel.shape[0]):
        _add_payment(sums, np.uint32(seller[t]), np.uint32(buyer[t]), paid[t], paid_qty[t], channel[t] < 0, failed[t],
                     partial[t])


_routed_sums_nb = jit(_routed_sums)
_direct_sums_nb = jit(_direct_sums)


def _direct_range(channel, seller, buyer, qty, price, cut, u, capacity, balance_u, blocked_agent, blocked_channel,
                  faults, round_off, lo, hi, paid, paid_qty, failed, partial, released, signed, whole, flow_in_u,
                  failures, hops_hist, one, sums):  # pragma: no cover - compiled
    """Trades lo..hi-1 paid as `kernels._pay_nb` pays them (the same float expressions; routed and
    released trades paying nothing here): paid, paid_qty, failed, partial; without `whole` also
    released and the signed flow into u's side (for the serial pass after the chunks). With `whole`
    (one serial pass over all trades) instead, in trade order, the flows into the channels, the
    counts and the per-agent sums (`_direct_sums`' order); returns the number of routed trades then."""
    r_n = 0
    for t in range(lo, hi):
        ch = channel[t]
        s = np.uint32(seller[t])
        b = np.uint32(buyer[t])
        q = qty[t]
        ct = cut[t]
        rel = False
        if ch == ROUTED:
            ch = ON_CHAIN
            q = 0.0
            r_n += 1
        elif faults:
            rel = blocked_agent[s] or blocked_agent[b] or (ch >= 0 and blocked_channel[np.uint64(ch)])
            if rel:
                q = 0.0
                ct = LIQUIDITY_EMPTY
        pr = price[t]
        amount = q * pr
        sg = 0.0
        if ch >= 0:
            c = np.uint64(ch)
            buyer_is_u = u[c] == b
            sd = balance_u[c] if buyer_is_u else capacity[c] - balance_u[c]
            pd = min(amount, sd)
            sg = -pd if buyer_is_u else pd
        else:
            pd = amount
        short = pd < amount
        if short:
            pq = pd / pr if pr > 0 else 0.0
        else:
            pq = q
        f = ct == 2 or (short and pd <= 0.0)
        pa = (not f) and (ct == 1 or (short and pd < amount * (1.0 - round_off)))
        paid[t] = pd
        paid_qty[t] = pq
        failed[t] = f
        partial[t] = pa
        if not whole:   # (the chunks' serial pass reads them)
            released[t] = rel
            signed[t] = sg
        else:
            if ch >= 0:
                flow_in_u[np.uint64(ch)] += sg
                if pq > 0:
                    hops_hist[one] += 1
            _add_payment(sums, s, b, pd, pq, ch < 0, f, pa)
            if f and channel[t] != ROUTED:
                failures[PEER_FAULT if rel else INSUFFICIENT_BALANCE] += 1
    return r_n


_direct_range_nb = jit(_direct_range)


def _trade_payments(channel, seller, buyer, qty, price, cut, route, unrouted, u, v, capacity, balance_u, fee_base,
                    fee_rate, blocked_agent, blocked_channel, faults, n, round_off, max_fee_share, max_hops,
                    chunks):  # pragma: no cover - compiled
    """The direct trades paid (`_direct_range`): with one chunk in one pass that also sums; with
    more, per trade in `chunks` slices side by side (`prange`), then serially in trade order the
    flows into the channels and the counts, and the per-agent sums as a task beside the routed
    payments. The routed trades pay HTLC-style over the balances after the direct payments, on a
    compact copy of the channels their routes cross (numbered in first-crossing order: the
    payments then read it nearly in order, where the channel slots are scattered over E-sized
    arrays; no E-sized passes). Every float is the serial one's at any thread count. (Agent and
    channel indices unsigned: numba then leaves out its negative-index checks.)"""
    t_n = channel.shape[0]
    e_n = u.shape[0]
    h_n = route.shape[1]
    paid = np.empty(t_n)
    paid_qty = np.empty(t_n)
    failed = np.empty(t_n, dtype=np.bool_)
    partial = np.empty(t_n, dtype=np.bool_)
    released = np.empty(t_n if chunks > 1 else 0, dtype=np.bool_)
    signed = np.empty(t_n if chunks > 1 else 0)       # into u's side of the trade's channel
    flow_in_u = np.zeros(e_n)
    failures = np.zeros(N_REASONS, dtype=np.int64)
    hops_hist = np.zeros(max_hops + 1, dtype=np.int64)
    one = 1 if max_hops > 1 else max_hops
    sums = np.zeros((8, n))      # sold, bought, revenue, cost, exchange in, out, failed, partial counts
    if chunks == 1:
        r_n = _direct_range_nb(channel, seller, buyer, qty, price, cut, u, capacity, balance_u, blocked_agent,
                               blocked_channel, faults, round_off, 0, t_n, paid, paid_qty, failed, partial, released,
                               signed, True, flow_in_u, failures, hops_hist, one, sums)
    else:
        size = (t_n + chunks - 1) // chunks
        for k in prange(chunks):
            _direct_range_nb(channel, seller, buyer, qty, price, cut, u, capacity, balance_u, blocked_agent,
                             blocked_channel, faults, round_off, min(k * size, t_n), min((k + 1) * size, t_n), paid,
                             paid_qty, failed, partial, released, signed, False, flow_in_u, failures, hops_hist, one,
                             sums)
        r_n = 0
        for t in range(t_n):
            ch = channel[t]
            if ch >= 0:
                flow_in_u[np.uint64(ch)] += signed[t]
                if paid_qty[t] > 0:
                    hops_hist[one] += 1
            elif ch == ROUTED:
                r_n += 1
            if failed[t] and ch != ROUTED:
                failures[PEER_FAULT if released[t] else INSUFFICIENT_BALANCE] += 1
    # the routed trades, in clearing order, HTLC-style over the balances the direct payments left:
    # the channels their routes cross copied once into local slots 0, 1, ... in first-crossing order
    idx = np.empty(r_n, dtype=np.int64)
    r_route = np.empty((r_n, h_n), dtype=np.int64)   # local slots
    amount = np.empty(r_n)
    max_fee = np.empty(r_n)
    r_buyer = np.empty(r_n, dtype=np.int64)
    seen = np.zeros(e_n if r_n > 0 else 0, dtype=np.bool_)
    local = np.empty(e_n if r_n > 0 else 0, dtype=np.int32)   # channel slot -> local slot, where seen
    m_max = r_n * h_n
    touched = np.empty(m_max, dtype=np.int64)   # local slot -> channel slot
    l_u = np.empty(m_max, dtype=np.int64)
    l_v = np.empty(m_max, dtype=np.int64)
    l_cap = np.empty(m_max)
    l_bal = np.empty(m_max)
    l_fb = np.empty(m_max)
    l_fr = np.empty(m_max)
    l_blocked = np.zeros(m_max, dtype=np.bool_)
    n_touched = 0
    k = 0
    for t in range(t_n):
        if channel[t] == ROUTED:
            idx[k] = t
            for j in range(h_n):
                c = route[t, j]
                if c >= 0:
                    cu = np.uint64(c)
                    if seen[cu]:
                        q = local[cu]
                    else:
                        q = n_touched
                        seen[cu] = True
                        local[cu] = q
                        touched[q] = c
                        l_u[q] = u[cu]
                        l_v[q] = v[cu]
                        x = balance_u[cu] + flow_in_u[cu]
                        x = x if x > 0.0 else 0.0
                        cp = capacity[cu]
                        l_cap[q] = cp
                        l_bal[q] = x if x < cp else cp
                        l_fb[q] = fee_base[cu]
                        l_fr[q] = fee_rate[cu]
                        if faults:
                            l_blocked[q] = blocked_channel[cu]
                        n_touched += 1
                    r_route[k, j] = q
                else:
                    r_route[k, j] = c
            amount[k] = qty[t] * price[t]
            max_fee[k] = amount[k] * max_fee_share
            r_buyer[k] = buyer[t]
            k += 1
    l_flow = np.zeros(n_touched)
    reason = np.zeros(r_n, dtype=np.int8)
    fee = np.zeros(r_n)
    earned = np.zeros(n)
    fees = np.zeros(n)
    a_sold = np.zeros(n)
    a_bought = np.zeros(n)
    a_rev = np.zeros(n)
    a_cost = np.zeros(n)
    a_failed = np.zeros(n)
    for task in prange(1 if chunks == 1 else 2):   # (names of its own in the body: prange privatizes by name)
        if task == 0 and r_n > 0:
            _pay_routes_into_nb(r_route, r_buyer, amount, max_fee, l_u, l_v, l_cap, l_bal, l_flow, earned,
                                l_fb, l_fr, blocked_agent, l_blocked, faults, reason, fee)
            _routed_sums_nb(idx, seller, buyer, qty, amount, reason, fee, a_sold, a_bought, a_rev, a_cost, a_failed,
                            fees)
        elif task == 1:
            _direct_sums_nb(channel, seller, buyer, paid, paid_qty, failed, partial, sums)
    sold, bought, revenue, cost, ex_in, ex_out, n_failed, n_partial = (
        sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7])
    for i in range(unrouted.shape[0]):   # buyers the route search found no seller for
        w = unrouted[i]
        if w > OK and w < N_REASONS:
            failures[w] += 1
    if r_n == 0:
        return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
                n_partial, fees, failures, hops_hist, 0, fee, earned, reason)
    routed_ok = 0
    for k in range(r_n):
        t = idx[k]
        if reason[k] == OK:
            routed_ok += 1
            hops = 0
            for j in range(h_n):
                if r_route[k, j] >= 0:
                    hops += 1
            if hops <= max_hops:
                hops_hist[hops] += 1
            failed[t] = False
            paid[t] = amount[k]
            paid_qty[t] = qty[t]
        else:
            failures[reason[k]] += 1
            failed[t] = True
            paid[t] = 0.0
            paid_qty[t] = 0.0
    for i in range(n_touched):   # elsewhere the routes moved nothing: x + 0.0 is x
        c = np.uint64(touched[i])
        flow_in_u[c] = flow_in_u[c] + l_flow[i]
    for i in range(n):
        sold[i] += a_sold[i]
        bought[i] += a_bought[i]
        revenue[i] += a_rev[i]
        cost[i] += a_cost[i]
        n_failed[i] += a_failed[i]
    return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out, n_failed,
            n_partial, fees, failures, hops_hist, routed_ok, fee, earned, reason)


_trade_payments_nb = jit(_trade_payments)
_trade_payments_par = jit(_trade_payments, parallel=True)


def _trade_payments_compiled(*args):
    return _trade_payments_nb(*args, 1)


def _trade_payments_parallel(*args):
    return _trade_payments_par(*args, THREADS)


trade_payments = register("trade_payments", trade_payments_numpy,
                          _trade_payments_compiled if _trade_payments_nb is not None else None,
                          parallel=_trade_payments_parallel if _trade_payments_par is not None else None,
                          split="channel", min_items=PARALLEL_TRADES)


__all__ = ["PaymentReport", "empty_report", "pay_trades", "payment_outputs", "trade_payments", "trade_payments_numpy",
           "routed_settlement_numpy"]


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
    n_fault_closed = 0
    faults = bool(failed_agent.any() or failed_channel.any())
    if faults:   # (no E-sized work in a step without faults)
        closing = closing_of(u, v, is_open, failed_agent, failed_channel)
        is_open, wallet, fee_sink, n_fault_closed = force_close(u, v, capacity, bal, is_open, wallet, fee_sink,
                                                                closing, sc.onchain_fee)
    active = active & ~failed_agent
    # every agent active (the usual step): the open channels themselves, no E-sized gathers
    usable = is_open if active.all() else is_open & active[u] & active[v]
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
                             agent_faults=int(failed_agent.sum()), channel_faults=int((failed_channel & state.open).sum()) if faults else 0)
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
