"""Compiled kernels for the few O(E) and O(N) scatter passes NumPy alone cannot make fast enough.

Each kernel sits beside its NumPy twin (same arguments, same result to float round-off) and is
registered in `compiled.KERNELS`, which CHANNELMARKET_NUMBA governs; call them with keywords.
The bilateral mechanism's kernels live in `mechanisms/bilateral.py`, the ε-auction solver's in
`eps_auction.py`, registered the same way.
"""

from __future__ import annotations

import numpy as np

from . import streams
from .breakdown import BREAKDOWN_FIELDS, BREAKDOWN_INDEX
from .payments.accounts import credit_numpy
from .compiled import THREADS, jit, prange, register

try:   # np.clip's own ufunc, without np.clip's Python wrappers
    from numpy._core.umath import clip as _np_clip
except ImportError:   # pragma: no cover - numpy < 2
    from numpy.core.umath import clip as _np_clip

# channel slots from which the lifecycle and aftermath passes run multi-threaded. Their threaded part
# is the per-slot work (the scatters into agents stay one pass in slot order), so threads pay only
# on large markets: measured on the 2-core VM at load ~4.5, 100,000 agents (500,000 slots) ran
# 23.0 -> 18.0 ms (lifecycle) and 18.6 -> 15.2 ms (aftermath) with 2 threads, while 10,000 agents
# (50,000 slots) lost 0.1-0.2 ms per pass to waking the second thread on a busy machine.
PARALLEL_SLOTS = 100_000


def parts_for(kernel, items: int) -> int:
    """How many parts a kernel with a multi-threaded build splits its work into: the thread count
    when it runs that build (`items` at least its `min_items`), else 1."""
    return THREADS if getattr(kernel, "parallel", None) is not None and items >= kernel.min_items else 1
from .trades import LIQUIDITY_CUT, LIQUIDITY_EMPTY, ON_CHAIN


# ---- per-agent channel count and liquidity ------------------------------------------------------

def liquidity_numpy(n, u, v, capacity, balance_u, is_open):
    o = is_open.astype(np.float64)
    bu = balance_u * o
    bv = capacity * o - bu
    ends = np.concatenate((u, v))
    degree = np.bincount(ends, weights=np.concatenate((o, o)), minlength=n)
    outbound = np.bincount(ends, weights=np.concatenate((bu, bv)), minlength=n)
    inbound = np.bincount(ends, weights=np.concatenate((bv, bu)), minlength=n)
    return degree, outbound, inbound



def _liquidity_add_py(acc, a, b, cap, bu, is_open):  # pragma: no cover - compiled
    # branch-free: a closed slot adds zeros (x + 0.0 == x, and a sum from +0.0 never reaches -0.0), so
    # the sums are those of the open slots alone, bit for bit; an open slot's state is a coin flip,
    # and the mispredicted branch cost more than the stores
    # (unsigned indices: numba drops its negative-index wraparound for them; slots hold agents >= 0)
    a, b = np.uint64(a), np.uint64(b)
    o = 1.0 if is_open else 0.0
    bu = bu * o
    bv = cap * o - bu
    acc[a, 0] += o
    acc[a, 1] += bu
    acc[a, 2] += bv
    acc[b, 0] += o
    acc[b, 1] += bv
    acc[b, 2] += bu


_liquidity_add = jit(_liquidity_add_py, inline=True)


def _fresh_and_liquidity_py(new_util, column, opened, count, acc):  # pragma: no cover - compiled
    """The aftermath's end: the first `count` slots of `opened` start with no utilization and no flow;
    (degree, outbound, inbound) [N] read off the liquidity sums `acc` [N, 4]."""
    for j in range(count):
        new_util[opened[j]] = 0.0
        column[opened[j]] = 0.0
    n = acc.shape[0]
    degree, outbound, inbound = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        degree[i] = acc[i, 0]
        outbound[i] = acc[i, 1]
        inbound[i] = acc[i, 2]
    return degree, outbound, inbound


_fresh_and_liquidity = jit(_fresh_and_liquidity_py, inline=True)


def _slot_event_py(e, o, closes, reopens, new_open, closing, c, reopening, r):  # pragma: no cover - compiled
    """Slot `e`'s lifecycle event, listed without a branch: open after it unless it `closes`; written
    at the ends c and r of the closing and reopening lists, which move on only when it closes or,
    closed (`o` False), `reopens`. Returns the new ends."""
    new_open[e] = o & (not closes)
    closing[c] = e
    reopening[r] = e
    return c + closes, r + ((not o) & reopens)


_slot_event = jit(_slot_event_py, inline=True)


@jit
def _liquidity_nb(n, u, v, capacity, balance_u, is_open):  # pragma: no cover - compiled
    # the three sums of a node side by side (one cache line per node for the scatter), each in slot order
    acc = np.zeros((n, 4))
    for e in range(u.shape[0]):
        _liquidity_add(acc, u[e], v[e], capacity[e], balance_u[e], is_open[e])
    return acc[:, 0].copy(), acc[:, 1].copy(), acc[:, 2].copy()


liquidity = register("liquidity", liquidity_numpy, _liquidity_nb)


# ---- channel payments of a step's trades ---------------------------------------------------------

def pay_trades_numpy(channel, seller, buyer, qty, price, cut, u, capacity, balance_u, n, round_off):
    """Pay every trade from its buyer's channel side (or wallet to wallet for exchange trades):
    (paid, paid_qty, failed, partial [T]; flow into u's side [E]; sold, bought, revenue, cost,
    exchange in, exchange out, failed and partial counts [N]). Twin of `_pay_nb`."""
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



@jit
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
        s, b = np.uint64(seller[t]), np.uint64(buyer[t])   # (unsigned: no negative-index wraparound)
        if ch >= 0:
            flow_in_u[ch] += -pd if buyer_is_u else pd
        else:
            ex_in[s] += pd
            ex_out[b] += pd
        sold[s] += pq
        bought[b] += pq
        revenue[s] += pd
        cost[b] += pd
        n_failed[b] += 1.0 if f else 0.0
        n_partial[b] += 1.0 if pa else 0.0
    return (paid, paid_qty, failed, partial, flow_in_u, sold, bought, revenue, cost, ex_in, ex_out,
            n_failed, n_partial)


pay_trades = register("pay_trades", pay_trades_numpy, _pay_nb)


# ---- per-agent booking: storage charge, grid backstop, profit --------------------------------------

_FEES_COL = BREAKDOWN_INDEX["routing_fees"]

def book_agents_numpy(storage, generator, consumer, eff, capacity, grid_limit, marginal_cost, limit, sellable,
                      needed, soc, wallet, sold, bought, revenue, cost, n_failed, n_partial, feed_in, retail, earned):
    """Per agent after the trades: storage charge, grid backstop, profit, and the routing fees it
    `earned` as an intermediary ([N], or empty without the payment layer: `payments.accounts.credit_fees`
    booked in the same pass). Returns (soc, wallet, EUR the grid account gains, breakdown [N, F]).
    Twin of `_book_nb`."""
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
         charged, discharged, n_failed, n_partial] + [np.zeros(n)] * (len(BREAKDOWN_FIELDS) - 13), axis=1)
    if earned.shape[0]:
        credit_numpy(breakdown, earned)
    return new_soc, wallet, grid_flow, breakdown



@jit
def _book_nb(storage, generator, consumer, eff, capacity, grid_limit, marginal_cost, limit, sellable,
             needed, soc, wallet, sold, bought, revenue, cost, n_failed, n_partial, feed_in,
             retail, earned, bd, last):  # pragma: no cover - compiled
    # bd: an [N, F] breakdown (uninitialized), filled in settlement.BREAKDOWN_FIELDS order (0..12),
    # the rest set to 0 here (one pass over its rows, not a zeroing pass before it), and the fees
    # earned added to their column and the profit as `credit_fees` adds them (0.0 + e, profit + e);
    # last [3, N]: the sold, bought and profit columns again, as contiguous rows (`LAST_ROWS`)
    n = soc.shape[0]
    has_earned = earned.shape[0] > 0
    new_soc = np.empty(n)
    new_wallet = np.empty(n)
    grid_in = 0.0
    grid_out = 0.0
    for i in range(n):
        st = storage[i]
        charged = bought[i] if st else 0.0
        discharged = sold[i] if st else 0.0
        ef = eff[i] if st else 1.0   # (computed for every agent, branch-free; a non-storage eff may be 0)
        x = soc[i] + charged * ef - discharged / ef
        x = min(max(x, 0.0), capacity[i])
        new_soc[i] = x if st else soc[i]
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
        profit = rev - cst - marginal_cost[i] * (sold[i] + grid_sold) + value
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
        for k in range(13, row.shape[0]):
            row[k] = 0.0
        if has_earned:
            e = earned[i]
            row[_FEES_COL] = 0.0 + e
            profit = profit + e
        row[0] = profit
        last[0, i] = sold[i]
        last[1, i] = bought[i]
        last[2, i] = profit
    return new_soc, new_wallet, grid_in - grid_out, bd


