"""Compiled kernels for the few O(E) scatter passes NumPy alone cannot make fast enough.

Each kernel has a NumPy twin giving the same result (to float round-off); numba, a default
dependency, is imported here only, so `envs` still imports with numpy alone. Set the environment
variable CHANNELMARKET_NUMBA=0 to use the NumPy twins. Both paths are tested against each other.
"""

from __future__ import annotations

import os

import numpy as np

try:  # pragma: no cover - depends on the install
    if os.environ.get("CHANNELMARKET_NUMBA", "1") == "0":
        raise ImportError("disabled by CHANNELMARKET_NUMBA=0")
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


def liquidity_numpy(n, u, v, capacity, balance_u, is_open):
    o = is_open.astype(np.float64)
    bu = balance_u * o
    bv = capacity * o - bu
    ends = np.concatenate((u, v))
    degree = np.bincount(ends, weights=np.concatenate((o, o)), minlength=n)
    outbound = np.bincount(ends, weights=np.concatenate((bu, bv)), minlength=n)
    inbound = np.bincount(ends, weights=np.concatenate((bv, bu)), minlength=n)
    return degree, outbound, inbound


if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _liquidity_nb(n, u, v, capacity, balance_u, is_open):  # pragma: no cover - compiled
        degree = np.zeros(n)
        outbound = np.zeros(n)
        inbound = np.zeros(n)
        for e in range(u.shape[0]):
            if is_open[e]:
                a, b = u[e], v[e]
                bu = balance_u[e]
                bv = capacity[e] - bu
                degree[a] += 1.0
                degree[b] += 1.0
                outbound[a] += bu
                outbound[b] += bv
                inbound[a] += bv
                inbound[b] += bu
        return degree, outbound, inbound

    def liquidity(n, u, v, capacity, balance_u, is_open):
        return _liquidity_nb(n, u, v, capacity, balance_u, is_open)

else:  # pragma: no cover
    liquidity = liquidity_numpy


# ---- bilateral negotiation over channels --------------------------------------------------

def _first_agreeing_round(ask0, bid0, ask_step, bid_step, rounds):  # pragma: no cover - compiled
    """Scalar twin of clearing.negotiate's closed form with its round-rule check."""
    gap = ask0 - bid0
    rate = ask_step + bid_step
    if gap <= 0:
        k = 0.0
    elif rate > 0:
        k = np.ceil(gap / rate)
    else:
        k = rounds + 1.0
    k = min(max(k, 0.0), rounds + 1.0)
    ki = int(k)
    for _ in range(2):
        if ki > 0:
            kk = ki - 1
            if bid0 + bid_step * kk >= ask0 - ask_step * kk:
                ki -= 1
    for _ in range(2):
        if ki <= rounds and not (bid0 + bid_step * ki >= ask0 - ask_step * ki):
            ki += 1
    return ki


