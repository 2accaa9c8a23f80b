"""The `bilateral` mechanism (default): negotiation over every open channel.

Over every open channel joining a seller and a buyer of the same good, K alternating concession
rounds run at once for all channels (asks concede down toward the reserve, bids concede up
toward the limit, linearly in the round); a channel agrees at the first round where bid >= ask,
at the midpoint. A buyer knows its own side of each of its channels (as a Lightning node does),
so it spreads its wanted quantity over its agreed channels in proportion to what each can
deliver, min(the seller's offered quantity, what its side pays at the agreed price), never asking
a channel for more than its side pays; an oversubscribed seller scales all its requests down by
the same factor (proportional rationing). O(E * K). Trades settle over their channels; no
random draws. Its two passes over the channels are compiled kernels beside their NumPy twins.
With routes and the payment layer on, the batch calls `clear_and_pay`: one compiled call that
clears and pays the trades (`bilateral_routed_clear_pay`), so settlement does not pay them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..compiled import THREADS, jit, prange, register as register_kernel
from ..payments.layer import _trade_payments_nb, payment_outputs, trade_payments_numpy
from ..payments.routes import PARALLEL_SLOTS, _candidates_nb, candidates as routed_candidates_kernel, candidates_numpy
from ..prefetch import AHEAD as PREFETCH_AHEAD, prefetch
from ..trades import LIQUIDITY_CUT, LIQUIDITY_EMPTY, LIQUIDITY_OK, ROUTED, Trades
from .base import Mechanism, channel_pairs, register, usable_channels

if TYPE_CHECKING:
    from ..offers import Offers
    from ..scenario import Scenario
    from ..state import AgentParams, MarketState


def negotiate(ask0, bid0, reserve, limit, c_sell, c_buy, rounds: int):
    """K concession rounds for all pairs at once. Returns (agreed [P] bool, price [P]).

    Round k = 0..K: ask_k = ask0 - c_sell (ask0 - reserve) k/K, bid_k = bid0 + c_buy (limit - bid0) k/K;
    agreement at the first k with bid_k >= ask_k, at (ask_k + bid_k) / 2. The gap closes linearly,
    so the first agreeing round is found in closed form and then checked against the round rule
    itself (the same float expressions a round-by-round loop evaluates).
    """
    ask_step = c_sell * (ask0 - reserve) / rounds
    bid_step = c_buy * (limit - bid0) / rounds
    gap = ask0 - bid0
    rate = ask_step + bid_step
    with np.errstate(divide="ignore", invalid="ignore"):
        k_est = np.where(gap <= 0, 0.0, np.where(rate > 0, np.ceil(gap / rate), rounds + 1.0))
    k = np.clip(k_est, 0, rounds + 1).astype(np.int64)

    def agrees(kk):
        return (bid0 + bid_step * kk) >= (ask0 - ask_step * kk)

    for _ in range(2):  # float round-off: step back while the previous round already agrees
        back = (k > 0) & agrees(np.maximum(k - 1, 0))
        k = k - back
    for _ in range(2):  # ... or forward while this round does not
        fwd = (k <= rounds) & ~agrees(k)
        k = k + fwd
    agreed = (k <= rounds) & agrees(np.minimum(k, rounds))
    kf = k.astype(np.float64)
    price = np.where(agreed, 0.5 * ((ask0 - ask_step * kf) + (bid0 + bid_step * kf)), 0.0)
    return agreed, price


def ration(seller, buyer, sell_qty, buy_qty, n: int, payable=None):
    """(quantity, capped) per agreed pair: buyers spread what they want in proportion to what each
    pair can deliver, w = min(seller's offered quantity, `payable` MWh the buyer's channel side
    pays), never requesting more than `payable` (`capped` marks those); oversubscribed sellers
    scale their fills down proportionally."""
    w = sell_qty[seller] if payable is None else np.minimum(sell_qty[seller], payable)
    w_sum = np.bincount(buyer, weights=w, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        request = np.where(w > 0, buy_qty[buyer] * w / w_sum[buyer], 0.0)
    capped = np.zeros(request.shape[0], dtype=bool)
    if payable is not None:
        capped = request > payable
        request = np.where(capped, payable, request)
    req_sum = np.bincount(seller, weights=request, minlength=n)
    # over: the discarded branch (req_sum <= sell_qty) may overflow for denormal requests
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.where(req_sum > sell_qty, sell_qty / req_sum, 1.0)
    return request * scale[seller], capped


# ---- agreements: one pass over the channels -------------------------------------------------------

def agreements_numpy(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                     concession, rounds):
    """(channel, seller, buyer, price) of the pairs that agree, and the number that negotiated:
    every open channel whose one end offers the good the other wants, both directions."""
    channel, seller, buyer = channel_pairs(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good)
    agreed, price = negotiate(ask[seller], bid[buyer], reserve[seller], limit[buyer], concession[seller],
                              concession[buyer], rounds)
    return channel[agreed], seller[agreed], buyer[agreed], price[agreed], int(channel.shape[0])


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


_first_agreeing_round_nb = jit(_first_agreeing_round)


def _negotiate_list(cd, m, sell_end, buy_end, ask_q, bid_q, rounds, lo, o_c, o_s, o_b, o_p):  # pragma: no cover - compiled
    """The pairs cd[:m] (channel offsets; seller `sell_end[j]`, buyer `buy_end[j]`) negotiated, the
    agreements written to o_*[0..] in order; returns their count. ask_q / bid_q [N, 2]: the first
    ask / bid and its step per round. The rows of the pair `PREFETCH_AHEAD` on are asked for early
    (random rows: their misses then overlap; measured 2-4% of the agreements' pass at 10,000 agents)."""
    k_ = 0
    for i in range(m):
        if i + PREFETCH_AHEAD < m:   # the pair PREFETCH_AHEAD on: its seller's and buyer's rows, asked for now
            j_a = cd[i + PREFETCH_AHEAD]
            prefetch(ask_q, 2 * np.uint32(sell_end[j_a]))
            prefetch(bid_q, 2 * np.uint32(buy_end[j_a]))
        j = cd[i]
        s = np.uint32(sell_end[j])
        b = np.uint32(buy_end[j])
        a0 = ask_q[s, 0]
        a_step = ask_q[s, 1]
        b0 = bid_q[b, 0]
        b_step = bid_q[b, 1]
        k = _first_agreeing_round_nb(a0, b0, a_step, b_step, rounds)
        kf = float(k)
        o_c[k_] = lo + j
        o_s[k_] = s
        o_b[k_] = b
        o_p[k_] = 0.5 * ((a0 - a_step * kf) + (b0 + b_step * kf))
        k_ += k <= rounds
    return k_


_negotiate_list_nb = jit(_negotiate_list)


def _agree_range(u, v, is_open, offer_good, want_good, ask_q, bid_q, rounds, lo, hi, cand, f_c, f_s, f_b, f_p, r_c,
                 r_s, r_b, r_p, joined):  # pragma: no cover - compiled
    """Channels lo..hi-1: the channels whose forward (u sells) and reverse (v sells) pairs
    negotiate are listed without a branch (an unpredictable one per channel direction cost more
    than the negotiations) into two lists in cand[2 lo..2 hi], then each list negotiates in
    channel order without a branch on the direction or the outcome (every pair is written, the
    count moves on when it agrees): forward agreements go to f_*[lo..], reverse ones to r_*[lo..].
    With `joined` (one chunk: f_* sized 2 (hi - lo)) the reverse agreements follow the forward
    ones in f_* instead, already in the gathered order. Returns (negotiated, forward, reverse)
    counts. (Views from 0 and unsigned agent indices: numba then leaves out its negative-index
    checks.)"""
    u_, v_, op_ = u[lo:hi], v[lo:hi], is_open[lo:hi]
    c_f = cand[2 * lo:lo + hi]
    c_r = cand[lo + hi:2 * hi]
    m_f = 0
    m_r = 0
    for j in range(hi - lo):
        a_ = np.uint32(u_[j])
        b_ = np.uint32(v_[j])
        op = op_[j]
        c_f[m_f] = j
        m_f += op & (offer_good[a_] == want_good[b_])   # -2 / -3 where nothing is offered / wanted
        c_r[m_r] = j
        m_r += op & (offer_good[b_] == want_good[a_])
    nf = _negotiate_list_nb(c_f, m_f, u_, v_, ask_q, bid_q, rounds, lo, f_c[lo:hi], f_s[lo:hi], f_b[lo:hi],
                            f_p[lo:hi])
    if joined:
        a = lo + nf
        b = a + hi - lo
        nr = _negotiate_list_nb(c_r, m_r, v_, u_, ask_q, bid_q, rounds, lo, f_c[a:b], f_s[a:b], f_b[a:b], f_p[a:b])
    else:
        nr = _negotiate_list_nb(c_r, m_r, v_, u_, ask_q, bid_q, rounds, lo, r_c[lo:hi], r_s[lo:hi], r_b[lo:hi],
                                r_p[lo:hi])
    return m_f + m_r, nf, nr


_agree_range_nb = jit(_agree_range)


def _ask_bid_row_py(i, ask, bid, reserve, limit, concession, rounds, ask_q, bid_q):  # pragma: no cover - compiled
    """Agent i's first ask and bid and their concession per round, rows of the [N, 2] tables (the same float
    expressions `negotiate` evaluates per pair)."""
    ask_q[i, 0] = ask[i]
    ask_q[i, 1] = concession[i] * (ask[i] - reserve[i]) / rounds
    bid_q[i, 0] = bid[i]
    bid_q[i, 1] = concession[i] * (limit[i] - bid[i]) / rounds


_ask_bid_row = jit(_ask_bid_row_py, inline=True) or _ask_bid_row_py


def _agent_tables(sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit, concession,
                  rounds):  # pragma: no cover - compiled
    """Per agent: the good it offers (or -2) and wants (or -3) this step, and its first ask / bid and
    concession per round on each side (the same float expressions `negotiate` evaluates per pair)."""
    n = sell_qty.shape[0]
    offer_good = np.empty(n, dtype=np.int16)   # (small: the listing's random reads stay in the L1 cache)
    want_good = np.empty(n, dtype=np.int16)
    ask_q = np.empty((n, 2))   # ask and its step per round side by side: one cache line per seller read
    bid_q = np.empty((n, 2))
    for i in range(n):
        offer_good[i] = sells_good[i] if sell_qty[i] > 0.0 else -2
        want_good[i] = buys_good[i] if buy_qty[i] > 0.0 else -3
        _ask_bid_row(i, ask, bid, reserve, limit, concession, rounds, ask_q, bid_q)
    return offer_good, want_good, ask_q, bid_q


_agent_tables_nb = jit(_agent_tables)


def _agreements(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit, concession, rounds,
                chunks):  # pragma: no cover - compiled
    """The pass. Per agent first: the good it offers (or -2) and wants (or -3) this step, and its
    concession per round on each side (the same float expressions `negotiate` evaluates per
    pair). Then `_agree_range` over `chunks` slices of the channels side by side (`prange`), and
    the agreements gathered forward-then-reverse, each in channel order, as in NumPy: the same
    pairs whatever the number of chunks or threads. Returns the agreements (channel, seller, buyer,
    price), the number that negotiated, and the first ask and bid tables [N, 2] (the rationing's
    routed negotiations read them)."""
    offer_good, want_good, ask_q, bid_q = _agent_tables_nb(sell_qty, buy_qty, sells_good, buys_good, ask, bid,
                                                           reserve, limit, concession, rounds)
    e_n = u.shape[0]
    size = (e_n + chunks - 1) // chunks
    cand = np.empty(2 * e_n + 1, dtype=np.int32)   # channel offsets within a chunk
    if chunks == 1:   # one pass writes the agreements in their final order: no gather
        f_c = np.empty(2 * e_n, dtype=np.int64)
        f_s = np.empty(2 * e_n, dtype=np.int64)
        f_b = np.empty(2 * e_n, dtype=np.int64)
        f_p = np.empty(2 * e_n)
        m, nf, nr = _agree_range_nb(u, v, is_open, offer_good, want_good, ask_q, bid_q, rounds, 0, e_n, cand, f_c,
                                    f_s, f_b, f_p, f_c, f_s, f_b, f_p, True)
        t_n = nf + nr
        return f_c[:t_n], f_s[:t_n], f_b[:t_n], f_p[:t_n], m, ask_q, bid_q
    f_c = np.empty(e_n, dtype=np.int64)
    f_s = np.empty(e_n, dtype=np.int64)
    f_b = np.empty(e_n, dtype=np.int64)
    f_p = np.empty(e_n)
    r_c = np.empty(e_n, dtype=np.int64)
    r_s = np.empty(e_n, dtype=np.int64)
    r_b = np.empty(e_n, dtype=np.int64)
    r_p = np.empty(e_n)
    counts = np.empty((chunks, 3), dtype=np.int64)
    for k in prange(chunks):
        lo = min(k * size, e_n)
        hi = min(lo + size, e_n)
        m, nf, nr = _agree_range_nb(u, v, is_open, offer_good, want_good, ask_q, bid_q, rounds, lo, hi, cand, f_c,
                                    f_s, f_b, f_p, r_c, r_s, r_b, r_p, False)
        counts[k, 0] = m
        counts[k, 1] = nf
        counts[k, 2] = nr
    m = 0
    t_n = 0
    for k in range(chunks):
        m += counts[k, 0]
        t_n += counts[k, 1] + counts[k, 2]
    channel = np.empty(t_n, dtype=np.int64)
    seller = np.empty(t_n, dtype=np.int64)
    buyer = np.empty(t_n, dtype=np.int64)
    price = np.empty(t_n)
    at = np.empty((chunks, 2), dtype=np.int64)   # where each chunk's forward and reverse agreements go
    q = 0
    for k in range(chunks):
        at[k, 0] = q
        q += counts[k, 1]
    for k in range(chunks):
        at[k, 1] = q
        q += counts[k, 2]
    for k in range(chunks):   # (serial: cheaper than starting the threads again)
        lo = min(k * size, e_n)
        o = at[k, 0]
        for i in range(counts[k, 1]):
            channel[o + i] = f_c[lo + i]
            seller[o + i] = f_s[lo + i]
            buyer[o + i] = f_b[lo + i]
            price[o + i] = f_p[lo + i]
        o = at[k, 1]
        for i in range(counts[k, 2]):
            channel[o + i] = r_c[lo + i]
            seller[o + i] = r_s[lo + i]
            buyer[o + i] = r_b[lo + i]
            price[o + i] = r_p[lo + i]
    return channel, seller, buyer, price, m, ask_q, bid_q


_agreements_nb = jit(_agreements)
_agreements_par = jit(_agreements, parallel=True)


def _agreements_compiled(*args):
    return _agreements_nb(*args, 1)[:5]


def _agreements_parallel(*args):
    return _agreements_par(*args, THREADS)[:5]


agreements = register_kernel("bilateral_agreements", agreements_numpy,
                             _agreements_compiled if _agreements_nb is not None else None,
                             parallel=_agreements_parallel if _agreements_par is not None else None, split="u",
                             min_items=PARALLEL_SLOTS)


# ---- rationing of agreed pairs within the buyers' channel balances ------------------------------

def ration_pairs_numpy(channel, seller, buyer, price, u, balance_u, capacity, sell_qty, buy_qty, n):
    """(quantity, capped, the buyer's channel side) per agreed pair: `ration` within what each
    pair's buyer side pays at its price."""
    side = np.where(u[channel] == buyer, balance_u[channel], capacity[channel] - balance_u[channel])
    with np.errstate(divide="ignore", invalid="ignore"):
        payable = np.where(price > 0, side / price, np.inf)
    qty, capped = ration(seller, buyer, sell_qty, buy_qty, n, payable)
    return qty, capped, side


@jit
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


ration_pairs = register_kernel("ration_pairs", ration_pairs_numpy, _ration_nb)


# ---- the mechanism ------------------------------------------------------------------------------------

def clear_bilateral(sc: "Scenario", agents: "AgentParams", state: "MarketState", offers: "Offers") -> Trades:
    """Trades of the step's channel negotiations (see the module docstring)."""
    if sc.max_hops > 1:
        return _with_routes(sc, agents, state, offers)
    channel, seller, buyer, price, n_neg = agreements(
        u=state.u, v=state.v, is_open=state.open, sell_qty=offers.sell_qty, buy_qty=offers.buy_qty,
        sells_good=agents.sells_good, buys_good=agents.buys_good, ask=offers.ask, bid=offers.bid,
        reserve=agents.reserve, limit=agents.limit, concession=offers.concession, rounds=sc.negotiation_rounds)
    if channel.shape[0] == 0:
        return Trades.empty(n_neg)
    qty, capped, side = ration_pairs(channel=channel, seller=seller, buyer=buyer, price=price, u=state.u,
                                     balance_u=state.balance_u, capacity=state.capacity, sell_qty=offers.sell_qty,
                                     buy_qty=offers.buy_qty, n=agents.n)
    empty = side <= 0.0
    cut = np.where(empty, LIQUIDITY_EMPTY, np.where(capped, LIQUIDITY_CUT, LIQUIDITY_OK)).astype(np.int8)
    keep = (qty > 0.0) | empty
    good = agents.sells_good[seller[keep]].astype(np.int64)
    return Trades(channel[keep], seller[keep], buyer[keep], good, qty[keep], price[keep], n_neg, cut[keep])


def _with_routes(sc, agents, state, offers) -> Trades:
    """Multi-hop routes on (`sc.max_hops` > 1): each buyer also negotiates with the seller at the end
    of its widest routed candidate (`routed_pairs`), and rations over direct and routed agreements
    together: one compiled call, `clear_routed`, over open channels between active agents."""
    usable = usable_channels(state)
    all_ch, all_s, all_b, all_p, qty, cut, route, good, n_neg, unrouted = clear_routed(
        u=state.u, v=state.v, is_open=state.open, usable=usable, sell_qty=offers.sell_qty, buy_qty=offers.buy_qty,
        sells_good=agents.sells_good, buys_good=agents.buys_good, ask=offers.ask, bid=offers.bid,
        reserve=agents.reserve, limit=agents.limit, concession=offers.concession, rounds=sc.negotiation_rounds,
        balance_u=state.balance_u, capacity=state.capacity, fee_base=state.fee_base, fee_rate=state.fee_rate,
        max_fee_share=sc.max_fee_share, max_hops=int(sc.max_hops), n=agents.n)
    n_neg = int(n_neg)
    if all_ch.shape[0] == 0:
        return Trades.empty(n_neg)._replace(route=np.zeros((0, sc.max_hops), dtype=np.int64), unrouted=unrouted)
    return Trades(all_ch, all_s, all_b, good, qty, all_p, n_neg, cut, route, unrouted)


def ration_routed_numpy(channel, seller, buyer, price, r_seller, r_buyer, r_route, r_width, ask, bid, reserve,
                        limit, concession, rounds, sell_qty, buy_qty, sells_good, u, balance_u, capacity, fee_base,
                        fee_rate, max_fee_share, n):
    """(channel or ROUTED, seller, buyer, price, quantity, cut, route [T, H], good) of the trades kept
    (quantity > 0 or an empty buyer side): the routed candidates negotiate; a buyer knows its
    route's fee policies (gossip) and drops a route whose fees on what it would pay over it (at
    most its whole need, at most the route's width) exceed its fee limit (the forwarders' fees on
    the amount, without the fee-on-fee compounding HTLC payments add); then `ration` over direct
    and routed agreements together, a routed pair paying at most its route's narrowest side less
    the fee allowance."""
    agreed, r_price = negotiate(ask[r_seller], bid[r_buyer], reserve[r_seller], limit[r_buyer],
                                concession[r_seller], concession[r_buyer], rounds)
    r_side = r_width / (1.0 + max_fee_share) * (1.0 - 1e-9)   # room for fees and round-off
    amount = np.minimum(r_side, buy_qty[r_buyer] * r_price)
    hops = r_route[:, 1:]
    fwd = np.maximum(hops, 0)
    live = hops >= 0
    fee = (np.where(live, fee_base[fwd], 0.0).sum(axis=1)
           + amount * np.where(live, fee_rate[fwd], 0.0).sum(axis=1))
    agreed &= fee <= max_fee_share * amount
    r_seller, r_buyer, r_price, r_side = r_seller[agreed], r_buyer[agreed], r_price[agreed], r_side[agreed]
    d_side = np.where(u[channel] == buyer, balance_u[channel], capacity[channel] - balance_u[channel])
    all_ch = np.concatenate([channel, np.full(r_seller.shape[0], ROUTED, dtype=np.int64)])
    all_s, all_b = np.concatenate([seller, r_seller]), np.concatenate([buyer, r_buyer])
    all_p, side = np.concatenate([price, r_price]), np.concatenate([d_side, r_side])
    route = np.full((all_ch.shape[0], r_route.shape[1]), -1, dtype=np.int64)   # direct trades: their channel only
    route[:channel.shape[0], 0] = channel
    route[channel.shape[0]:] = r_route[agreed]
    with np.errstate(divide="ignore", invalid="ignore"):
        payable = np.where(all_p > 0, side / all_p, np.inf)
    qty, capped = ration(all_s, all_b, sell_qty, buy_qty, n, payable)
    empty = side <= 0.0
    cut = np.where(empty, LIQUIDITY_EMPTY, np.where(capped, LIQUIDITY_CUT, LIQUIDITY_OK)).astype(np.int8)
    keep = (qty > 0.0) | empty
    return (all_ch[keep], all_s[keep], all_b[keep], all_p[keep], qty[keep], cut[keep], route[keep],
            sells_good[all_s[keep]].astype(np.int64))


def _ration_routed_q(channel, seller, buyer, price, r_seller, r_buyer, r_route, r_width, ask_q, bid_q, rounds,
                     sell_qty, buy_qty, sells_good, u, balance_u, capacity, fee_base, fee_rate, max_fee_share,
                     n):  # pragma: no cover - compiled
    """`ration_routed` with the first asks and bids and their steps per round in [N, 2] tables
    (`_agent_tables`: one cache line per agent a routed negotiation reads, and no division). (Agent
    and channel indices unsigned: numba then leaves out its negative-index checks.)"""
    d_n = channel.shape[0]
    r_n = r_seller.shape[0]
    h_n = r_route.shape[1]
    t_n = d_n + r_n
    # the pairs in clearing order: direct agreements, then the routed ones that agree within the fee limit
    s_ = np.empty(t_n, dtype=np.int32)   # (int32: agents and pair indices fit, and half the bytes move)
    b_ = np.empty(t_n, dtype=np.int32)
    p_ = np.empty(t_n)
    sd_ = np.empty(t_n)
    src = np.empty(t_n, dtype=np.int32)   # index into the direct (>= 0) or routed (-1 - i) inputs
    payable = np.empty(t_n)   # `ration`'s first pass, on the way (the same order of the sums)
    w = np.empty(t_n)
    w_sum = np.zeros(n)
    for i in range(d_n):
        ch = np.uint64(channel[i])
        bi = buyer[i]
        si = seller[i]
        pr = price[i]
        s_[i] = si
        b_[i] = bi
        p_[i] = pr
        bu = balance_u[ch]
        sd = bu if u[ch] == bi else capacity[ch] - bu
        sd_[i] = sd
        src[i] = i
        pay = sd / pr if pr > 0 else np.inf
        payable[i] = pay
        wp = min(sell_qty[np.uint32(si)], pay)
        w[i] = wp
        w_sum[np.uint32(bi)] += wp
    m = d_n
    for i in range(r_n):
        s = np.uint32(r_seller[i])
        b = np.uint32(r_buyer[i])
        a0 = ask_q[s, 0]
        a_step = ask_q[s, 1]
        b0 = bid_q[b, 0]
        b_step = bid_q[b, 1]
        k = _first_agreeing_round_nb(a0, b0, a_step, b_step, rounds)
        if k > rounds:
            continue
        kf = float(k)
        pr = 0.5 * ((a0 - a_step * kf) + (b0 + b_step * kf))
        side = r_width[i] / (1.0 + max_fee_share) * (1.0 - 1e-9)
        amount = min(side, buy_qty[b] * pr)
        fb = 0.0
        fr = 0.0
        for j in range(1, h_n):
            c = r_route[i, j]
            if c >= 0:
                fb += fee_base[np.uint64(c)]
                fr += fee_rate[np.uint64(c)]
        if not (fb + amount * fr <= max_fee_share * amount):
            continue
        s_[m] = s
        b_[m] = b
        p_[m] = pr
        sd_[m] = side
        src[m] = -1 - i
        pay = side / pr if pr > 0 else np.inf
        payable[m] = pay
        wp = min(sell_qty[s], pay)
        w[m] = wp
        w_sum[b] += wp
        m += 1
    # the rest of `ration` over them all
    request = np.empty(m)
    capped = np.zeros(m, dtype=np.bool_)
    req_sum = np.zeros(n)
    for p in range(m):
        b = np.uint32(b_[p])
        r = buy_qty[b] * w[p] / w_sum[b] if w[p] > 0 else 0.0
        if r > payable[p]:
            capped[p] = True
            r = payable[p]
        request[p] = r
        req_sum[np.uint32(s_[p])] += r
    scale = np.empty(n)   # per seller (the same quotient each of its pairs took)
    for x in range(n):
        scale[x] = sell_qty[x] / req_sum[x] if req_sum[x] > sell_qty[x] else 1.0
    o_ch = np.empty(m, dtype=np.int64)
    o_s = np.empty(m, dtype=np.int64)
    o_b = np.empty(m, dtype=np.int64)
    o_p = np.empty(m)
    o_q = np.empty(m)
    o_cut = np.empty(m, dtype=np.int8)
    o_route = np.full((m, h_n), -1, dtype=np.int64)   # (one vectorized fill: cheaper than -1s written per row)
    o_good = np.empty(m, dtype=np.int64)
    k_ = 0
    for p in range(m):
        s = np.uint32(s_[p])
        q = request[p] * scale[s]
        empty = sd_[p] <= 0.0
        if not (q > 0.0 or empty):
            continue
        i = src[p]
        if i >= 0:
            c = channel[np.uint32(i)]
            o_ch[k_] = c
            o_route[k_, 0] = c
        else:
            o_ch[k_] = ROUTED
            ri = np.uint32(-1 - i)
            for j in range(h_n):
                o_route[k_, j] = r_route[ri, j]
        o_s[k_] = s
        o_good[k_] = sells_good[s]
        o_b[k_] = b_[p]
        o_p[k_] = p_[p]
        o_q[k_] = q
        o_cut[k_] = LIQUIDITY_EMPTY if empty else (LIQUIDITY_CUT if capped[p] else LIQUIDITY_OK)
        k_ += 1
    return o_ch[:k_], o_s[:k_], o_b[:k_], o_p[:k_], o_q[:k_], o_cut[:k_], o_route[:k_], o_good[:k_]


_ration_routed_q_nb = jit(_ration_routed_q)


def _ration_routed(channel, seller, buyer, price, r_seller, r_buyer, r_route, r_width, ask, bid, reserve, limit,
                   concession, rounds, sell_qty, buy_qty, sells_good, u, balance_u, capacity, fee_base, fee_rate,
                   max_fee_share, n):  # pragma: no cover - compiled
    """`ration_routed_numpy` compiled: the ask and bid tables (`_ask_bid_row`, as `_agent_tables` builds them), then
    `_ration_routed_q`."""
    ask_q = np.empty((n, 2))
    bid_q = np.empty((n, 2))
    for i in range(n):
        _ask_bid_row(i, ask, bid, reserve, limit, concession, rounds, ask_q, bid_q)
    return _ration_routed_q_nb(channel, seller, buyer, price, r_seller, r_buyer, r_route, r_width, ask_q, bid_q,
                               rounds, sell_qty, buy_qty, sells_good, u, balance_u, capacity, fee_base, fee_rate,
                               max_fee_share, n)


_ration_routed_nb = jit(_ration_routed)


ration_routed = register_kernel("ration_routed", ration_routed_numpy, _ration_routed_nb)


# ---- the routed clearing in one call: agreements, route search and rationing ------------------------

def clear_routed_numpy(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                       concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share, max_hops, n):
    """`agreements` over the open channels, every buyer's widest routed candidate over the `usable`
    ones (`routes.candidates`) and `ration_routed` over both, composed: ration_routed's eight
    outputs, then the pairs that negotiated (direct and routed) and unrouted [N]."""
    channel, seller, buyer, price, n_neg = agreements_numpy(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good,
                                                            ask, bid, reserve, limit, concession, rounds)
    rs, rb, rr, rw, unrouted = candidates_numpy(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good,
                                                buys_good, max_hops)
    out = ration_routed_numpy(channel, seller, buyer, price, rs, rb, rr, rw, ask, bid, reserve, limit, concession,
                              rounds, sell_qty, buy_qty, sells_good, u, balance_u, capacity, fee_base, fee_rate,
                              max_fee_share, n)
    return (*out, n_neg + int(rs.shape[0]), unrouted)


def _clear_routed(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                  concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share, max_hops,
                  n):  # pragma: no cover - compiled
    """`clear_routed_numpy` in one call (serial): the agreements (`_agreements`, one chunk), every
    buyer's widest routed candidate (`routes._candidates_nb`) and the rationing (`_ration_routed_q`,
    with the agreements' ask and bid tables), the same float expressions in the same order as the
    separate kernels."""
    d_c, d_s, d_b, d_p, m_neg, ask_q, bid_q = _agreements_nb(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good,
                                                             ask, bid, reserve, limit, concession, rounds, 1)
    o_s, o_b, o_r, o_w, unrouted = _candidates_nb(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good,
                                                  buys_good, max_hops, 1)
    all_ch, all_s, all_b, all_p, qty, cut, r_out, good = _ration_routed_q_nb(
        d_c, d_s, d_b, d_p, o_s, o_b, o_r, o_w, ask_q, bid_q, rounds, sell_qty, buy_qty, sells_good, u, balance_u,
        capacity, fee_base, fee_rate, max_fee_share, n)
    return all_ch, all_s, all_b, all_p, qty, cut, r_out, good, m_neg + o_s.shape[0], unrouted


_clear_routed_nb = jit(_clear_routed)


def _held(kernel, *args):
    """`kernel` on its positional arguments, its multi-threaded build picked by its own size threshold,
    without taking the lock of the multi-threaded builds: for a multi-threaded build that calls other
    kernels (`compiled.ParallelKernel` runs it holding that lock already; through `kernel(**kw)` it
    would wait for itself forever)."""
    if kernel.parallel is not None and len(args[kernel.split]) >= kernel.min_items:
        return kernel.parallel(*args)
    return kernel.impl(*args)


def _clear_routed_parallel(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                           concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share, max_hops, n):
    """Large markets: the separate kernels, each picking its multi-threaded build by its own size threshold."""
    channel, seller, buyer, price, n_neg = _held(agreements, u, v, is_open, sell_qty, buy_qty, sells_good, buys_good,
                                                 ask, bid, reserve, limit, concession, rounds)
    rs, rb, rr, rw, unrouted = _held(routed_candidates_kernel, u, v, usable, capacity, balance_u, sell_qty, buy_qty,
                                     sells_good, buys_good, max_hops)
    out = _ration_routed_nb(channel, seller, buyer, price, rs, rb, rr, rw, ask, bid, reserve, limit, concession,
                            rounds, sell_qty, buy_qty, sells_good, u, balance_u, capacity, fee_base, fee_rate,
                            max_fee_share, n)
    return (*out, n_neg + int(rs.shape[0]), unrouted)


clear_routed = register_kernel("bilateral_routed_clear", clear_routed_numpy,
                               _clear_routed_nb if _clear_routed_nb is not None else None,
                               parallel=_clear_routed_parallel if _agreements_par is not None else None, split="u",
                               min_items=PARALLEL_SLOTS)


# ---- the routed clearing that also pays: one call from the offers to the payments -------------------

def clear_pay_routed_numpy(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                           concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share, max_hops, n,
                           blocked_agent, blocked_channel, faults, round_off):
    """`clear_routed_numpy`, then its trades paid (`payments.layer.trade_payments_numpy`, over the
    same channels; agents and channels `blocked` with `faults`): clear_routed's ten outputs, then
    trade_payments' twenty."""
    out = clear_routed_numpy(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve,
                             limit, concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share,
                             max_hops, n)
    all_ch, all_s, all_b, all_p, qty, cut, route, good, n_neg, unrouted = out
    paid = trade_payments_numpy(all_ch, all_s, all_b, qty, all_p, cut, route, unrouted, u, v, capacity, balance_u,
                                fee_base, fee_rate, blocked_agent, blocked_channel, faults, n, round_off,
                                max_fee_share, max_hops)
    return (*out, *paid)


def _clear_pay_routed(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit,
                      concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share, max_hops, n,
                      blocked_agent, blocked_channel, faults, round_off):  # pragma: no cover - compiled
    """`clear_pay_routed_numpy` in one call (serial): `_clear_routed`, then `layer._trade_payments`
    (one chunk) over its trades, with no return to Python in between."""
    all_ch, all_s, all_b, all_p, qty, cut, r_out, good, n_neg, unrouted = _clear_routed_nb(
        u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve, limit, concession, rounds,
        balance_u, capacity, fee_base, fee_rate, max_fee_share, max_hops, n)
    pay = _trade_payments_nb(all_ch, all_s, all_b, qty, all_p, cut, r_out, unrouted, u, v, capacity, balance_u,
                             fee_base, fee_rate, blocked_agent, blocked_channel, faults, n, round_off, max_fee_share,
                             max_hops, 1)
    return (all_ch, all_s, all_b, all_p, qty, cut, r_out, good, n_neg, unrouted) + pay


_clear_pay_routed_nb = jit(_clear_pay_routed)


def _clear_pay_routed_parallel(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve,
                               limit, concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share,
                               max_hops, n, blocked_agent, blocked_channel, faults, round_off):
    """Large markets: `_clear_routed_parallel`, then `trade_payments` by its own size threshold."""
    from ..payments.layer import trade_payments

    out = _clear_routed_parallel(u, v, is_open, usable, sell_qty, buy_qty, sells_good, buys_good, ask, bid, reserve,
                                 limit, concession, rounds, balance_u, capacity, fee_base, fee_rate, max_fee_share,
                                 max_hops, n)
    all_ch, all_s, all_b, all_p, qty, cut, route, good, n_neg, unrouted = out
    pay = _held(trade_payments, all_ch, all_s, all_b, qty, all_p, cut, route, unrouted, u, v, capacity, balance_u,
                fee_base, fee_rate, blocked_agent, blocked_channel, faults, n, round_off, max_fee_share, max_hops)
    return (*out, *pay)


clear_pay_routed = register_kernel("bilateral_routed_clear_pay", clear_pay_routed_numpy,
                                   _clear_pay_routed_nb if _clear_pay_routed_nb is not None else None,
                                   parallel=_clear_pay_routed_parallel if _agreements_par is not None else None,
                                   split="u", min_items=PARALLEL_SLOTS)


def clear_and_pay(sc: "Scenario", agents: "AgentParams", state: "MarketState", offers: "Offers",
                  failed_agent: np.ndarray, failed_channel: np.ndarray) -> Trades:
    """`clear_bilateral`, with routes (`sc.max_hops` > 1) also paying its trades in the same compiled
    call (`clear_pay_routed`): the Trades carry the payment layer's outputs (`Trades.payments`, as
    `payments.layer.pay_trades` returns them over this state; agents and channels that failed this
    step released), so settlement does not pay them again. One hop: `clear_bilateral` alone."""
    if sc.max_hops <= 1:
        return clear_bilateral(sc, agents, state, offers)
    from ..settlement import ROUND_OFF

    usable = usable_channels(state)
    faults = bool(failed_agent.any() or failed_channel.any())   # none: the blocked arrays are not read
    out = clear_pay_routed(
        u=state.u, v=state.v, is_open=state.open, usable=usable, sell_qty=offers.sell_qty, buy_qty=offers.buy_qty,
        sells_good=agents.sells_good, buys_good=agents.buys_good, ask=offers.ask, bid=offers.bid,
        reserve=agents.reserve, limit=agents.limit, concession=offers.concession, rounds=sc.negotiation_rounds,
        balance_u=state.balance_u, capacity=state.capacity, fee_base=state.fee_base, fee_rate=state.fee_rate,
        max_fee_share=sc.max_fee_share, max_hops=int(sc.max_hops), n=agents.n, blocked_agent=failed_agent,
        blocked_channel=failed_channel, faults=faults, round_off=ROUND_OFF)
    all_ch, all_s, all_b, all_p, qty, cut, route, good, n_neg, unrouted = out[:10]
    paid = payment_outputs(out[10:])
    if all_ch.shape[0] == 0:
        return Trades.empty(int(n_neg))._replace(route=np.zeros((0, sc.max_hops), dtype=np.int64), unrouted=unrouted,
                                                 payments=paid)
    return Trades(all_ch, all_s, all_b, good, qty, all_p, int(n_neg), cut, route, unrouted, paid)


BILATERAL = register(Mechanism(
    name="bilateral", clear=clear_bilateral, settles="channels", optimum_network="channels",
    parameters=("negotiation_rounds", "max_hops", "max_fee_share"), batched=True, clear_and_pay=clear_and_pay,
    description="K alternating concession rounds over every open channel, proportional rationing"))

__all__ = ["BILATERAL", "clear_bilateral", "negotiate", "ration", "agreements", "agreements_numpy", "ration_pairs",
           "ration_pairs_numpy", "ration_routed", "ration_routed_numpy", "clear_routed", "clear_routed_numpy",
           "clear_pay_routed", "clear_pay_routed_numpy", "clear_and_pay"]