def _book_compiled(storage, generator, consumer, eff, capacity, grid_limit, marginal_cost, limit, sellable,
                   needed, soc, wallet, sold, bought, revenue, cost, n_failed, n_partial, feed_in, retail, earned):
    # one buffer: the breakdown [N, F], then its sold, bought and profit columns as [3, N] rows (`last_rows`)
    n, f = soc.shape[0], len(BREAKDOWN_FIELDS)
    buf = np.empty(n * (f + 3))
    bd = buf[:n * f].reshape(n, f)
    return _book_nb(storage, generator, consumer, eff, capacity, grid_limit, marginal_cost, limit, sellable,
                    needed, soc, wallet, sold, bought, revenue, cost, n_failed, n_partial, feed_in, retail, earned, bd,
                    buf[n * f:].reshape(3, n))


def last_rows(breakdown: np.ndarray) -> "np.ndarray | None":
    """[3, N] the sold, bought and profit columns of a breakdown `book_agents` returned, as the contiguous
    rows its compiled build wrote beside it in the same buffer (`breakdown.base`, N x (F + 3)), or None
    (the twin's breakdown, or one not from `book_agents`). They equal the columns only while nobody has
    written into the breakdown since (network charges, lost load, kinds' book hooks, further goods, the
    payment aftermath): the caller knows."""
    buf = breakdown.base
    n, f = breakdown.shape
    if (type(buf) is not np.ndarray or buf.ndim != 1 or buf.shape[0] != n * (f + 3) or f != len(BREAKDOWN_FIELDS)
            or not breakdown.flags.c_contiguous):
        return None
    return buf[n * f:].reshape(3, n)


book_agents = register("book_agents", book_agents_numpy, _book_compiled if _book_nb is not None else None)


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



@jit
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
    if all_active:   # only slots with a draw under the larger rate have an event: list them first (no branches)
        hi_rate = close_rate if close_rate >= open_rate else open_rate
        low = 0
        for e in range(e_n):
            reopen[low] = e
            low += draw[e] < hi_rate
        for e in range(e_n):
            new_open[e] = is_open[e]
        for q in range(low):   # in slot order; reopen[k] is written at or before q, after it was read
            e = reopen[q]
            if is_open[e]:
                if draw[e] < close_rate:
                    bu = balance_u[e]
                    add_u[u[e]] += bu - half
                    add_v[v[e]] += capacity[e] - bu - half
                    n_closed += 1
                    new_open[e] = False
            elif draw[e] < open_rate:
                reopen[k] = e
                k += 1
    else:
        for e in range(e_n):
            if is_open[e]:
                a, b = u[e], v[e]
                if draw[e] < close_rate or not active[a] or not active[b]:
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


def _close_compiled(u, v, capacity, balance_u, is_open, active, wallet, draw, close_rate, open_rate, fee):
    return _close_nb(u, v, capacity, balance_u, is_open, active, wallet, draw, close_rate, open_rate, fee,
                     bool(active.all()))


close_channels = register("close_channels", close_channels_numpy, _close_compiled if _close_nb is not None else None)


# ---- channel openings of the lifecycle ----------------------------------------------------------------

def open_channels_numpy(slots, nu, nv, cap, fund_u, fund_v, fee, u, v, capacity, balance_u, is_open, active, wallet,
                        slot_market, m):
    """Open the reopening candidates (slot `slots[j]` as the channel `nu[j]`-`nv[j]` of capacity
    `cap[j]`, funded `fund_u[j]` / `fund_v[j]`) whose funders are active and can each cover every
    channel they would fund this step plus half the on-chain fee per channel. Returns fresh
    (u, v, capacity, balance_u, wallet, n_opened [m], opened slots); `is_open` (a fresh array
    from `close_channels`) is set in place. Twin of `_open_nb`."""
    total = wallet.shape[0]
    u, v, capacity, balance_u = u.copy(), v.copy(), capacity.copy(), balance_u.copy()
    wallet = wallet.copy()
    n_opened = np.zeros(m, dtype=np.int64)
    opened = np.zeros(0, dtype=np.int64)
    if slots.shape[0]:
        need = (np.bincount(nu, weights=fund_u + fee / 2, minlength=total)
                + np.bincount(nv, weights=fund_v + fee / 2, minlength=total))
        solvent = wallet >= need
        ok = solvent[nu] & solvent[nv] & active[nu] & active[nv]
        if ok.any():
            s = slots[ok]
            u[s], v[s], capacity[s], balance_u[s] = nu[ok], nv[ok], cap[ok], fund_u[ok]
            wallet -= np.bincount(nu[ok], weights=fund_u[ok] + fee / 2, minlength=total)
            wallet -= np.bincount(nv[ok], weights=fund_v[ok] + fee / 2, minlength=total)
            n_opened = np.bincount(slot_market[s], minlength=m)
            is_open[s] = True
            opened = s
    return u, v, capacity, balance_u, wallet, n_opened, opened


def _fund_openings_py(slots, nu, nv, cap, fund_u, fund_v, half, wallet, active, u, v, capacity, balance_u,
                      is_open, n_opened, slot_market, opened):  # pragma: no cover - compiled
    """Open the k channels (slots[j]: nu[j] - nv[j], cap[j], funded fund_u[j] / fund_v[j] plus `half` the
    on-chain fee each), writing u, v, capacity, balance_u, is_open and the per-market counts in place;
    an opening is refused as a whole when either funder's `wallet` cannot cover all it would fund
    this step (summed per side apart and added after, as NumPy's two bincounts are), and the funds
    leave `wallet` (in place) after the pass. Lists the opened slots in `opened`; returns their count."""
    total = wallet.shape[0]
    k = slots.shape[0]
    need_u = _zeros(total)
    need_v = _zeros(total)
    for j in range(k):
        need_u[nu[j]] += fund_u[j] + half
        need_v[nv[j]] += fund_v[j] + half
    take_u = _zeros(total)
    take_v = _zeros(total)
    c = 0
    for j in range(k):
        a, b = nu[j], nv[j]
        if (wallet[a] >= need_u[a] + need_v[a] and wallet[b] >= need_u[b] + need_v[b] and active[a]
                and active[b]):
            s = slots[j]
            u[s] = a
            v[s] = b
            capacity[s] = cap[j]
            balance_u[s] = fund_u[j]
            take_u[a] += fund_u[j] + half
            take_v[b] += fund_v[j] + half
            n_opened[slot_market[s]] += 1
            is_open[s] = True
            opened[c] = s
            c += 1
    if c:
        for i in range(total):
            wallet[i] = (wallet[i] - take_u[i]) - take_v[i]
    return c


_fund_openings = jit(_fund_openings_py, inline=True)


@jit
def _open_nb(slots, nu, nv, cap, fund_u, fund_v, fee, u, v, capacity, balance_u, is_open, active, wallet,
             slot_market, m):  # pragma: no cover - compiled
    k = slots.shape[0]
    u, v, capacity, balance_u = u.copy(), v.copy(), capacity.copy(), balance_u.copy()
    new_wallet = wallet.copy()
    n_opened = np.zeros(m, dtype=np.int64)
    if k == 0:
        return u, v, capacity, balance_u, new_wallet, n_opened, np.zeros(0, dtype=np.int64)
    opened = np.empty(k, dtype=np.int64)
    c = _fund_openings(slots, nu, nv, cap, fund_u, fund_v, fee / 2, new_wallet, active, u, v, capacity, balance_u,
                       is_open, n_opened, slot_market, opened)
    return u, v, capacity, balance_u, new_wallet, n_opened, opened[:c].copy()


open_channels = register("open_channels", open_channels_numpy, _open_nb)


# ---- the whole lifecycle where reopenings pair agents uniformly: one compiled pass -----------------------