if HAVE_NUMBA:
    _first_agreeing_round_nb = njit(cache=True, nogil=True)(_first_agreeing_round)

    @njit(cache=True, nogil=True)
    def _bilateral_nb(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                      concession, rounds):  # pragma: no cover - compiled
        # One pass over the channels, both directions at once: forward (u sells) agreements go to
        # the first buffers, reverse ones to the second, then forward-then-reverse as in NumPy.
        e_n = u.shape[0]
        out_c = np.empty((2, e_n), dtype=np.int64)
        out_s = np.empty((2, e_n), dtype=np.int64)
        out_b = np.empty((2, e_n), dtype=np.int64)
        out_p = np.empty((2, e_n))
        m = np.zeros(2, dtype=np.int64)
        negotiations = 0
        for e in range(e_n):
            if not is_open[e]:
                continue
            a_, b_ = u[e], v[e]
            for direction in range(2):
                if direction == 0:
                    s, b = a_, b_
                else:
                    s, b = b_, a_
                if sells_good[s] != buys_good[b]:  # -2 / -3 where nothing is offered / wanted
                    continue
                negotiations += 1
                a0 = ask[s]
                b0 = bid[b]
                a_step = concession[s] * (a0 - reserve[s]) / rounds
                b_step = concession[b] * (limit[b] - b0) / rounds
                k = _first_agreeing_round_nb(a0, b0, a_step, b_step, rounds)
                if k <= rounds:
                    kf = float(k)
                    j = m[direction]
                    out_c[direction, j] = e
                    out_s[direction, j] = s
                    out_b[direction, j] = b
                    out_p[direction, j] = 0.5 * ((a0 - a_step * kf) + (b0 + b_step * kf))
                    m[direction] = j + 1
        tot = m[0] + m[1]
        channel = np.empty(tot, dtype=np.int64)
        seller = np.empty(tot, dtype=np.int64)
        buyer = np.empty(tot, dtype=np.int64)
        price = np.empty(tot)
        channel[:m[0]] = out_c[0, :m[0]]
        channel[m[0]:] = out_c[1, :m[1]]
        seller[:m[0]] = out_s[0, :m[0]]
        seller[m[0]:] = out_s[1, :m[1]]
        buyer[:m[0]] = out_b[0, :m[0]]
        buyer[m[0]:] = out_b[1, :m[1]]
        price[:m[0]] = out_p[0, :m[0]]
        price[m[0]:] = out_p[1, :m[1]]
        return channel, seller, buyer, price, negotiations

    def bilateral_agreements(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                             concession, rounds):
        """(channel, seller, buyer, price) of agreed pairs and the number of negotiations."""
        # one small array per side: the good an agent offers (or -2) and wants (or -3) this step
        offer_good = np.where(sell_qty > 0.0, sells_good, -2).astype(np.int8)
        want_good = np.where(buy_qty > 0.0, buys_good, -3).astype(np.int8)
        return _bilateral_nb(u, v, is_open, sell_qty, buy_qty, offer_good, want_good, ask, bid, reserve, limit,
                             concession, rounds)
else:  # pragma: no cover
    bilateral_agreements = None


# ---- rationing of agreed pairs within the buyers' channel balances ------------------------------

if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _ration_nb(channel, seller, buyer, price, u, balance_u, capacity, sell_qty, buy_qty, n):  # pragma: no cover
        p_n = channel.shape[0]
        payable = np.empty(p_n)
        side = np.empty(p_n)
        w = np.empty(p_n)
        w_sum = np.zeros(n)
        for p in range(p_n):
            ch = channel[p]
            sd = balance_u[ch] if u[ch] == buyer[p] else capacity[ch] - balance_u[ch]
            side[p] = sd
            pay = sd / price[p] if price[p] > 0 else np.inf
            payable[p] = pay
            wp = min(sell_qty[seller[p]], pay)
            w[p] = wp
            w_sum[buyer[p]] += wp
        request = np.empty(p_n)
        capped = np.zeros(p_n, dtype=np.bool_)
        req_sum = np.zeros(n)
        for p in range(p_n):
            r = buy_qty[buyer[p]] * w[p] / w_sum[buyer[p]] if w[p] > 0 else 0.0
            if r > payable[p]:
                capped[p] = True
                r = payable[p]
            request[p] = r
            req_sum[seller[p]] += r
        qty = np.empty(p_n)
        for p in range(p_n):
            s = seller[p]
            scale = sell_qty[s] / req_sum[s] if req_sum[s] > sell_qty[s] else 1.0
            qty[p] = request[p] * scale
        return qty, capped, side

    ration_pairs = _ration_nb
else:  # pragma: no cover
    ration_pairs = None


# ---- channel payments of a step's trades ---------------------------------------------------------

if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _pay_nb(channel, seller, buyer, qty, price, cut, u, capacity, balance_u, n, round_off):  # pragma: no cover
        t_n = channel.shape[0]
        e_n = u.shape[0]
        paid = np.empty(t_n)
        paid_qty = np.empty(t_n)
        failed = np.zeros(t_n, dtype=np.bool_)
        partial = np.zeros(t_n, dtype=np.bool_)
        flow_in_u = np.zeros(e_n)
        sold = np.zeros(n)
        bought = np.zeros(n)
        revenue = np.zeros(n)
        cost = np.zeros(n)
        ex_in = np.zeros(n)
        ex_out = np.zeros(n)
        n_failed = np.zeros(n)
        n_partial = np.zeros(n)
        for t in range(t_n):
            ch = channel[t]
            amount = qty[t] * price[t]
            buyer_is_u = False
            if ch >= 0:
                buyer_is_u = u[ch] == buyer[t]
                sd = balance_u[ch] if buyer_is_u else capacity[ch] - balance_u[ch]
                pd = min(amount, sd)
            else:
                pd = amount
            short = pd < amount
            if short:
                pq = pd / price[t] if price[t] > 0 else 0.0
            else:
                pq = qty[t]
            f = cut[t] == 2 or (short and pd <= 0.0)
            pa = (not f) and (cut[t] == 1 or (short and pd < amount * (1.0 - round_off)))
            paid[t] = pd
            paid_qty[t] = pq
            failed[t] = f
            partial[t] = pa
            if ch >= 0:
                flow_in_u[ch] += -pd if buyer_is_u else pd
            else:
                ex_in[seller[t]] += pd
                ex_out[buyer[t]] += pd
            sold[seller[t]] += pq
            bought[buyer[t]] += pq
            revenue[seller[t]] += pd
            cost[buyer[t]] += pd
            n_failed[buyer[t]] += 1.0 if f else 0.0
            n_partial[buyer[t]] += 1.0 if pa else 0.0
        return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out,
                n_failed, n_partial)

    pay_trades = _pay_nb
else:  # pragma: no cover
    pay_trades = None


# ---- per-agent booking: storage charge, grid backstop, profit --------------------------------------

if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _book_nb(storage, generator, consumer, eff, capacity, grid_limit, marginal_cost, limit, sellable,
                 needed, soc, wallet, sold, bought, revenue, cost, n_failed, n_partial, feed_in,
                 retail, bd):  # pragma: no cover - compiled
        # bd: a zeroed [N, F] breakdown, filled in settlement.BREAKDOWN_FIELDS order (0..12)
        n = soc.shape[0]
        new_soc = np.empty(n)
        new_wallet = np.empty(n)
        grid_in = 0.0
        grid_out = 0.0
        for i in range(n):
            charged = bought[i] if storage[i] else 0.0
            discharged = sold[i] if storage[i] else 0.0
            if storage[i]:
                x = soc[i] + charged * eff[i] - discharged / eff[i]
                new_soc[i] = min(max(x, 0.0), capacity[i])
            else:
                new_soc[i] = soc[i]
            residual_gen = max(sellable[i] - sold[i], 0.0) if generator[i] else 0.0
            grid_sold = min(residual_gen, grid_limit[i])
            residual_need = max(needed[i] - bought[i], 0.0) if consumer[i] else 0.0
            grid_bought = min(residual_need, grid_limit[i])
            grid_revenue = grid_sold * feed_in
            grid_cost = grid_bought * retail
            new_wallet[i] = wallet[i] + (grid_revenue - grid_cost)
            grid_in += grid_cost
            grid_out += grid_revenue
            rev = revenue[i] + grid_revenue
            cst = cost[i] + grid_cost
            value = limit[i] * (bought[i] + grid_bought) if consumer[i] else 0.0
            row = bd[i]
            row[0] = rev - cst - marginal_cost[i] * (sold[i] + grid_sold) + value
            row[1] = rev
            row[2] = cst
            row[3] = sold[i]
            row[4] = bought[i]
            row[5] = grid_sold
            row[6] = grid_bought
            row[7] = residual_gen - grid_sold
            row[8] = residual_need - grid_bought
            row[9] = charged
            row[10] = discharged
            row[11] = n_failed[i]
            row[12] = n_partial[i]
        return new_soc, new_wallet, grid_in - grid_out, bd

    def book_agents(*args):
        """Twin of settlement.book_agents_numpy."""
        from .settlement import BREAKDOWN_FIELDS

        bd = np.zeros((args[10].shape[0], len(BREAKDOWN_FIELDS)))
        return _book_nb(*args, bd)
else:  # pragma: no cover
    book_agents = None


# ---- channel closes -------------------------------------------------------------------------------

def close_channels_numpy(u, v, capacity, balance_u, is_open, active, wallet, draw, close_rate, open_rate, fee):
    """Close the open channels whose draw is under the close rate (or with an endpoint that left),
    settling both sides to the wallets less half the fee each. Returns (open after closes, wallet,
    closes, the closed-before slots whose draw is under the open rate)."""
    n = wallet.shape[0]
    closing = is_open & (draw < close_rate)
    if not active.all():
        closing |= is_open & (~active[u] | ~active[v])
    wallet = wallet.copy()
    n_closed = int(closing.sum())
    if n_closed:
        bu = balance_u[closing]
        wallet += np.bincount(u[closing], weights=bu - fee / 2, minlength=n)
        wallet += np.bincount(v[closing], weights=capacity[closing] - bu - fee / 2, minlength=n)
    reopening = ~is_open & (draw < open_rate)
    return is_open & ~closing, wallet, n_closed, np.flatnonzero(reopening)