def lifecycle_uniform_numpy(u, v, capacity, balance_u, is_open, active, wallet, draw, cand, cand_stream, close_rate,
                            open_rate, fee, n, offset, slot_market, m, lo, hi, split, spend, sizing_steps, mean_cap,
                            parts):
    """`close_channels`, then each reopening slot's candidate from its two uniforms `cand[:, slot]`
    (an ordered pair of distinct agents of its market, `offset` [E] its first agent, and a capacity
    uniform in [lo, hi]; with `spend` [N] given, sized as `channels.size_capacity` sizes by spend),
    funded `split` by its first endpoint, then `open_channels`. Returns (u, v, capacity, balance_u,
    open, wallet, n_closed [m], n_opened [m], opened slots); `channels.apply_lifecycle` is its
    reference. `cand_stream` [m, 4] uint64, when not empty, stands for `cand` (then empty): the
    markets' reserved candidate rows (`streams.Rows.handles`: rows 1-2 of each market's block,
    E/m doubles a row), of which the compiled build computes only the reopening slots' doubles.
    `parts`: how many threads the compiled build splits the slots into (`parts_for`; the result
    is the same for any value). Twin of `_lifecycle_py`."""
    if cand_stream.shape[0]:
        cand = streams.draw_rows(cand_stream, 2, u.shape[0] // m)
    new_open, wallet, _, slots = close_channels_numpy(u, v, capacity, balance_u, is_open, active, wallet, draw,
                                                      close_rate, open_rate, fee)
    n_closed = np.bincount(slot_market[is_open & ~new_open], minlength=m)
    r = cand[:, slots]
    pairs = n * (n - 1)
    idx = np.minimum((r[0] * pairs).astype(np.int64), pairs - 1)
    nu = idx // (n - 1)
    nv = (nu + 1 + idx % (n - 1)) % n
    cap = lo + (hi - lo) * r[1]
    nu, nv = nu + offset[slots], nv + offset[slots]
    if spend.shape[0]:
        cap = np.maximum(cap / mean_cap * sizing_steps * np.maximum(spend[nu], spend[nv]), 1e-9)
    fu = cap * split
    u, v, capacity, balance_u, wallet, n_opened, opened = open_channels_numpy(
        slots, nu, nv, cap, fu, cap - fu, fee, u, v, capacity, balance_u, new_open, active, wallet, slot_market, m)
    return u, v, capacity, balance_u, new_open, wallet, n_closed, n_opened, opened


@jit
def _zeros(k):  # pragma: no cover - compiled
    """k float64 zeros written by a plain loop (in a multi-threaded build np.zeros starts threads)."""
    out = np.empty(k)
    for i in range(k):
        out[i] = 0.0
    return out


@jit
def _counts(k):  # pragma: no cover - compiled
    """k int64 zeros, as `_zeros`."""
    out = np.empty(k, dtype=np.int64)
    for i in range(k):
        out[i] = 0
    return out


def _reopen_candidates_py(slots, cand, cand_stream, e_n, m, n, offset, slot_market, lo, hi, split, spend,
                          sizing_steps, mean_cap):  # pragma: no cover - compiled
    """(nu, nv, cap, fund_u, fund_v) of the reopening `slots` (in slot order, market-major): an ordered
    pair of distinct agents of the slot's market and a capacity, from the slot's two uniforms (read
    from `cand`, or computed from the market's reserved stream `cand_stream`: two cursors per market,
    one per row, jumping from reopening slot to reopening slot); funded `split` by the first endpoint."""
    k = slots.shape[0]
    lazy = cand_stream.shape[0] > 0
    e_m = e_n // m
    bits = streams.table_bits_nb(e_n // (k if k > 0 else 1))   # the cursors' jumps: about E / k slots
    table = np.empty((0, 4), dtype=np.uint64)
    cur = -1
    h1, l1, h2, l2 = np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0)
    at1, at2 = -1, -1
    nu = np.empty(k, dtype=np.int64)
    nv = np.empty(k, dtype=np.int64)
    cap = np.empty(k)
    fu = np.empty(k)
    fv = np.empty(k)
    pairs = n * (n - 1)
    fpairs = float(pairs)
    n1 = n - 1
    inv_n1 = 1.0 / n1
    for j in range(k):
        s = slots[j]
        if lazy:
            i = slot_market[s]
            if i != cur:
                table = streams.handle_table(cand_stream, i, bits)
                h1, l1 = cand_stream[i, 0], cand_stream[i, 1]
                h2, l2 = h1, l1
                at1, at2, cur = -1, -1, i
            col = s - i * e_m
            h1, l1 = streams.jump(h1, l1, table, bits, col - at1)
            h2, l2 = streams.jump(h2, l2, table, bits, e_m + col - at2)
            at1, at2 = col, e_m + col
            r0, r1 = streams.double_of(h1, l1), streams.double_of(h2, l2)
        else:
            r0, r1 = cand[0, s], cand[1, s]
        idx = int(r0 * fpairs)
        if idx > pairs - 1:
            idx = pairs - 1
        # idx // (n - 1) and its remainder through the reciprocal, corrected to the exact ones
        # (idx < 2^53: the product is within one of the quotient; it falls one short for some
        # N, e.g. 50, and can exceed it only from N ~ 2^26 on); no integer divisions
        a = int(idx * inv_n1)
        rem = idx - a * n1
        if rem < 0:
            a -= 1
            rem += n1
        elif rem >= n1:
            a += 1
            rem -= n1
        b = a + 1 + rem
        if b >= n:
            b -= n
        nu[j] = a + offset[s]
        nv[j] = b + offset[s]
        c_ = lo + (hi - lo) * r1
        if spend.shape[0]:
            sa, sb = spend[nu[j]], spend[nv[j]]
            c_ = max(c_ / mean_cap * sizing_steps * (sa if sa >= sb else sb), 1e-9)
        cap[j] = c_
        fu[j] = c_ * split
        fv[j] = c_ - fu[j]
    return nu, nv, cap, fu, fv


_reopen_candidates = jit(_reopen_candidates_py, inline=True)


def _lifecycle_py(u, v, capacity, balance_u, is_open, active, wallet, draw, cand, cand_stream, close_rate, open_rate,
                  fee, n, offset, slot_market, m, lo, hi, split, spend, sizing_steps, mean_cap, parts):  # pragma: no cover
    # One pass over the slots copies the channel arrays (the new state's), decides closes and lists
    # the closing and reopening slots; with parts > 1 (the multi-threaded build) the slots are split
    # into `parts` ranges, each listing its own slots in its own range of the scratch lists. Then,
    # one thread, in slot order (as `_close_nb` and `_open_nb`): closed channels settle to the
    # wallets, reopening candidates are drawn and funded. No whole-array expressions: the
    # multi-threaded build would start its threads for each.
    e_n = u.shape[0]
    total = wallet.shape[0]
    all_active = True
    for i in range(total):
        if not active[i]:
            all_active = False
            break
    if parts <= 1:   # one thread: the copies at memcpy speed
        new_u, new_v, new_cap, new_bal = u.copy(), v.copy(), capacity.copy(), balance_u.copy()
    else:
        new_u, new_v, new_cap, new_bal = np.empty_like(u), np.empty_like(v), np.empty(e_n), np.empty(e_n)
    new_open = np.empty(e_n, dtype=np.bool_)
    # part p lists its closing slots in closing[first_p + p ...] and its reopening ones in reopening[...]
    # (branch-free: every slot is written at the list's end, which moves on only when the slot counts;
    # an open slot's state is a coin flip, and mispredicted branches cost more than the stores)
    closing = np.empty(e_n + parts, dtype=np.int64)
    reopening = np.empty(e_n + parts, dtype=np.int64)
    counts = np.empty((parts, 2), dtype=np.int64)  # per part: closing, reopening
    hi_rate = close_rate if close_rate >= open_rate else open_rate
    for p in prange(parts):
        first, stop = p * e_n // parts, (p + 1) * e_n // parts
        if parts > 1:
            new_u[first:stop] = u[first:stop]
            new_v[first:stop] = v[first:stop]
            new_cap[first:stop] = capacity[first:stop]
            new_bal[first:stop] = balance_u[first:stop]
        c, r = first + p, first + p
        if all_active:
            # every event needs a draw under the larger rate (a few slots): list those first, in
            # `reopening`'s range, then sort them into closes and reopenings in place (a slot is
            # written at or before where it was read); 83 -> 42 us at 50,000 slots
            low = first + p
            for e in range(first, stop):
                reopening[low] = e
                low += draw[e] < hi_rate
            for e in range(first, stop):
                new_open[e] = is_open[e]
            for q in range(first + p, low):
                e = reopening[q]
                o = is_open[e]
                d = draw[e]
                c, r = _slot_event(e, o, o & (d < close_rate), d < open_rate, new_open, closing, c, reopening, r)
        else:
            for e in range(first, stop):
                o = is_open[e]
                d = draw[e]
                closes = o & ((d < close_rate) | (not active[u[e]]) | (not active[v[e]]))
                c, r = _slot_event(e, o, closes, d < open_rate, new_open, closing, c, reopening, r)
        counts[p, 0] = c - first - p
        counts[p, 1] = r - first - p
    # closes: both sides to the wallets less half the fee each (the two sides kept apart, as
    # NumPy's two bincounts are), in slot order
    half = fee / 2
    add_u = _zeros(total)
    add_v = _zeros(total)
    n_closed = _counts(m)
    k = 0
    for p in range(parts):
        first = p * e_n // parts + p
        for j in range(counts[p, 0]):
            e = closing[first + j]
            bu = balance_u[e]
            add_u[u[e]] += bu - half
            add_v[v[e]] += capacity[e] - bu - half
            n_closed[slot_market[e]] += 1
        k += counts[p, 1]
    closed_wallet = np.empty(total)
    for i in range(total):
        closed_wallet[i] = (wallet[i] + add_u[i]) + add_v[i]
    slots = np.empty(k, dtype=np.int64)
    j = 0
    for p in range(parts):
        first = p * e_n // parts + p
        for q in range(counts[p, 1]):
            slots[j] = reopening[first + q]
            j += 1
    nu, nv, cap, fu, fv = _reopen_candidates(slots, cand, cand_stream, e_n, m, n, offset, slot_market, lo, hi, split,
                                             spend, sizing_steps, mean_cap)
    # openings (as _open_nb): refused as a whole when a funder cannot cover all it would fund
    n_opened = _counts(m)
    opened = np.empty(k, dtype=np.int64)
    c = 0
    if k:
        c = _fund_openings(slots, nu, nv, cap, fu, fv, half, closed_wallet, active, new_u, new_v, new_cap, new_bal,
                           new_open, n_opened, slot_market, opened)
    out = np.empty(c, dtype=np.int64)
    for j in range(c):
        out[j] = opened[j]
    return new_u, new_v, new_cap, new_bal, new_open, closed_wallet, n_closed, n_opened, out


lifecycle_uniform = register("lifecycle_uniform", lifecycle_uniform_numpy, jit(_lifecycle_py),
                             parallel=jit(_lifecycle_py, parallel=True), split="u", min_items=PARALLEL_SLOTS)


# ---- channel utilization, this step's flow column and per-agent liquidity after the lifecycle ----------

def channel_aftermath_numpy(util, flow, old_capacity, opened, decay, n, u, v, capacity, balance_u, is_open, parts):
    """(utilization EMA with new channels reset [E], this step's flow history column (`flow` as
    float32, reopened slots 0: a fresh [E] array), and `liquidity` of the new channel state).
    `parts`: how many threads the compiled build splits the slots into (`parts_for`; the result
    is the same for any value)."""
    new_util = decay * util + (1 - decay) * np.abs(flow) / old_capacity
    new_util[opened] = 0.0
    column = flow.astype(np.float32)
    column[opened] = 0.0   # a reopened slot is a new channel
    return (new_util, column, *liquidity_numpy(n, u, v, capacity, balance_u, is_open))


def _aftermath_py(util, flow, old_capacity, opened, decay, n, u, v, capacity, balance_u, is_open,
                  parts):  # pragma: no cover - compiled
    # utilization and the flow column per slot, then liquidity per agent. With parts > 1 (the
    # multi-threaded build) the per-slot work is split into `parts` slot ranges; the liquidity
    # scatter stays one pass in slot order (every agent's sums in slot order, bit for bit the
    # one-part result). No whole-array expressions: the multi-threaded build would start its
    # threads for each.
    e_n = u.shape[0]
    new_util = np.empty(e_n)
    column = np.empty(e_n, dtype=np.float32)
    acc = np.empty((n, 4))   # the three sums of a node side by side, as _liquidity_nb
    for i in range(n):
        for k in range(4):
            acc[i, k] = 0.0
    if parts <= 1:   # one pass over the slots (measured: faster than two loops)
        for e in range(e_n):
            new_util[e] = decay * util[e] + (1 - decay) * abs(flow[e]) / old_capacity[e]
            column[e] = np.float32(flow[e])
            _liquidity_add(acc, u[e], v[e], capacity[e], balance_u[e], is_open[e])
    else:
        for p in prange(parts):
            for e in range(p * e_n // parts, (p + 1) * e_n // parts):
                new_util[e] = decay * util[e] + (1 - decay) * abs(flow[e]) / old_capacity[e]
                column[e] = np.float32(flow[e])
        for e in range(e_n):
            _liquidity_add(acc, u[e], v[e], capacity[e], balance_u[e], is_open[e])
    degree, outbound, inbound = _fresh_and_liquidity(new_util, column, opened, opened.shape[0], acc)
    return new_util, column, degree, outbound, inbound


channel_aftermath = register("channel_aftermath", channel_aftermath_numpy, jit(_aftermath_py),
                             parallel=jit(_aftermath_py, parallel=True), split="u", min_items=PARALLEL_SLOTS)


# ---- channel balances after the payments ----------------------------------------------------------------

def balances_after_numpy(balance_u, flow_in_u, capacity):
    """(channel balances after the step's payments [E], flow u -> v [E]) from the flow into u's
    sides: clipped to [0, capacity] (float round-off only)."""
    new_balance_u = balance_u + flow_in_u
    np.clip(new_balance_u, 0.0, capacity, out=new_balance_u)
    return new_balance_u, -flow_in_u


def _balance_after_py(b, f, cap):  # pragma: no cover - compiled
    """One slot of `balances_after`: b + f clipped as np.clip clips (a NaN stays NaN, a NaN bound wins)."""
    x = b + f
    y = x if (x != x or x > 0.0) else 0.0
    return y if (y != y or y < cap) else cap


_balance_after = jit(_balance_after_py, inline=True)


@jit
def _balances_after_nb(balance_u, flow_in_u, capacity):  # pragma: no cover - compiled
    """One pass for NumPy's three."""
    e_n = balance_u.shape[0]
    new_balance_u = np.empty(e_n)
    flow = np.empty(e_n)
    for c in range(e_n):
        f = flow_in_u[c]
        new_balance_u[c] = _balance_after(balance_u[c], f, capacity[c])
        flow[c] = -f
    return new_balance_u, flow


balances_after = register("balances_after", balances_after_numpy, _balances_after_nb)


# ---- everything the channels do after the payments, in one compiled pass -----------------------------------

_LIVE_ROWS = 3   # the lifecycle's block per market: row 0 (every slot's event draw), rows 1-2 (candidates)


def channels_after_payments_numpy(balance_u, flow_in_u, u, v, capacity, is_open, active, wallet, states, close_rate,
                                  open_rate, fee, n, offset, slot_market, m, lo, hi, split, spend, sizing_steps,
                                  mean_cap, fees_on, fee_base, fee_rate, base_lo, base_hi, rate_lo, rate_hi, util,
                                  decay, in_place=False):
    """`balances_after`, the uniform lifecycle, the reopened channels' fee policies and
    `channel_aftermath`, in the step's order, with the draws taken from the markets' live generator
    states `states` [m, 4] (`streams.live_states`: state lo, hi, increment lo, hi; advanced in place):
    each market's lifecycle block of 3 x E/m uniforms (`lifecycle_uniform`'s draw and candidates),
    then, with `fees_on`, a uniform base in [base_lo, base_hi) for each channel it opened and then a
    rate in [rate_lo, rate_hi) (`payments.fees.draw_fees`; policies copied first). Returns (balances
    after the payments, flow u -> v, u, v, capacity, balance_u, open, wallet, n_closed [m], n_opened
    [m], opened slots, fee_base, fee_rate, utilization, flow column, degree, outbound, inbound).
    `in_place`: the new u, v, capacity, balance_u, open, fee_base, fee_rate and utilization are
    written into those arguments and returned as themselves (the caller owns them alone:
    `MarketCore.step` when nothing else holds the state), instead of into fresh arrays. Composed of
    the twins; `_after_payments_py` is its one-pass compiled build."""
    paid, flow = balances_after_numpy(balance_u, flow_in_u, capacity)
    e_m = u.shape[0] // m
    gens = [streams.generator_of(states[i]) for i in range(m)]
    block = np.stack([g.random((_LIVE_ROWS, e_m)) for g in gens]) if m else np.zeros((0, _LIVE_ROWS, e_m))
    draw = block[:, 0].reshape(-1)
    cand = block[:, 1:].transpose(1, 0, 2).reshape(_LIVE_ROWS - 1, -1)
    nu, nv, ncap, nbal, nopen, nwallet, n_closed, n_opened, opened = lifecycle_uniform_numpy(
        u, v, capacity, paid, is_open, active, wallet, draw, cand, np.zeros((0, 4), dtype=np.uint64), close_rate,
        open_rate, fee, n, offset, slot_market, m, lo, hi, split, spend, sizing_steps, mean_cap, 1)
    old_base, old_rate = fee_base, fee_rate
    if fees_on and opened.shape[0]:
        fee_base, fee_rate = fee_base.copy(), fee_rate.copy()
        om = slot_market[opened]
        for i in np.unique(om):
            s = opened[om == i]
            fee_base[s] = gens[i].uniform(base_lo, base_hi, s.shape[0])
            fee_rate[s] = gens[i].uniform(rate_lo, rate_hi, s.shape[0])
    for i, g in enumerate(gens):
        streams.put_generator(states[i], g)
    after = channel_aftermath_numpy(util, flow, capacity, opened, decay, wallet.shape[0], nu, nv, ncap, nbal, nopen, 1)
    if in_place:
        for old, now in ((u, nu), (v, nv), (capacity, ncap), (balance_u, nbal), (is_open, nopen),
                         (old_base, fee_base), (old_rate, fee_rate), (util, after[0])):
            old[...] = now
        nu, nv, ncap, nbal, nopen, fee_base, fee_rate = u, v, capacity, balance_u, is_open, old_base, old_rate
        after = (util, *after[1:])
    return (paid, flow, nu, nv, ncap, nbal, nopen, nwallet, n_closed, n_opened, opened, fee_base, fee_rate, *after)


def _after_payments_py(balance_u, flow_in_u, u, v, capacity, is_open, active, wallet, states, close_rate, open_rate,
                       fee, n, offset, slot_market, m, lo, hi, split, spend, sizing_steps, mean_cap, fees_on,
                       fee_base, fee_rate, base_lo, base_hi, rate_lo, rate_hi, util, decay,
                       in_place=False):  # pragma: no cover
    # Per slot: its balance after the payments, its flow, utilization and flow column, its lifecycle
    # draw (from its market's generator) and, when the draw can make an event, the slot listed. Then
    # the listed slots' closes and reopenings, the closes settled to the wallets, the candidates
    # (from each market's next two rows, only at the reopening slots), the openings, their fee
    # draws, and the liquidity pass.
    e_n = u.shape[0]
    total = wallet.shape[0]
    e_m = e_n // m
    all_active = True
    for i in range(total):
        if not active[i]:
            all_active = False
            break
    every = not all_active   # agents left: every slot is listed (an endpoint's exit closes its channel)
    # the new channel arrays: fresh (copies of the endpoints, capacities and open flags, which the
    # lifecycle writes at its slots), or with `in_place` the arguments themselves: each slot's balance,
    # open flag and utilization are written where its old value is read, the endpoints and capacities
    # by the openings after every read of the old ones (the utilization then reads a reopened slot's
    # new capacity, and that slot's utilization is reset)
    if in_place:
        new_u, new_v, new_cap, new_bal, new_util, new_open = u, v, capacity, balance_u, util, is_open
    else:
        new_u, new_v, new_cap = u.copy(), v.copy(), capacity.copy()
        new_bal = np.empty(e_n)
        new_util = np.empty(e_n)
        new_open = np.empty(e_n, dtype=np.bool_)
        for e in range(e_n):
            new_open[e] = is_open[e]
    paid = np.empty(e_n)
    flow = np.empty(e_n)
    column = np.empty(e_n, dtype=np.float32)
    draw = np.empty(e_n)
    listed = np.empty(e_n, dtype=np.int64)
    cand_stream = np.empty((m, 4), dtype=np.uint64)
    # simple loops, each vectorized or at memcpy speed (one loop doing all of it is measured slower)
    for e in range(e_n):
        f = flow_in_u[e]
        b = _balance_after(balance_u[e], f, capacity[e])
        paid[e] = b
        new_bal[e] = b
        flow[e] = -f
    for i in range(m):   # each market's lifecycle block: row 0 drawn, rows 1-2 reserved
        sh, sl, ih, il = states[i, 1], states[i, 0], states[i, 3], states[i, 2]
        sh, sl = streams.fill_doubles(sh, sl, ih, il, draw[i * e_m:(i + 1) * e_m])
        cand_stream[i, 0], cand_stream[i, 1], cand_stream[i, 2], cand_stream[i, 3] = sh, sl, ih, il
        sh, sl = streams.jump(sh, sl, streams.jump_table(ih, il, 0), 0, (_LIVE_ROWS - 1) * e_m)
        states[i, 1], states[i, 0] = sh, sl
    hi_rate = close_rate if close_rate >= open_rate else open_rate
    low = 0
    for e in range(e_n):   # the slots whose draw can make an event (agents left: every slot)
        listed[low] = e
        low += (draw[e] < hi_rate) | every
    # events, in slot order: closes listed apart, reopenings in place (a slot is written at or before
    # where it was read)
    closing = np.empty(low, dtype=np.int64)
    nc = 0
    k = 0
    for q in range(low):
        e = listed[q]
        o = is_open[e]
        d = draw[e]
        if every:
            closes = o & ((d < close_rate) | (not active[u[e]]) | (not active[v[e]]))
        else:
            closes = o & (d < close_rate)
        nc, k = _slot_event(e, o, closes, d < open_rate, new_open, closing, nc, listed, k)
    half = fee / 2
    add_u = _zeros(total)
    add_v = _zeros(total)
    n_closed = _counts(m)
    for j in range(nc):
        e = closing[j]
        bu = paid[e]
        add_u[u[e]] += bu - half
        add_v[v[e]] += capacity[e] - bu - half
        n_closed[slot_market[e]] += 1
    closed_wallet = np.empty(total)
    for i in range(total):
        closed_wallet[i] = (wallet[i] + add_u[i]) + add_v[i]
    slots = listed[:k]
    nu, nv, cap, fu, fv = _reopen_candidates(slots, np.empty((0, 0)), cand_stream, e_n, m, n, offset, slot_market, lo,
                                             hi, split, spend, sizing_steps, mean_cap)
    n_opened = _counts(m)
    opened = np.empty(k, dtype=np.int64)
    c_open = 0
    if k:
        c_open = _fund_openings(slots, nu, nv, cap, fu, fv, half, closed_wallet, active, new_u, new_v, new_cap,
                                new_bal, new_open, n_opened, slot_market, opened)
    out = np.empty(c_open, dtype=np.int64)
    for j in range(c_open):
        out[j] = opened[j]
    # reopened channels' fee policies: per market (slots market-major), bases then rates
    new_base, new_rate = fee_base, fee_rate
    if fees_on and c_open > 0:
        if not in_place:
            new_base, new_rate = fee_base.copy(), fee_rate.copy()
        base_span, rate_span = base_hi - base_lo, rate_hi - rate_lo
        j = 0
        while j < c_open:
            i = slot_market[out[j]]
            stop = j
            while stop < c_open and slot_market[out[stop]] == i:
                stop += 1
            sh, sl, ih, il = states[i, 1], states[i, 0], states[i, 3], states[i, 2]
            for q in range(j, stop):
                sh, sl = streams.step(sh, sl, ih, il)
                new_base[out[q]] = base_lo + base_span * streams.double_of(sh, sl)
            for q in range(j, stop):
                sh, sl = streams.step(sh, sl, ih, il)
                new_rate[out[q]] = rate_lo + rate_span * streams.double_of(sh, sl)
            states[i, 1], states[i, 0] = sh, sl
            j = stop
    # the aftermath: utilization and the flow column (new channels reset), liquidity of the new channel
    # state (the divisions in the scatter's loop: they overlap its cache misses, measured faster)
    acc = np.empty((total, 4))
    for i in range(total):
        for q in range(4):
            acc[i, q] = 0.0
    keep = 1 - decay
    for e in range(e_n):
        f = flow_in_u[e]
        new_util[e] = decay * util[e] + keep * abs(f) / capacity[e]
        column[e] = np.float32(-f)
        _liquidity_add(acc, new_u[e], new_v[e], new_cap[e], new_bal[e], new_open[e])
    degree, outbound, inbound = _fresh_and_liquidity(new_util, column, out, c_open, acc)
    return (paid, flow, new_u, new_v, new_cap, new_bal, new_open, closed_wallet, n_closed, n_opened, out, new_base,
            new_rate, new_util, column, degree, outbound, inbound)


channels_after_payments = register("channels_after_payments", channels_after_payments_numpy,
                                   jit(_after_payments_py))


# ---- the observation: every per-agent, per-good and per-market field in one pass ----------------------

def market_fields_numpy(ref_price, clearing_price, price_history, history_len, supply, demand, volume, retail,
                        good_low, good_high):
    """[5, M*G] per (market, good): reference and clearing price / retail, the last change of the
    reference price / retail, imbalance (D - S) / (D + S), traded share V / min(S, D); clipped to
    (`good_low`, `good_high`) [5] as np.clip clips."""
    prev = np.where((history_len >= 2)[:, None], price_history[:, -2], price_history[:, -1])
    S, D, V = supply, demand, volume
    with np.errstate(divide="ignore", invalid="ignore"):
        traded = np.where(np.minimum(S, D) > 0, V / np.minimum(S, D), 0.0)
        imb = np.where(S + D > 0, (D - S) / (S + D), 0.0)
    vals = np.stack([ref_price / retail, clearing_price / retail, (ref_price - prev) / retail, imb, traded])
    return np.clip(vals.reshape(5, -1), good_low[:, None], good_high[:, None])


def scalar_fields_numpy(time_vals, t, shock_remaining, episode_steps, scalar_low, scalar_high):
    """[5, M] per market: the time-of-day level / retail and the hour's sine and cosine
    (`time_vals` [3, M] or [3, 1] when the clocks agree), the episode's progress and the active
    shock's remaining share; clipped to (`scalar_low`, `scalar_high`) [5] as np.minimum(np.maximum())."""
    m = t.shape[0]
    vals = np.stack([*np.broadcast_to(time_vals, (3, m)), np.minimum(t / episode_steps, 1.0),
                     np.minimum(shock_remaining / episode_steps, 1.0)])
    return np.minimum(np.maximum(vals, scalar_low[:, None]), scalar_high[:, None])


def observation_rows_numpy(buf, static, static_rows, rows, sellable, needed, soc, capacity, storage, last_sold,
                           last_bought, last_profit, inv_scale, degree, outbound, inbound, retail, liq, mean_degree,
                           low, high, market, good_key, good_rows, scalar_rows, ref_price, clearing_price, price_history,
                           history_len, supply, demand, volume, time_vals, t, shock_remaining, shock_kind, shock_row0,
                           n_shock_rows, episode_steps, active, zero_inactive):
    """Fill the observation buffer `buf` [O, N] float32 (in place, every row written): the rows
    `static_rows` of the episode's `static` [O, N] (kinds, profile, reserve, limit, ...); the
    nine per-agent fields (energies times the agent's `inv_scale`, 1 / max(scale, 1e-12), computed once
    per episode by the caller), each computed in float64,
    clipped to its bounds and stored into its row `rows[k]`; the market's per-good fields
    (`market_fields_numpy`) of the good `good_key` [N] (market * G + good) an agent observes into
    `good_rows`; the per-market fields (`scalar_fields_numpy`) into `scalar_rows`; a 1 in the
    row `shock_row0 + kind - 1` of its market's active shock (the `n_shock_rows` shock rows 0
    otherwise); and, with `zero_inactive`, zero columns of agents that left. Twin of
    `_observation_rows_nb`."""
    buf[static_rows] = static[static_rows]
    buf[shock_row0:shock_row0 + n_shock_rows] = 0.0
    vals = (
        sellable * inv_scale,
        needed * inv_scale,
        np.where(storage, soc / np.maximum(capacity, 1e-12), 0.0),
        last_sold * inv_scale,
        last_bought * inv_scale,
        last_profit * inv_scale / retail,
        degree / mean_degree,
        outbound / liq,
        inbound / liq,
    )
    for j, val in zip(rows, vals):
        np.clip(val, low[j], high[j], out=buf[j], casting="unsafe")
    good_vals = market_fields_numpy(ref_price, clearing_price, price_history, history_len, supply, demand, volume,
                                    retail, low[good_rows], high[good_rows])
    for k in range(good_rows.shape[0]):   # assigned, not take(out=): buf's rows may hold uninitialized memory
        buf[good_rows[k]] = good_vals[k][good_key]
    scalar_vals = scalar_fields_numpy(time_vals, t, shock_remaining, episode_steps, low[scalar_rows],
                                      high[scalar_rows])
    for k in range(scalar_rows.shape[0]):
        buf[scalar_rows[k]] = scalar_vals[k][market]
    row = np.where(shock_kind > 0, shock_row0 + shock_kind - 1, -1)[market]
    who = np.flatnonzero(row >= 0)
    buf[row[who], who] = 1.0
    if zero_inactive:
        buf[:, ~active] = 0.0


def _fill_or_gather_py(out, vals, key, n):  # pragma: no cover
    """out[i] = vals[key[i]] for the n agents; a single value (one market, one good) is a fill."""
    if vals.shape[0] == 1:
        c = np.float32(vals[0])
        for i in range(n):
            out[i] = c
    else:
        for i in range(n):
            out[i] = vals[np.uint64(key[i])]


_fill_or_gather = jit(_fill_or_gather_py, inline=True)


@jit
def _observation_rows_nb(buf, static, static_rows, rows, sellable, needed, soc, capacity, storage, last_sold,
                         last_bought, last_profit, inv_scale, degree, outbound, inbound, retail, liq, mean_degree, low,
                         high, market, good_key, good_rows, scalar_rows, ref_price, clearing_price, price_history,
                         history_len, supply, demand, volume, time_vals, t, shock_remaining, shock_kind, shock_row0,
                         n_shock_rows, episode_steps, active, zero_inactive):  # pragma: no cover - compiled
    # field by field, each a plain loop over the agents (vectorized; rows of buf are contiguous)
    n = sellable.shape[0]
    for j in static_rows:
        buf[j, :] = static[j, :]
    for j in range(shock_row0, shock_row0 + n_shock_rows):
        buf[j, :] = 0.0
    inv = inv_scale
    # each field computed and clipped straight into its row (no scratch row between)
    for k in range(9):
        j = rows[k]
        out = buf[j]
        lo, hi = float(low[j]), float(high[j])
        if k == 0:
            for i in range(n):
                out[i] = min(max(sellable[i] * inv[i], lo), hi)
        elif k == 1:
            for i in range(n):
                out[i] = min(max(needed[i] * inv[i], lo), hi)
        elif k == 2:
            for i in range(n):
                out[i] = min(max(soc[i] / max(capacity[i], 1e-12) if storage[i] else 0.0, lo), hi)
        elif k == 3:
            for i in range(n):
                out[i] = min(max(last_sold[i] * inv[i], lo), hi)
        elif k == 4:
            for i in range(n):
                out[i] = min(max(last_bought[i] * inv[i], lo), hi)
        elif k == 5:
            for i in range(n):
                out[i] = min(max(last_profit[i] * inv[i] / retail, lo), hi)
        elif k == 6:
            for i in range(n):
                out[i] = min(max(degree[i] / mean_degree, lo), hi)
        elif k == 7:
            for i in range(n):
                out[i] = min(max(outbound[i] / liq, lo), hi)
        else:
            for i in range(n):
                out[i] = min(max(inbound[i] / liq, lo), hi)
    # per (market, good), as market_fields_numpy (np.clip keeps a value equal to a bound)
    m_n, g_n = ref_price.shape
    h = price_history.shape[1]
    good_vals = np.empty((5, m_n * g_n))
    for m in range(m_n):
        for g in range(g_n):
            prev = price_history[m, h - 2, g] if history_len[m] >= 2 else price_history[m, h - 1, g]
            s_, d_, v_ = supply[m, g], demand[m, g], volume[m, g]
            least = s_ if s_ < d_ else d_
            tot = s_ + d_
            x = (ref_price[m, g] / retail, clearing_price[m, g] / retail, (ref_price[m, g] - prev) / retail,
                 (d_ - s_) / tot if tot > 0 else 0.0, v_ / least if least > 0 else 0.0)
            for k in range(5):
                lo, hi = float(low[good_rows[k]]), float(high[good_rows[k]])
                y = lo if lo > x[k] else x[k]
                good_vals[k, m * g_n + g] = hi if y > hi else y
    # per market, as scalar_fields_numpy (np.maximum / np.minimum take the bound on a tie)
    scalar_vals = np.empty((5, m_n))
    one_clock = time_vals.shape[1] == 1
    for m in range(m_n):
        c = 0 if one_clock else m
        p = t[m] / episode_steps
        q = shock_remaining[m] / episode_steps
        x = (time_vals[0, c], time_vals[1, c], time_vals[2, c], p if p < 1.0 else 1.0, q if q < 1.0 else 1.0)
        for k in range(5):
            lo, hi = float(low[scalar_rows[k]]), float(high[scalar_rows[k]])
            y = x[k] if x[k] > lo else lo
            scalar_vals[k, m] = y if y < hi else hi
    # gathers with unsigned indices (numba then drops its negative-index wraparound); one market
    # (one good) has one value per row: a fill, no gather
    for k in range(good_rows.shape[0]):
        _fill_or_gather(buf[good_rows[k]], good_vals[k], good_key, n)
    for k in range(scalar_rows.shape[0]):
        _fill_or_gather(buf[scalar_rows[k]], scalar_vals[k], market, n)
    if m_n == 1:
        if shock_kind[0] > 0:
            out = buf[shock_row0 + shock_kind[0] - 1]
            for i in range(n):
                out[i] = 1.0
    else:
        for i in range(n):
            kind = shock_kind[np.uint64(market[i])]
            if kind > 0:
                buf[shock_row0 + kind - 1, i] = 1.0
    if zero_inactive:
        for i in range(n):
            if not active[i]:
                buf[:, i] = 0.0


observation_rows = register("observation_rows", observation_rows_numpy, _observation_rows_nb)


# ---- actions: finite, clipped to [-1, 1] ----------------------------------------------------------

def clip_actions_numpy(actions, share):
    """(actions clipped to [-1, 1] as a fresh float64 array, whether every entry is finite): the
    action check's one pass (`actions.check_actions` names the first bad entry when not). With
    `share`, a C-contiguous float64 `actions` whose every entry is already in [-1, 1] is returned
    itself (clipping would copy it unchanged). Twin of `_clip_actions_compiled`."""
    if share and actions.flags.c_contiguous and ((actions >= -1.0) & (actions <= 1.0)).all():
        return actions, True
    return np.clip(actions, -1.0, 1.0), bool(np.isfinite(actions).all())


@jit
def _in_range_nb(flat):  # pragma: no cover - compiled
    # branch-free: whether every entry is in [-1, 1] (NaN is not), or-ed as integers so the loop vectorizes
    bad = 0
    for i in range(flat.shape[0]):
        x = flat[i]
        bad |= (x < -1.0) | (x > 1.0) | (x != x)
    return bad == 0


@jit
def _clip_actions_nb(actions):  # pragma: no cover - compiled
    # branch-free over the flat entries (a C-contiguous copy when not): finite iff |x| <= the
    # largest double (false for inf and NaN), and-ed as integers so the loop vectorizes
    n, k = actions.shape
    flat = np.ascontiguousarray(actions).reshape(n * k)
    out = np.empty(n * k)
    bad = 0
    for i in range(n * k):
        x = flat[i]
        bad |= not (abs(x) <= 1.7976931348623157e308)
        out[i] = -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)
    return out.reshape(n, k), bad == 0


def _clip_actions_compiled(actions, share):
    # in range (the usual case of squashed policies and uniform draws): one read-only pass, no copy
    if share and actions.flags.c_contiguous and _in_range_nb(actions.reshape(-1)):
        return actions, True
    return _clip_actions_nb(actions)


clip_actions = register("clip_actions", clip_actions_numpy,
                        _clip_actions_compiled if _clip_actions_nb is not None else None)


# ---- offers from actions, and what each market offers and wants ---------------------------------------

def decode_offers_numpy(actions, ref_price, market, sells_good, buys_good, reserve, limit, storage, sellable,
                        needed, active, span, retail, min_quantity):
    """(ask, bid, sell_qty, buy_qty, concession [N], supply, demand [M*G]) of validated actions
    [N, 4] (`offers.decode_totals`; the action columns: `offers` module). Twin of `_decode_nb`."""
    n_goods = ref_price.shape[1]
    sg, bg = np.maximum(sells_good, 0), np.maximum(buys_good, 0)
    ask = np.clip(ref_price[market, sg] + actions[:, 0] * span, reserve, None)
    ask = np.maximum(np.minimum(ask, retail), reserve)
    bid = np.clip(ref_price[market, bg] + actions[:, 1] * span, 0.0, limit)
    q = actions[:, 2]
    share = 0.5 * (q + 1.0)
    sell_qty = np.where(storage, np.maximum(q, 0.0), share) * sellable
    buy_qty = np.where(storage, np.maximum(-q, 0.0), share) * needed
    sell_qty = np.where(active & (sells_good >= 0) & (sell_qty >= min_quantity), sell_qty, 0.0)
    buy_qty = np.where(active & (buys_good >= 0) & (buy_qty >= min_quantity), buy_qty, 0.0)
    concession = 0.5 * (actions[:, 3] + 1.0)
    mg = ref_price.shape[0] * n_goods
    supply = np.bincount(market * n_goods + sg, weights=np.where(sells_good >= 0, np.where(storage, sell_qty, sellable),
                                                                  0.0), minlength=mg).astype(np.float64)
    demand = np.bincount(market * n_goods + bg, weights=np.where(buys_good >= 0, np.where(storage, buy_qty, needed),
                                                                  0.0), minlength=mg).astype(np.float64)
    return ask, bid, sell_qty, buy_qty, concession, supply, demand


@jit
def _decode_nb(actions, ref_price, market, sells_good, buys_good, reserve, limit, storage, sellable, needed, active,
               span, retail, min_quantity):  # pragma: no cover - compiled
    n = actions.shape[0]
    n_goods = ref_price.shape[1]
    ask = np.empty(n)
    bid = np.empty(n)
    sell_qty = np.empty(n)
    buy_qty = np.empty(n)
    concession = np.empty(n)
    supply = np.zeros(ref_price.shape[0] * n_goods)
    demand = np.zeros(ref_price.shape[0] * n_goods)
    # branch-free (selects, not jumps: an agent's kind and offer are coin flips to the branch
    # predictor), unsigned indices (numba then drops its negative-index wraparound)
    for i in range(n):
        m = np.uint64(market[i])
        sells, buys = sells_good[i] >= 0, buys_good[i] >= 0
        sg = np.uint64(sells_good[i] if sells else 0)
        bg = np.uint64(buys_good[i] if buys else 0)
        x = ref_price[m, sg] + actions[i, 0] * span
        x = x if x >= reserve[i] else reserve[i]
        x = x if x <= retail else retail
        ask[i] = x if x >= reserve[i] else reserve[i]
        y = ref_price[m, bg] + actions[i, 1] * span
        y = y if y > 0.0 else 0.0
        bid[i] = y if y < limit[i] else limit[i]
        q = actions[i, 2]
        share = 0.5 * (q + 1.0)
        st = storage[i]
        sell_share = (q if q >= 0.0 else 0.0) if st else share
        buy_share = (-q if -q >= 0.0 else 0.0) if st else share
        sq = sell_share * sellable[i]
        bq = buy_share * needed[i]
        on = active[i]
        sq = sq if (on & sells & (sq >= min_quantity)) else 0.0
        bq = bq if (on & buys & (bq >= min_quantity)) else 0.0
        sell_qty[i] = sq
        buy_qty[i] = bq
        concession[i] = 0.5 * (actions[i, 3] + 1.0)
        key = m * np.uint64(n_goods)
        supply[key + sg] += (sq if st else sellable[i]) if sells else 0.0
        demand[key + bg] += (bq if st else needed[i]) if buys else 0.0
    return ask, bid, sell_qty, buy_qty, concession, supply, demand


decode_offers = register("decode_offers", decode_offers_numpy, _decode_nb)


# ---- what traded, per market and good -------------------------------------------------------------------

def trade_totals_numpy(key, qty, price, previous):
    """(volume [M, G], volume-weighted clearing price [M, G]; `previous` where nothing traded) of
    the trades `key` [T] (market * G + good), paid quantities `qty` and prices. Twin of `_totals_nb`."""
    mg = previous.size
    volume = np.bincount(key, weights=qty, minlength=mg).astype(np.float64).reshape(previous.shape)
    value = np.bincount(key, weights=qty * price, minlength=mg).astype(np.float64).reshape(previous.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return volume, np.where(volume > 0, value / volume, previous)


@jit
def _totals_nb(key, qty, price, previous):  # pragma: no cover - compiled
    mg = previous.size
    volume = np.zeros(mg)
    value = np.zeros(mg)
    # in trade order, as bincount sums; a run of trades of one key sums in registers (trades come
    # in runs of a market and good: the sums then wait on an add, not on a store and a reload)
    cur = 0
    vol = 0.0
    val = 0.0
    for t in range(key.shape[0]):
        k = key[t]
        if k != cur:
            volume[cur] = vol
            value[cur] = val
            cur = k
            vol = volume[k]
            val = value[k]
        vol += qty[t]
        val += qty[t] * price[t]
    if mg:
        volume[cur] = vol
        value[cur] = val
    prev = previous.reshape(mg)
    clearing = np.empty(mg)
    for k in range(mg):
        clearing[k] = value[k] / volume[k] if volume[k] > 0 else prev[k]
    return volume.reshape(previous.shape), clearing.reshape(previous.shape)


trade_totals = register("trade_totals", trade_totals_numpy, _totals_nb)


# ---- the reference price: imbalance, the mean-field rule and the price history, per (market, good) ----------

def price_step_numpy(ref, level, clearing, volume, supply, demand, z, low, high, history, history_len, reversion,
                     vwap_weight, imbalance_gain, volatility, bound):
    """(new reference price [M, G], price history [M, H, G] shifted by one row with it last,
    history lengths [M] + 1 capped at H): `prices.ref_price_update` with `prices.imbalance(supply,
    demand)`; `level` [M, 1] or [M, G], `low` / `high` [G] the price bounds. Twin of `_price_step_nb`."""
    z = _np_clip(z, -bound, bound)
    imb = np.divide(demand - supply, supply + demand, out=np.zeros_like(supply), where=supply + demand > 0)
    new = (
        ref
        + reversion * (level - ref)
        + np.where(volume > 0, vwap_weight * (clearing - ref), 0.0)
        + imbalance_gain * ref * imb
        + volatility * ref * z
    )
    new = _np_clip(new, low, high)
    h = history.shape[1]
    return new, np.concatenate([history[:, 1:], new[:, None, :]], axis=1), np.minimum(history_len + 1, h)


@jit
def _price_step_nb(ref, level, clearing, volume, supply, demand, z, low, high, history, history_len, reversion,
                   vwap_weight, imbalance_gain, volatility, bound):  # pragma: no cover - compiled
    # the twin's operations in its order, element by element (np.clip: NaN kept, else max then min)
    m_n, g_n = ref.shape
    h = history.shape[1]
    new = np.empty((m_n, g_n))
    hist = np.empty((m_n, h, g_n))
    lens = np.empty(m_n, dtype=history_len.dtype)
    one_level = level.shape[1] == 1
    for m in range(m_n):
        for g in range(g_n):
            r = ref[m, g]
            zz = z[m, g]
            if zz == zz:
                zz = zz if zz > -bound else -bound
                zz = zz if zz < bound else bound
            tot = supply[m, g] + demand[m, g]
            imb = (demand[m, g] - supply[m, g]) / tot if tot > 0 else 0.0
            x = r + reversion * (level[m, 0 if one_level else g] - r)
            x = x + (vwap_weight * (clearing[m, g] - r) if volume[m, g] > 0 else 0.0)
            x = x + imbalance_gain * r * imb
            x = x + volatility * r * zz
            if x == x:
                x = x if x > low[g] else low[g]
                x = x if x < high[g] else high[g]
            new[m, g] = x
        for j in range(h - 1):
            for g in range(g_n):
                hist[m, j, g] = history[m, j + 1, g]
        for g in range(g_n):
            hist[m, h - 1, g] = new[m, g]
        lens[m] = history_len[m] + 1 if history_len[m] + 1 < h else h
    return new, hist, lens


price_step = register("price_step", price_step_numpy, _price_step_nb)


# ---- the kinds' per-step arithmetic (weather, generation, demand, what a store can trade) ----------------------
# Over a kind's block `start:stop` of [M, N] grids (one market: M = 1), in place. The exponentials and
# powers stay with NumPy (the callers pass them in): its SIMD builds round them unlike libm. Each is
# the twin's operations in the twin's order; np.clip / np.minimum / np.maximum keep NaN.

def ar1_clip_numpy(x, start, stop, phi, drift, noise, z, lo, hi):
    """x[:, start:stop] = clip(phi x + drift + noise z, lo, hi): an AR(1) weather step (cloud cover,
    wind speed) from the normals `z` [M, stop - start]."""
    x[:, start:stop] = _np_clip(phi * x[:, start:stop] + drift + noise * z, lo, hi)


@jit
def _ar1_clip_nb(x, start, stop, phi, drift, noise, z, lo, hi):  # pragma: no cover - compiled
    for m in range(x.shape[0]):
        for i in range(stop - start):
            y = phi * x[m, start + i] + drift + noise * z[m, i]
            if y == y:
                y = y if y > lo else lo
                y = y if y < hi else hi
            x[m, start + i] = y


ar1_clip = register("ar1_clip", ar1_clip_numpy, _ar1_clip_nb)


def solar_output_numpy(out, start, stop, capacity, share, cloud, dt):
    """out[:, start:stop] = capacity x share x (1 - cloud) x dt, `share` [M, 1] the clear-sky shape
    of each market's hour, `cloud` [M, stop - start] the sites' cloud cover: solar generation."""
    out[:, start:stop] = capacity[:, start:stop] * share * (1.0 - cloud) * dt


@jit
def _solar_output_nb(out, start, stop, capacity, share, cloud, dt):  # pragma: no cover - compiled
    for m in range(out.shape[0]):
        sh = share[m, 0]
        for i in range(stop - start):
            out[m, start + i] = capacity[m, start + i] * sh * (1.0 - cloud[m, i]) * dt


solar_output = register("solar_output", solar_output_numpy, _solar_output_nb)


def load_output_numpy(out, start, stop, capacity, residential, res_share, ind_share, noise, dt):
    """out[:, start:stop] = capacity x (res_share where residential, else ind_share) x noise x dt,
    the shares [M, 1] per market, `noise` [M, stop - start]: consumers' demand."""
    shape = np.where(residential[:, start:stop], res_share, ind_share)
    out[:, start:stop] = capacity[:, start:stop] * shape * noise * dt


@jit
def _load_output_nb(out, start, stop, capacity, residential, res_share, ind_share, noise, dt):  # pragma: no cover
    for m in range(out.shape[0]):
        rs, ind = res_share[m, 0], ind_share[m, 0]
        for i in range(stop - start):
            sh = rs if residential[m, start + i] else ind
            out[m, start + i] = capacity[m, start + i] * sh * noise[m, i] * dt


load_output = register("load_output", load_output_numpy, _load_output_nb)


def wind_output_numpy(out, start, stop, capacity, speed, cubed, cut_in3, span3, cut_out, dt):
    """out[:, start:stop] = capacity x power curve x dt: the curve clip((speed^3 - cut_in^3) /
    span3, 0, 1), 0 from the cut-out speed; `cubed` = speed^3 [M, stop - start] (NumPy's power)."""
    frac = _np_clip((cubed - cut_in3) / span3, 0.0, 1.0)
    out[:, start:stop] = capacity[:, start:stop] * np.where(speed >= cut_out, 0.0, frac) * dt


@jit
def _wind_output_nb(out, start, stop, capacity, speed, cubed, cut_in3, span3, cut_out, dt):  # pragma: no cover
    for m in range(out.shape[0]):
        for i in range(stop - start):
            f = (cubed[m, i] - cut_in3) / span3
            if f == f:
                f = f if f > 0.0 else 0.0
                f = f if f < 1.0 else 1.0
            if speed[m, i] >= cut_out:
                f = 0.0
            out[m, start + i] = capacity[m, start + i] * f * dt


wind_output = register("wind_output", wind_output_numpy, _wind_output_nb)


def store_limits_numpy(sellable, needed, start, stop, efficiency, power, capacity, soc, dt):
    """A store delivers min(power dt, soc eff) and absorbs max(min(power dt, (capacity - soc) / eff), 0),
    into sellable and needed [:, start:stop] (`kinds.storage.store_tradable` without a floor)."""
    eff, pw = efficiency[:, start:stop], power[:, start:stop] * dt
    s = soc[:, start:stop]
    sellable[:, start:stop] = np.minimum(pw, s * eff)
    needed[:, start:stop] = np.maximum(np.minimum(pw, (capacity[:, start:stop] - s) / eff), 0.0)


@jit
def _store_limits_nb(sellable, needed, start, stop, efficiency, power, capacity, soc, dt):  # pragma: no cover
    for m in range(sellable.shape[0]):
        for j in range(start, stop):
            eff = efficiency[m, j]
            pw = power[m, j] * dt
            s = soc[m, j]
            a = s * eff
            y = pw if pw < a else a
            if pw != pw:
                y = pw
            sellable[m, j] = y
            b = (capacity[m, j] - s) / eff
            y = pw if pw < b else b
            if pw != pw:
                y = pw
            w = y if y > 0.0 else 0.0
            if y != y:
                w = y
            needed[m, j] = w


store_limits = register("store_limits", store_limits_numpy, _store_limits_nb)


# ---- the built-in kinds' weather and energy hooks as two passes (`kinds.builtin`) ------------------------------
# A block table [B, 4] int64 a row: kind code, start, stop, the block's first column in the normals (weather) or
# in its NumPy-computed input (energy). Each block's arithmetic is its kind kernel's above, in the same order.

KIND_SOLAR, KIND_WIND, KIND_CONSUMER = 1, 2, 3


def kind_weather_numpy(cloud, wind, blocks, z, first, cloud_phi, cloud_drift, cloud_noise, wind_phi, wind_drift,
                       wind_noise):
    """(cloud cover, wind speed) [M, N] of the next interval: copies of `cloud` and `wind` with each
    solar block's cloud and each wind block's speed one AR(1) step on (`ar1_clip`, clipped to [0, 1] and
    [0, inf)), from the normals `z` [M, K] at column `first` + the block's column. What `kinds.solar.weather` and
    `kinds.wind.weather` do, in one call. Twin of `_kind_weather_nb`."""
    cloud, wind = cloud.copy(), wind.copy()
    for code, start, stop, col in blocks:
        zz = z[:, first + col:first + col + stop - start]
        if code == KIND_SOLAR:
            ar1_clip_numpy(cloud, start, stop, cloud_phi, cloud_drift, cloud_noise, zz, 0.0, 1.0)
        elif code == KIND_WIND:
            ar1_clip_numpy(wind, start, stop, wind_phi, wind_drift, wind_noise, zz, 0.0, np.inf)
    return cloud, wind


@jit
def _kind_weather_nb(cloud, wind, blocks, z, first, cloud_phi, cloud_drift, cloud_noise, wind_phi, wind_drift,
                     wind_noise):  # pragma: no cover - compiled
    cloud, wind = cloud.copy(), wind.copy()
    for b in range(blocks.shape[0]):
        code, start, stop, col = blocks[b, 0], blocks[b, 1], blocks[b, 2], first + blocks[b, 3]
        zz = z[:, col:col + stop - start]
        if code == KIND_SOLAR:
            _ar1_clip_nb(cloud, start, stop, cloud_phi, cloud_drift, cloud_noise, zz, 0.0, 1.0)
        elif code == KIND_WIND:
            _ar1_clip_nb(wind, start, stop, wind_phi, wind_drift, wind_noise, zz, 0.0, np.inf)
    return cloud, wind


kind_weather = register("kind_weather", kind_weather_numpy, _kind_weather_nb)


def kind_energy_numpy(blocks, capacity, residential, cloud, speed, cubed, load_noise, solar_share, res_share,
                      ind_share, cut_in3, span3, cut_out, dt):
    """(generation, demand) [M, N] of the interval, zero outside the blocks: each solar block's
    `solar_output` (clear-sky `solar_share` [M, 1], its sites' `cloud`), each wind block's `wind_output`
    (`speed`, and NumPy's `cubed` speed [M, k] from the block's column), each consumer block's
    `load_output` (shares [M, 1], NumPy's `load_noise` [M, k] from the block's column). What the
    built-in kinds' energy hooks write, in one call. Twin of `_kind_energy_nb`."""
    generation, demand = np.zeros(capacity.shape), np.zeros(capacity.shape)
    for code, start, stop, col in blocks:
        k = stop - start
        if code == KIND_SOLAR:
            solar_output_numpy(generation, start, stop, capacity, solar_share, cloud[:, start:stop], dt)
        elif code == KIND_WIND:
            wind_output_numpy(generation, start, stop, capacity, speed[:, start:stop], cubed[:, col:col + k],
                              cut_in3, span3, cut_out, dt)
        elif code == KIND_CONSUMER:
            load_output_numpy(demand, start, stop, capacity, residential, res_share, ind_share,
                              load_noise[:, col:col + k], dt)
    return generation, demand


@jit
def _kind_energy_nb(blocks, capacity, residential, cloud, speed, cubed, load_noise, solar_share, res_share,
                    ind_share, cut_in3, span3, cut_out, dt):  # pragma: no cover - compiled
    generation, demand = np.zeros(capacity.shape), np.zeros(capacity.shape)
    for b in range(blocks.shape[0]):
        code, start, stop, col = blocks[b, 0], blocks[b, 1], blocks[b, 2], blocks[b, 3]
        k = stop - start
        if code == KIND_SOLAR:
            _solar_output_nb(generation, start, stop, capacity, solar_share, cloud[:, start:stop], dt)
        elif code == KIND_WIND:
            _wind_output_nb(generation, start, stop, capacity, speed[:, start:stop], cubed[:, col:col + k], cut_in3,
                            span3, cut_out, dt)
        elif code == KIND_CONSUMER:
            _load_output_nb(demand, start, stop, capacity, residential, res_share, ind_share,
                            load_noise[:, col:col + k], dt)
    return generation, demand


kind_energy = register("kind_energy", kind_energy_numpy, _kind_energy_nb)