if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _close_nb(u, v, capacity, balance_u, is_open, active, wallet, draw, close_rate, open_rate,
                  fee, all_active):  # pragma: no cover - compiled
        e_n = u.shape[0]
        n = wallet.shape[0]
        new_open = np.empty(e_n, dtype=np.bool_)
        add_u = np.zeros(n)   # kept apart, as NumPy's two bincounts are
        add_v = np.zeros(n)
        reopen = np.empty(e_n, dtype=np.int64)
        n_closed = 0
        k = 0
        half = fee / 2
        for e in range(e_n):
            if is_open[e]:
                a, b = u[e], v[e]
                if draw[e] < close_rate or (not all_active and (not active[a] or not active[b])):
                    bu = balance_u[e]
                    add_u[a] += bu - half
                    add_v[b] += capacity[e] - bu - half
                    n_closed += 1
                    new_open[e] = False
                else:
                    new_open[e] = True
            else:
                new_open[e] = False
                if draw[e] < open_rate:
                    reopen[k] = e
                    k += 1
        new_wallet = np.empty(n)
        for i in range(n):
            new_wallet[i] = (wallet[i] + add_u[i]) + add_v[i]
        return new_open, new_wallet, n_closed, reopen[:k].copy()

    def close_channels(u, v, capacity, balance_u, is_open, active, wallet, draw, close_rate, open_rate, fee):
        return _close_nb(u, v, capacity, balance_u, is_open, active, wallet, draw, close_rate, open_rate, fee,
                         bool(active.all()))
else:  # pragma: no cover
    close_channels = close_channels_numpy


# ---- channel utilization and per-agent liquidity after the lifecycle --------------------------------

def channel_aftermath_numpy(util, flow, old_capacity, opened, decay, n, u, v, capacity, balance_u, is_open):
    """(utilization EMA with new channels reset [E], and `liquidity` of the new channel state)."""
    new_util = decay * util + (1 - decay) * np.abs(flow) / old_capacity
    new_util[opened] = 0.0
    return (new_util, *liquidity_numpy(n, u, v, capacity, balance_u, is_open))


if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _aftermath_nb(util, flow, old_capacity, opened, decay, n, u, v, capacity, balance_u,
                      is_open):  # pragma: no cover - compiled
        e_n = u.shape[0]
        new_util = np.empty(e_n)
        for e in range(e_n):
            new_util[e] = decay * util[e] + (1 - decay) * abs(flow[e]) / old_capacity[e]
        for j in range(opened.shape[0]):
            new_util[opened[j]] = 0.0
        degree, outbound, inbound = _liquidity_nb(n, u, v, capacity, balance_u, is_open)
        return new_util, degree, outbound, inbound

    channel_aftermath = _aftermath_nb
else:  # pragma: no cover
    channel_aftermath = channel_aftermath_numpy


# ---- the per-agent observation fields ----------------------------------------------------------------

if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _agent_rows_nb(buf, rows, sellable, needed, soc, capacity, storage, last_sold, last_bought, last_profit,
                       inv_scale, degree, outbound, inbound, retail, liq, mean_degree, low,
                       high):  # pragma: no cover - compiled
        """Twin of the NumPy branch of observations.observe: the nine per-agent fields, each
        computed in float64 as there, clipped to its bounds, stored into its float32 row of buf."""
        n = sellable.shape[0]
        for i in range(n):
            inv = inv_scale[i]
            vals = (
                sellable[i] * inv,
                needed[i] * inv,
                soc[i] / max(capacity[i], 1e-12) if storage[i] else 0.0,
                last_sold[i] * inv,
                last_bought[i] * inv,
                last_profit[i] * inv / retail,
                degree[i] / mean_degree,
                outbound[i] / liq,
                inbound[i] / liq,
            )
            for k in range(9):
                j = rows[k]
                x = min(max(vals[k], float(low[j])), float(high[j]))
                buf[j, i] = x

    agent_rows = _agent_rows_nb
else:  # pragma: no cover
    agent_rows = None
