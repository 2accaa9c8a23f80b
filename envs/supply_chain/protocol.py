"""Trading: customer slots, offers and answers (the two-step protocol of Table 1), the sale.

Customer slots (paper 3.4): every agent keeps a list of `contacts` customers, the economy's
channels. A neighbour that buys its product (the next kind in the loop; every kind buys food
from Sellers) takes a free slot, up to six new customers a day (candidates in neighbour order);
a slot lapses after `lapse_days` out of range, after 2 x `lapse_days` without a transaction
(relations form and lapse with proximity and trading history), or when either side dies.

One day of negotiation over the open slots in range (vectorized over slots, the rules are
`envs.risk_rules`, the same functions the energy market's risk-factor negotiator uses):

1. Offer (Making an offer): a seller holding at least one package (Sellers: beyond the food
   they keep to eat) offers to a customer it has
   not offered to yet, and to one already offered to when its memory is reset, with probability
   `advertising` (the advertising factor). First contact: the price is the cost floor (unit cost
   of its stock) plus a margin, a share of the room up to the good's price cap, larger for
   risk-takers, cut for regular customers by low-r sellers (`first_contact_price`). Repeated
   contact: from the last price offered to that customer, up after an accept, down after a
   reject (`repeat_price`). Stock pressure (its own stock and hunger) cuts the margin.
2. Answer (Purchase decision): the IF-chain (`purchase_decision`): not interesting (not its
   input, or input while two batches of its product are unsold, or food it does not need) -> no; cannot afford one package -> no; first transaction
   -> yes; a bargain (not dearer than the last price paid) -> yes; a risk-taker refuses, a
   restrained agent accepts.
3. Second step (Table 1): a rejected offer is re-priced as a rejected repeat (lower) and sent
   again the same day; the customer answers again.
4. Sale: the seller sells to the customers that accepted, highest accepted price first
   (paper: "the one that agreed to the highest prices"), one package each up to their need in
   packages, while its stock lasts; a customer takes its accepted offers cheapest first while
   its budget and need last (refusing the rest: "if no goods in stock ... it refuses").
   Money and goods move in one step; bought input becomes a cost lot; points grow by the
   value, idle slots' points decay (`decay_points`).

Learned agents follow channel_market_v0's action convention (`envs/offers.py`), with each
good's price cap as the span: as a seller, the `ask` action sets the opening price ref + a x cap
(ref: the good's mean current price), never under its cost basis nor over the cap, in place of
the first-contact/repeat rule, `concession` the share (c + 1) / 2 of the room down to its cost
it gives in the second step, and `quantity` the share (q + 1) / 2 of its packages offered; as a
buyer, its opening bid is ref + b x cap in [0, cap] and it accepts up to the bid plus the share
(c + 1) / 2 of the room up to the cap (its limit), and `quantity` is the share of its need it buys.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..risk_rules import (ACCEPT, ACCEPTED, BARGAIN, FIRST, REJECTED, RiskParams, advertise, buys, decay_rule,
                          decision_rule, discount_rule, first_contact_rule, margin_rule, pressured_rule, regular_rule,
                          repeat_rule, restrained_rule, scalar_clip, scalar_clip_to, scalar_isnan, scalar_maximum,
                          scalar_minimum, scalar_not, scalar_where)
from ..compiled import Kernel, jit
from ..streams import fill_doubles, generator_of, jump, jump_table, put_generator, state_view
from .parallel import kernel, prange
from .production import add_lots
from ..prefetch import prefetch
from .pulls import add_pull, pull_weight


class DayTrades(NamedTuple):
    """The day's transactions, struct of arrays over T."""

    seller: np.ndarray
    buyer: np.ndarray
    good: np.ndarray
    qty: np.ndarray
    price: np.ndarray       # per unit
    slot: np.ndarray        # flat slot index i * K + k


class DayOffers(NamedTuple):
    good: np.ndarray        # [S] good of every offer sent (both steps)
    price: np.ndarray       # [S] per unit
    accepted: np.ndarray    # [S] bool


def _refresh_loop(partner, away, t_last, points, n_tr, value_sum, t_first, list_price, outcome, offered, xy, alive,
                  start, cand, radius, lapse_days, per_day, t):
    """Lapse and open customer slots in place (loops; compiled by numba, the same code as its twin);
    returns how many slots lapsed or opened, each seller's reach (`slot_reach`: its open slots lie below
    it, so the day's later slot loops stop there: rows fill from the front), its open slots (the
    observation's customers, counted as the row is walked) and the history pulls of the
    slots it leaves (`pulls.pull_weight`, `pulls.add_pull`: `pulls.add_row_pulls`' numbers: the heading's resultant, each row added once it is
    final, in slot order and the sellers' order, as `movement.history_pulls` adds them). Each seller's row
    in turn: its slots lapse, then its candidates (`cand[start[a]:start[a + 1]]`, in neighbour order) that
    are not yet customers take its first free slots. A slot's pull is taken where its distance is (the
    lapse test, or the opening) and kept in a row buffer; `mark[b] == a` says b is already a's customer
    (set as the row is walked: one look-up a candidate instead of a scan of the row)."""
    n, k = partner.shape
    changed = 0
    reach = np.empty(n, np.int64)
    customers = np.empty(n, np.int64)
    pull = np.zeros((n, 2))
    mark = np.full(n, -1, np.int64)
    wx = np.empty(k)                         # the row's pulls (w dx, w dy), added in slot order at its end
    wy = np.empty(k)
    for a in range(n):
        ch = 0
        hi = 0                               # one past the last slot that stays open
        kept = 0                             # open slots
        ax = xy[a, 0]
        ay = xy[a, 1]
        for s in range(k):
            p = partner[a, s]
            if p < 0:
                continue
            hi = s + 1
            dx = xy[p, 0] - ax
            dy = xy[p, 1] - ay
            d2 = dx * dx + dy * dy
            if d2 >= radius * radius:
                away[a, s] += 1
            else:
                away[a, s] = 0
            if (not alive[p]) or (not alive[a]) or away[a, s] > lapse_days or t - t_last[a, s] > 2 * lapse_days:
                partner[a, s] = -1
                ch += 1
                away[a, s] = 0
                t_last[a, s] = 0.0
                points[a, s] = 0.0
                n_tr[a, s] = 0.0
                value_sum[a, s] = 0.0
                t_first[a, s] = 0.0
                list_price[a, s] = np.nan
                outcome[a, s] = 0
                offered[a, s] = False
                hi = 0                       # lapsed (rare): the reach falls back to the last slot still open
                for x in range(s):
                    if partner[a, x] >= 0:
                        hi = x + 1
                continue
            mark[p] = a
            kept += 1
            w = pull_weight(n_tr[a, s], d2)
            wx[s] = w * dx
            wy[s] = w * dy
        free = 0
        added = 0
        for x in range(start[a], start[a + 1]):
            if added >= per_day:
                break
            b = cand[x]
            if mark[b] == a:                 # already a customer (most candidates are)
                continue
            while free < k and partner[a, free] >= 0:
                free += 1
            if free >= k:                    # no free slot for this or any later candidate
                break
            partner[a, free] = b
            t_last[a, free] = t
            list_price[a, free] = np.nan
            mark[b] = a
            dx = xy[b, 0] - ax
            dy = xy[b, 1] - ay
            w = pull_weight(n_tr[a, free], dx * dx + dy * dy)
            wx[free] = w * dx
            wy[free] = w * dy
            added += 1
            ch += 1
            hi = max(hi, free + 1)
        changed += ch
        reach[a] = hi
        customers[a] = kept + added
        for s in range(hi):                  # the row is final: its pulls in slot order
            b = partner[a, s]
            if b < 0:
                continue
            add_pull(pull, a, b, wx[s], wy[s])
    return changed, reach, customers, pull


refresh_kernel = Kernel("supply_chain_refresh_slots", _refresh_loop, jit(_refresh_loop))


def slot_reach(partner: np.ndarray) -> np.ndarray:
    """[N] int64 one past each seller's last open slot (0: none open). The slot loops of the day run over
    `range(reach[a])` instead of all K slots: rows fill from the front, so about a third of the slots."""
    open_ = partner >= 0
    k = partner.shape[1]
    return np.where(open_.any(axis=1), k - np.argmax(open_[:, ::-1], axis=1), 0).astype(np.int64)


def refresh_slots(st, start: np.ndarray, cand: np.ndarray, radius: float, lapse_days: int,
                  per_day: int = 6) -> "tuple[int, np.ndarray, np.ndarray, np.ndarray]":
    """Lapse customer slots (out of range too long, idle too long, a side dead) and open new ones for the
    customer candidates (grouped by seller: seller a's are `cand[start[a]:start[a + 1]]`, in neighbour
    order, as `movement.neighbourhood` gives them: up to `per_day` a seller a day), in place; returns how
    many changed, the sellers' `slot_reach` after (valid until the slots change: the day's set-up, offers
    and heading take it), each one's open slots after (its customers: the day's observation takes them) and
    the slots' history pulls [N, 2] at today's positions (the heading's, before anyone moves:
    `movement.history_pulls`)."""
    return refresh_kernel(partner=st.partner, away=st.away, t_last=st.t_last, points=st.points, n_tr=st.n_tr,
                          value_sum=st.value_sum, t_first=st.t_first, list_price=st.list_price, outcome=st.outcome,
                          offered=st.offered, xy=st.xy, alive=st.alive, start=start, cand=cand, radius=float(radius),
                          lapse_days=int(lapse_days), per_day=int(per_day), t=int(st.t))


def _group_cumsum(group: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative sum of x within runs of equal `group` (sorted), exclusive of the element."""
    c = np.cumsum(x) - x
    if x.size == 0:
        return c
    start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run = np.repeat(np.arange(start.size), np.diff(np.r_[start, x.size]))
    return c - c[start][run]


def _setup_loop(xy, alive, hold, out_good, in_good, learned, qty, pkg, food, r, kind, batch, food_scale,
                input_batches, food_target, batch_units):
    """Per agent the packages it can sell (its product beyond the food a Seller keeps to eat, in whole
    packages; a learned seller offers the share (q + 1) / 2) and its row as a customer (`cu`: position,
    alive, input good, its needs and input target; `_sent_loop` reads it per slot). Input is needed only
    while the customer's product sells (under two batches unsold); a learned customer buys the share
    (q + 1) / 2 of its need. Its targets are written to `food_target` (`food_scale` x (1.5 - r): risk-takers
    keep less food) and `batch_units` (its kind's batch), which the offers read, and its input target is
    `input_batches` batches (none without an input). One loop over the agents, compiled (threaded)."""
    n = xy.shape[0]
    packages = np.empty(n)
    # per customer, once (the same float operations as per slot): 0 x, 1 y, 2 alive, 3 in good, 4 no need
    # (0 scaled as a need is), 5 need of its input, 6 need of food (if it eats bought food), 7 its input
    # target; one row, one cache line
    cu = np.empty((n, 8))
    for b in prange(n):
        ib = in_good[b]
        ob = out_good[b]
        ft = food_scale * (1.5 - r[b])
        bu = batch[kind[b]]
        it = input_batches * bu if ib >= 0 else 0.0
        food_target[b] = ft
        batch_units[b] = bu
        cu[b, 0] = xy[b, 0]
        cu[b, 1] = xy[b, 1]
        cu[b, 2] = 1.0 if alive[b] else 0.0
        cu[b, 3] = ib
        nd_no = 0.0
        nd_in = 0.0
        nd_in_b = max(it - hold[b, ib if ib >= 0 else 0], 0.0)    # selects, no branches
        nd_in = nd_in_b if (ib >= 0) & (hold[b, ob] < 2.0 * bu) else 0.0
        nd_fd_b = max(ft - hold[b, food], 0.0)
        nd_fd = nd_fd_b if ob != food else 0.0
        if learned[b]:
            nd_in = nd_in * (qty[b] + 1.0) * 0.5
            nd_fd = nd_fd * (qty[b] + 1.0) * 0.5
            nd_no = nd_no * (qty[b] + 1.0) * 0.5
        cu[b, 4] = nd_no
        cu[b, 5] = nd_in
        cu[b, 6] = nd_fd
        cu[b, 7] = it
        keep = ft if ob == food else 0.0      # a Seller keeps its own food target (it eats its product)
        pk = np.floor(_max1(hold[b, ob] - keep, 0.0) / pkg[ob])
        packages[b] = np.floor(pk * (qty[b] + 1.0) * 0.5) if learned[b] else pk
    return packages, cu


setup_kernel = kernel("supply_chain_offer_setup", _setup_loop, _setup_loop, split="xy")


def _sent_numpy(partner, reach, xy, radius, alive, out_good, food, food_target, packages, cu, draws, state,
                offered, advertising, points):
    """The offers that go out today: (flat slot i * K + k, seller, customer, its need and target of the
    seller's good, whether it is the customer's input), in slot order; the open slots holding points and
    their sellers (the day's points decay visits only these); and how many draws it used. An open slot in
    range takes the next advertising draw: from `draws` (at least one a slot in range, ValueError
    otherwise), or, when `state` is a PCG64's live state ([4] uint64, `streams.state_view`; else empty),
    the generator's next doubles, one a slot in range (the generator left after them); an offer is worth
    sending when both sides are alive, the seller has a package and the customer needs >= 1 unit; it goes
    out by `risk_rules.advertise`. NumPy twin of `_sent_loop`."""
    k = partner.shape[1]
    rows, slots = np.nonzero(partner >= 0)
    b = partner[rows, slots].astype(np.int64)
    dx = cu[b, 0] - xy[rows, 0]
    dy = cu[b, 1] - xy[rows, 1]
    near = dx * dx + dy * dy < radius * radius
    rows, slots, b = rows[near], slots[near], b[near]
    g = out_good[rows]
    inp = g == cu[b, 3]
    need = np.where(inp, cu[b, 5], np.where(g == food, cu[b, 6], cu[b, 4]))
    target = np.where(inp, cu[b, 7], food_target[b])
    eligible = alive[rows] & (packages[rows] >= 1.0) & (cu[b, 2] != 0.0) & (need >= 1.0)
    used = rows.size
    if state.shape[0] == 4:
        gen = generator_of(state)
        draws = gen.random(used)
        put_generator(state, gen)
    if used > draws.shape[0]:
        raise ValueError(f"offers sent: {used} slots in range, {draws.shape[0]} advertising draws; allowed: "
                         "at least one draw a slot in range")
    sent = advertise(offered[rows, slots], eligible, draws[:used], advertising)
    held = np.flatnonzero((partner >= 0) & (points > 0))
    return ((rows * k + slots)[sent], rows[sent], b[sent], need[sent], target[sent], inp[sent], held, held // k,
            used)


def _sent_loop(partner, reach, xy, radius, alive, out_good, food, food_target, packages, cu, draws, state,
               offered, advertising, points):
    """`_sent_numpy` in one pass over the sellers' slots (compiled): each slot in range written at the
    next place and kept when it goes out, each open slot likewise kept when it holds points. Without a live
    `state`, `draws` must hold one a slot in range (`negotiate` counts them first); with one, each slot in
    range takes the next of the generator's doubles, drawn in the pass for a bound (the open slots below the
    reach; `streams.fill_doubles`), and the state is written back as if only those used had been drawn."""
    n, k = partner.shape
    r2 = radius * radius
    live = state.shape[0] == 4
    if live:
        m = 0
        for a in range(n):
            m += reach[a]
        draws = np.empty(m)
        fill_doubles(state[1], state[0], state[3], state[2], draws)   # the state is set once `o` is known
    else:
        m = draws.shape[0]
    f = np.empty(m + 1, np.int64)       # + 1: each slot is written before it is known to be an offer
    sel = np.empty(m + 1, np.int64)
    cust = np.empty(m + 1, np.int64)
    need = np.empty(m + 1)
    target = np.empty(m + 1)
    is_input = np.empty(m + 1, np.bool_)
    held = np.empty(n * k + 1, np.int64)
    held_a = np.empty(n * k + 1, np.int64)
    h = 0                               # open slots with points so far
    o = 0                               # slots in range so far (their draws)
    w = 0                               # offers sent so far
    for a in range(n):
        g = out_good[a]
        sells = alive[a] and packages[a] >= 1.0
        ax = xy[a, 0]
        ay = xy[a, 1]
        for s in range(reach[a]):
            b = partner[a, s]
            if b < 0:
                continue
            held[h] = a * k + s
            held_a[h] = a
            h += points[a, s] > 0
            dx = cu[b, 0] - ax
            dy = cu[b, 1] - ay
            if dx * dx + dy * dy >= r2:
                continue
            inp = g == cu[b, 3]
            if inp:
                nd = cu[b, 5]
                tg = cu[b, 7]
            else:
                nd = cu[b, 6] if g == food else cu[b, 4]
                tg = food_target[b]
            f[w] = a * k + s
            sel[w] = a
            cust[w] = b
            need[w] = nd
            target[w] = tg
            is_input[w] = inp
            w += (sells & (cu[b, 2] != 0.0) & (nd >= 1.0)) & ((not offered[a, s]) | (draws[o] < advertising))
            o += 1
    if live:                            # the generator `o` doubles on: as if it had drawn only those used
        sh, sl = jump(state[1], state[0], jump_table(state[3], state[2], 0), 0, o)
        state[0] = sl
        state[1] = sh
    return f[:w], sel[:w], cust[:w], need[:w], target[:w], is_input[:w], held[:h], held_a[:h], o


sent_kernel = Kernel("supply_chain_offers_sent", _sent_numpy, jit(_sent_loop))


def _decay_numpy(points, n_tr, value_sum, t_first, t_last, r, traded, f_open, kk, rate):
    """Idle open slots with points lose points (`risk_rules.decay_rule` over arrays), in place."""
    f = f_open[points[f_open] > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        points[f] = decay_rule(points[f], n_tr[f].astype(np.float64), value_sum[f], t_first[f].astype(np.float64),
                               t_last[f].astype(np.float64), r[f // kk], ~traded[f], rate,
                               np.where, np.maximum)


_where1, _max1 = jit(scalar_where) or scalar_where, jit(scalar_maximum) or scalar_maximum


def _sale_numpy(accepted, si, sj, price, need, unit_pkg, packages, money):
    """The day's sales from the accepted offers: (offer indices, packages given), in the buyers'
    order. Sellers serve their highest accepted prices first, one package each up to the buyer's
    need, while stock lasts; buyers take theirs cheapest first while money and need last.
    `si` must be sorted (offers come in slot order). NumPy twin of `_sale_loop`."""
    a = np.flatnonzero(accepted)
    want = np.ceil(need[a] / unit_pkg[a])
    o = np.lexsort((-price[a], si[a]))
    a, want = a[o], want[o]
    avail = packages[si[a]]
    give = np.clip(avail - _group_cumsum(si[a], want), 0.0, want)
    # buyer: cheapest first while money and need last
    o = np.lexsort((price[a], sj[a]))
    a, give = a[o], give[o]
    cost = give * unit_pkg[a] * price[a]
    units = give * unit_pkg[a]
    spent_before = _group_cumsum(sj[a], cost)
    units_before = _group_cumsum(sj[a], units)
    money_b = money[sj[a]]
    affordable = np.floor(np.maximum(money_b - spent_before, 0.0) / np.maximum(unit_pkg[a] * price[a], 1e-12))
    need_pk = np.ceil(np.maximum(need[a] - units_before, 0.0) / unit_pkg[a])
    give = np.minimum(give, np.minimum(affordable, need_pk))
    t = give > 0
    return a[t], give[t]


def _sale_loop(accepted, si, sj, price, need, unit_pkg, packages, money):
    """`_sale_numpy` in passes over the accepted offers (compiled), with the twin's order and float
    operations: each seller's run (`si` sorted) ordered highest price first (a stable insertion sort, only
    when its stock is short of the run's wants) and its packages handed out in that order; a stable
    counting sort by buyer, cheapest first inside each buyer (only buyers with two offers or more are
    sorted); then each buyer's money and need cut the packages. The running sums are taken as `_group_cumsum` takes them (one running sum over all groups
    minus the group's start), so the numbers are the twin's."""
    m0 = accepted.shape[0]
    n = packages.shape[0]
    a = np.empty(m0 + 1, np.int64)           # the accepted offers (+ 1: written before it is known to be one)
    m = 0
    for k in range(m0):
        a[m] = k
        m += accepted[k]
    # ---- sellers: highest accepted price first, one package each up to the buyer's need, while stock lasts.
    # When a seller's stock covers every want of its run, each buyer gets its whole want in any order (the
    # wants are whole numbers: their running sums are exact), so the run is left in slot order: the buyers'
    # lists below sort by price and keep the run's order only between equal prices, which the stable sort
    # would not have changed either.
    give = np.empty(m)
    w_of = np.empty(m)
    key = np.empty(m)
    # flat passes (no loop per run: runs are short, ~2 offers, and their ends were mispredicted branches):
    # each offer's want and its run's total so far; the runs to sort (stock short, two offers or more) listed
    runs_lo = np.empty(m + 1, np.int64)
    runs_hi = np.empty(m + 1, np.int64)
    ns = 0
    lo = 0
    tot = 0.0
    for i in range(m):
        x = a[i]
        s = si[x]
        first = i == 0 or si[a[i - 1]] != s
        lo = i if first else lo
        w = np.ceil(need[x] / unit_pkg[x])
        w_of[i] = w
        key[i] = price[x]
        tot = (0.0 if first else tot) + w
        last = i == m - 1 or si[a[i + 1]] != s
        pk = packages[s]
        runs_lo[ns] = lo
        runs_hi[ns] = i + 1
        ns += last & (i > lo) & (not ((tot <= pk) & (tot < 9007199254740992.0)))   # no branches
    for r_ in range(ns):
        _sort_run(a, key, w_of, runs_lo[r_], runs_hi[r_], True)
    c = 0.0
    c_start = 0.0
    for i in range(m):
        s = si[a[i]]
        first = i == 0 or si[a[i - 1]] != s
        w = w_of[i]
        ck = (c + w) - w
        c = c + w
        c_start = ck if first else c_start
        give[i] = min(max(packages[s] - (ck - c_start), 0.0), w)
    # ---- buyers: by buyer (stable), cheapest first inside each: (offer, price, packages) in that order
    start = np.zeros(n + 1, np.int64)
    for i in range(m):
        start[sj[a[i]] + 1] += 1
    for b in range(n):
        start[b + 1] += start[b]
    pos = start[:n].copy()
    bx = np.empty(m, np.int64)
    bp = np.empty(m)
    bg = np.empty(m)
    for i in range(m):
        x = a[i]
        b = sj[x]
        q = pos[b]
        bx[q] = x
        bp[q] = key[i]
        bg[q] = give[i]
        pos[b] = q + 1
    multi = np.empty(n + 1, np.int64)          # the buyers with two offers or more (the only runs to sort)
    nm = 0
    for b in range(n):
        multi[nm] = b
        nm += start[b + 1] - start[b] > 1
    for j in range(nm):
        b = multi[j]
        _sort_run(bx, bp, bg, start[b], start[b + 1], False)
    # ---- each buyer's money and need, in that order
    out_a = np.empty(m + 1, np.int64)
    out_g = np.empty(m + 1)
    t = 0
    cs = 0.0
    cs_start = 0.0
    cu = 0.0
    cu_start = 0.0
    prev = -1
    for i in range(m):
        x = bx[i]
        b = sj[x]
        u = unit_pkg[x]
        p = bp[i]
        g = bg[i]
        units = g * u
        cost = units * p
        sk = (cs + cost) - cost
        cs = cs + cost
        uk = (cu + units) - units
        cu = cu + units
        if b != prev:
            cs_start = sk
            cu_start = uk
            prev = b
        afford = np.floor(max(money[b] - (sk - cs_start), 0.0) / max(u * p, 1e-12))
        need_pk = np.ceil(max(need[x] - (uk - cu_start), 0.0) / u)
        g = min(g, min(afford, need_pk))
        out_a[t] = x
        out_g[t] = g
        t += g > 0
    return out_a[:t], out_g[:t]


_sale_jit = jit(_sale_loop) or _sale_loop   # what the compiled offers call (tests: equal to `_sale_numpy`)


def _rule_values(rules):
    """The RiskParams numbers the offer kernel reads, in `_RULES` order."""
    return (rules[0], rules[1], rules[2], rules[3], rules[4], rules[5], rules[6], rules[7], rules[8], rules[9],
            rules[10])


_RULES = ("margin_base", "margin_risk", "regular_discount", "regular_r_max", "points_half", "reversion", "price_step",
          "pressure_weight", "accept_r", "accept_pressure", "points_decay")


def _offers_numpy(f_sent, si, sj, need, target, is_input, kk, t_now, food, rules, r, out_good,
                  in_good, out_cost, vital, hold, money, price, last_paid, lot_qty, lot_cost, points, n_tr, value_sum,
                  t_first, t_last, list_price, outcome, offered, partner, held, held_a, learned, ask, bid, concession,
                  ref, cap, pkg, packages, food_target, batch_units):
    """The day's offers, answers and sales of the offers sent (`sent_kernel`), NumPy twin of `_offers_loop`:
    step-1 prices (first contact / repeat, stock pressure), answers (the IF-chain), step 2
    (a rejected offer re-priced and sent again), the sale, money and goods moved, input lots, last prices
    paid, slot history and points decay, the sellers' current prices. State arrays are written in place
    (`price` too). Returns (seller, buyer, good, qty, price, slot) of the trades and (good, price,
    accepted) of the offers sent."""
    (margin_base, margin_risk, regular_discount, regular_r_max, points_half, reversion, price_step, pressure_weight,
     accept_r, accept_pressure, points_decay) = _rule_values(rules)
    n = r.shape[0]
    f_open = np.flatnonzero(partner.ravel() >= 0)         # open slots (flat i * K + k)
    f_neg = f_sent
    sk = f_neg - si * kk
    interesting = need >= 1.0
    g = out_good[si]
    # ---- step 1: prices
    r_s, r_b = r[si], r[sj]
    floor = out_cost[si]
    c = cap[g]
    stock_p = np.clip(hold[si, g] / np.maximum(2.0 * batch_units[si], 1.0), 0.0, 1.0)
    hunger = np.clip(1.0 - hold[si, food] / np.maximum(food_target[si], 1.0), 0.0, 1.0)
    press = np.maximum(stock_p, hunger)
    regular = regular_rule(points[si, sk], points_half, np.maximum)
    margin = margin_rule(r_s, regular, discount_rule(r_s, regular_discount, regular_r_max, np.clip), margin_base,
                         margin_risk, np.clip)
    first_now = first_contact_rule(floor, c, margin, np.maximum)
    last = list_price[si, sk]
    rep = ~np.isnan(last)
    lp = first_now.copy()
    if rep.any():
        lp[rep] = repeat_rule(last[rep], first_now[rep], outcome[si, sk][rep], r_s[rep], press[rep], floor[rep], c[rep],
                              reversion, price_step, np.where, np.maximum, np.clip)
    learned_s = learned[si]
    if learned_s.any():   # channel_market_v0's convention: ref price + a x span, never under the floor
        lp = np.where(learned_s, np.clip(ref[g] + ask[si] * c, floor, np.maximum(c, floor)), lp)
    p1 = np.minimum(pressured_rule(lp, floor, press, pressure_weight, np.clip), np.maximum(c, floor))
    if learned_s.any():   # a learned ask is the opening price itself (no rule pressure)
        p1 = np.where(learned_s, lp, p1)
    # ---- answers (the IF-chain; a learned buyer accepts up to its bid)
    last_b = last_paid[sj, np.where(is_input, 0, 1)]
    b_press = np.clip(np.maximum(need / np.maximum(target, 1.0), 1.0 - vital[sj]), 0.0, 1.0)
    restrained = restrained_rule(r_b, b_press, accept_r, accept_pressure, np.clip)
    unit_pkg = pkg[g]
    learned_b = learned[sj]
    bid_open = np.clip(ref[g] + bid[sj] * c, 0.0, c)    # ref price + b x span, in [0, cap]
    thr = bid_open + 0.5 * (concession[sj] + 1.0) * (c - bid_open)   # conceded toward the limit (the cap)

    def answer(q):
        afford = money[sj] >= q * unit_pkg
        rule = buys(decision_rule(interesting, afford, np.isnan(last_b), q, last_b, restrained, np.where, np.isnan,
                                  np.logical_not))
        return np.where(learned_b, interesting & afford & (q <= thr), rule)

    acc1 = answer(p1)
    # ---- step 2: a rejected offer, re-priced lower, sent again
    again = ~acc1
    p2 = p1.copy()
    if again.any():
        lp2 = repeat_rule(lp[again], first_now[again], REJECTED, r_s[again], press[again], floor[again], c[again],
                          reversion, price_step, np.where, np.maximum, np.clip)
        p2[again] = np.minimum(pressured_rule(lp2, floor[again], press[again], pressure_weight, np.clip), p1[again])
        lp[again] = lp2
    if learned_s.any():   # a learned seller's second price: conceded from its ask toward its floor
        p2 = np.where(learned_s & again, p1 - 0.5 * (concession[si] + 1.0) * np.maximum(p1 - floor, 0.0), p2)
    acc2 = again & answer(p2)
    accepted = acc1 | acc2
    paid = np.where(acc1, p1, p2)
    # ---- sale: seller's highest accepted prices first, one package each up to the buyer's need
    a, give = _sale_numpy(accepted, si, sj, paid, need, unit_pkg, packages, money)
    t_seller, t_buyer, t_good, t_qty, t_price, t_slot = si[a], sj[a], g[a], give * unit_pkg[a], paid[a], f_neg[a]
    value = t_qty * t_price
    # ---- move money and goods
    np.add.at(money, t_seller, value)
    np.subtract.at(money, t_buyer, value)
    np.subtract.at(hold, (t_seller, t_good), t_qty)
    np.add.at(hold, (t_buyer, t_good), t_qty)
    inp = t_good == in_good[t_buyer]
    if inp.any():
        who = t_buyer[inp]
        q = np.bincount(who, weights=t_qty[inp], minlength=n)
        m = np.bincount(who, weights=value[inp], minlength=n)
        u = np.flatnonzero(q > 0)
        add_lots(lot_qty, lot_cost, u, q[u], m[u] / q[u])
        last_paid[u, 0] = m[u] / q[u]
    fd = ~inp
    if fd.any():
        who = t_buyer[fd]
        q = np.bincount(who, weights=t_qty[fd], minlength=n)
        m = np.bincount(who, weights=value[fd], minlength=n)
        u = np.flatnonzero(q > 0)
        last_paid[u, 1] = m[u] / q[u]
    # ---- slot memory: history of the slots that traded, points decay where there are points
    P, NT, VS, TF, TL = points.ravel(), n_tr.ravel(), value_sum.ravel(), t_first.ravel(), t_last.ravel()
    sl = t_slot                                      # one trade per slot and day
    TF[sl] = np.where(NT[sl] == 0, t_now, TF[sl])
    NT[sl] += 1.0
    VS[sl] += value
    TL[sl] = t_now
    P[sl] += value
    traded_f = np.zeros(n * kk, dtype=bool)
    traded_f[sl] = True
    _decay_numpy(P, NT, VS, TF, TL, r, traded_f, f_open, kk, points_decay)
    outcome.ravel()[f_neg] = np.where(traded_f[f_neg], ACCEPTED, REJECTED)
    list_price.ravel()[f_neg] = lp
    offered.ravel()[f_neg] = True
    # the seller's current price: mean of the prices it sent today (unchanged if it sent none)
    cnt = np.bincount(si, minlength=n)
    tot = np.bincount(si, weights=paid, minlength=n)
    price[:] = np.where(cnt > 0, tot / np.maximum(cnt, 1), price)
    return ((t_seller, t_buyer, t_good, t_qty, t_price, t_slot),
            (np.concatenate([g, g[again]]), np.concatenate([p1, p2[again]]), np.concatenate([acc1, acc2[again]])))


def _offers_loop(f_sent, si, sj, need, target, is_input, kk, t_now, food, rules, r, out_good,
                 in_good, out_cost, vital, hold, money, price, last_paid, lot_qty, lot_cost, points, n_tr, value_sum,
                 t_first, t_last, list_price, outcome, offered, partner, held, held_a, learned, ask, bid, concession,
                 ref, cap, pkg, packages, food_target, batch_units):
    """`_offers_numpy` one offer at a time in one pass (compiled): the same rules (`risk_rules.*_rule`
    with their scalar operations), the same float operations in the same order, so the same numbers."""
    (margin_base, margin_risk, regular_discount, regular_r_max, points_half, reversion, price_step, pressure_weight,
     accept_r, accept_pressure, points_decay) = _rule_values(rules)
    n = r.shape[0]
    LP = list_price.reshape(-1)
    OC = outcome.reshape(-1)
    PT = points.reshape(-1)
    OF = offered.reshape(-1)
    m = f_sent.shape[0]
    fs, cj, nd = f_sent, sj, need
    lp = np.empty(m)
    p1 = np.empty(m)
    p2 = np.empty(m)
    acc1 = np.empty(m, np.bool_)
    acc2 = np.empty(m, np.bool_)
    accepted = np.empty(m, np.bool_)
    paid = np.empty(m)
    unit_pkg = np.empty(m)
    for k in prange(m):                      # each offer priced and answered on its own (threaded)
        f = f_sent[k]
        a = si[k]
        b = sj[k]
        if k + _AHEAD < m:                   # the slot lines of the offer a few on (rows scattered over MB)
            f_on = f_sent[k + _AHEAD]
            prefetch(PT, f_on)
            prefetch(LP, f_on)
            prefetch(OC, f_on)
        g = out_good[a]
        # ---- step 1: prices
        r_s = r[a]
        floor = out_cost[a]
        c = cap[g]
        stock_p = _clip(hold[a, g] / _max(2.0 * batch_units[a], 1.0), 0.0, 1.0)
        hunger = _clip(1.0 - hold[a, food] / _max(food_target[a], 1.0), 0.0, 1.0)
        press = _max(stock_p, hunger)
        regular = _regular(PT[f], points_half, _max)
        margin = _margin(r_s, regular, _discount(r_s, regular_discount, regular_r_max, _clip), margin_base,
                         margin_risk, _clip)
        first_now = _first(floor, c, margin, _max)
        last = LP[f]
        q = first_now
        if last == last:
            q = _repeat(last, first_now, OC[f], r_s, press, floor, c, reversion, price_step, _where, _max, _clip_to)
        if learned[a]:
            q = _clip_to(ref[g] + ask[a] * c, floor, _max(c, floor))
        ceiling = _max(c, floor)
        q1 = _min(_pressured(q, floor, press, pressure_weight, _clip), ceiling)
        if learned[a]:
            q1 = q
        # ---- answers
        last_b = last_paid[b, 0] if is_input[k] else last_paid[b, 1]
        b_press = _clip(_max(need[k] / _max(target[k], 1.0), 1.0 - vital[b]), 0.0, 1.0)
        restrained = _restrained(r[b], b_press, accept_r, accept_pressure, _clip)
        u = pkg[g]
        unit_pkg[k] = u
        interesting = need[k] >= 1.0
        thr = 0.0
        if learned[b]:
            bid_open = _clip_to(ref[g] + bid[b] * c, 0.0, c)
            thr = bid_open + 0.5 * (concession[b] + 1.0) * (c - bid_open)
        afford = money[b] >= q1 * u
        if learned[b]:
            yes1 = interesting and afford and q1 <= thr
        else:
            d = _decision(interesting, afford, last_b != last_b, q1, last_b, restrained, _where, _isnan, _not)
            yes1 = d == FIRST or d == BARGAIN or d == ACCEPT
        q2 = q1
        yes2 = False
        if not yes1:   # ---- step 2: re-priced lower, sent again
            q = _repeat(q, first_now, REJECTED, r_s, press, floor, c, reversion, price_step, _where, _max, _clip_to)
            q2 = _min(_pressured(q, floor, press, pressure_weight, _clip), q1)
            if learned[a]:
                q2 = q1 - 0.5 * (concession[a] + 1.0) * _max(q1 - floor, 0.0)
            afford = money[b] >= q2 * u
            if learned[b]:
                yes2 = interesting and afford and q2 <= thr
            else:
                d = _decision(interesting, afford, last_b != last_b, q2, last_b, restrained, _where, _isnan, _not)
                yes2 = d == FIRST or d == BARGAIN or d == ACCEPT
        lp[k] = q
        p1[k] = q1
        p2[k] = q2
        acc1[k] = yes1
        acc2[k] = yes2
        accepted[k] = yes1 or yes2
        paid[k] = q1 if yes1 else q2
    # ---- sale
    a_idx, give = _sale_jit(accepted, si, cj, paid, nd, unit_pkg, packages, money)
    t = a_idx.shape[0]
    t_seller = np.empty(t, np.int64)
    t_buyer = np.empty(t, np.int64)
    t_good = np.empty(t, np.int64)
    t_qty = np.empty(t)
    t_price = np.empty(t)
    t_slot = np.empty(t, np.int64)
    value = np.empty(t)
    for x in range(t):                       # ---- move money and goods (the order of np.add.at / np.subtract.at)
        k = a_idx[x]
        t_seller[x] = si[k]
        t_buyer[x] = cj[k]
        t_good[x] = out_good[si[k]]
        t_qty[x] = give[x] * unit_pkg[k]
        t_price[x] = paid[k]
        t_slot[x] = fs[k]
        value[x] = t_qty[x] * t_price[x]
        money[t_seller[x]] += value[x]
    for x in range(t):
        money[t_buyer[x]] -= value[x]
        hold[t_seller[x], t_good[x]] -= t_qty[x]
    # per buyer (the sale lists the trades by buyer), in trade order: the goods it receives; its input lots
    # and last prices paid (input, food) from its day's quantity and value of each, summed over its run of
    # trades (the twin's bincounts sum the same); the traded slots' history
    NT, VS, TF, TL = n_tr.reshape(-1), value_sum.reshape(-1), t_first.reshape(-1), t_last.reshape(-1)
    traded = np.zeros(n * kk, np.bool_)
    n_goods = hold.shape[1]
    n_lots = lot_qty.shape[1]
    x = 0
    while x < t:
        b = t_buyer[x]
        q_in = 0.0
        m_in = 0.0
        q_fd = 0.0
        m_fd = 0.0
        while x < t and t_buyer[x] == b:
            if x + _AHEAD < t:               # the lines a few trades on: their misses overlap this trade's work
                b_on = t_buyer[x + _AHEAD]
                f_on = t_slot[x + _AHEAD]
                prefetch(hold, b_on * n_goods)
                prefetch(lot_qty, b_on * n_lots)
                prefetch(lot_cost, b_on * n_lots)
                prefetch(last_paid, b_on * 2)
                prefetch(NT, f_on)
                prefetch(VS, f_on)
                prefetch(TF, f_on)
                prefetch(PT, f_on)
            hold[b, t_good[x]] += t_qty[x]
            if t_good[x] == in_good[b]:
                q_in += t_qty[x]
                m_in += value[x]
            else:
                q_fd += t_qty[x]
                m_fd += value[x]
            f = t_slot[x]
            if NT[f] == 0:
                TF[f] = t_now
            NT[f] += 1.0
            VS[f] += value[x]
            TL[f] = t_now
            PT[f] += value[x]
            traded[f] = True
            x += 1
        _paid(lot_qty, lot_cost, last_paid, b, q_in, m_in, q_fd, m_fd)
    # points decay: only the open slots that held points before the sale (`held`, from `sent_kernel`) can
    # decay (a slot without points that traded today is not idle); the rule keeps a traded slot's points
    for x in prange(held.shape[0]):
        f = held[x]
        if x + 2 * _AHEAD < held.shape[0]:   # the slot lines of the held slot a few on (five arrays)
            f_on = held[x + 2 * _AHEAD]
            prefetch(PT, f_on)
            prefetch(NT, f_on)
            prefetch(VS, f_on)
            prefetch(TF, f_on)
            prefetch(TL, f_on)
        PT[f] = _decay_inline(PT[f], np.float64(NT[f]), VS[f], np.float64(TF[f]), np.float64(TL[f]), r[held_a[x]],
                              not traded[f], points_decay, _where, _max)
    # outcomes, list prices, offered flags; each seller's current price, the mean of the prices it sent today
    # (its offers are one run: they come in slot order); the day's offers, a rejected one's second step after
    # all the first steps
    n2 = 0
    for k in range(m):
        n2 += not acc1[k]
    o_good = np.empty(m + n2, np.int64)
    o_price = np.empty(m + n2)
    o_acc = np.empty(m + n2, np.bool_)
    x = m
    cnt = 0
    tot = 0.0
    for k in range(m):                       # one flat pass (a seller's run is ~2 offers: no loop per run)
        a = si[k]
        first = k == 0 or si[k - 1] != a
        cnt = (0 if first else cnt) + 1
        tot = (0.0 if first else tot) + paid[k]
        g = out_good[a]
        f = fs[k]
        if k + _AHEAD < m:                   # the slot lines of the offer a few on
            f_on = fs[k + _AHEAD]
            prefetch(OC, f_on)
            prefetch(LP, f_on)
            prefetch(OF, f_on)
            prefetch(traded, f_on)
        OC[f] = ACCEPTED if traded[f] else REJECTED
        LP[f] = lp[k]
        OF[f] = True
        o_good[k] = g
        o_price[k] = p1[k]
        o_acc[k] = acc1[k]
        if not acc1[k]:
            o_good[x] = g
            o_price[x] = p2[k]
            o_acc[x] = acc2[k]
            x += 1
        price[a] = tot / max(cnt, 1)         # the run's last offer writes its mean
    return (t_seller, t_buyer, t_good, t_qty, t_price, t_slot), (o_good, o_price, o_acc)


def _sort_run_loop(idx, key, val, lo, hi, descending):
    """Stable insertion sort of the run lo..hi-1 of `idx`, `key`, `val` by `key`, highest first when
    `descending` (the sale's runs are short and often sorted already)."""
    for i in range(lo + 1, hi):
        x = idx[i]
        v = key[i]
        w = val[i]
        j = i - 1
        while j >= lo and ((key[j] < v) if descending else (key[j] > v)):
            idx[j + 1] = idx[j]
            key[j + 1] = key[j]
            val[j + 1] = val[j]
            j -= 1
        idx[j + 1] = x
        key[j + 1] = v
        val[j + 1] = w


def _paid_loop(lot_qty, lot_cost, last_paid, b, q_in, m_in, q_fd, m_fd):
    """Buyer `b`'s day of purchases booked: its input as a cost lot and the last unit prices it paid
    for input and food (what it bought: quantity and value of each)."""
    if q_in > 0:
        uc = m_in / q_in
        _add_lot(lot_qty, lot_cost, b, q_in, uc)
        last_paid[b, 0] = uc
    if q_fd > 0:
        last_paid[b, 1] = m_fd / q_fd


def _add_lot_loop(lot_qty, lot_cost, w, qty, unit_cost):
    """`production.add_lots` for one agent `w` (the same choice of lot and the same float operations)."""
    lots = lot_qty.shape[1]
    slot = -1
    for s in range(lots):
        if lot_qty[w, s] <= 0:
            slot = s
            break
    if slot < 0:                     # np.argmax: the first largest cost (a NaN counts as largest)
        slot = 0
        best = lot_cost[w, 0]
        for s in range(1, lots):
            v = lot_cost[w, s]
            if best != best:
                break
            if v > best or v != v:
                slot = s
                best = v
    old_q = lot_qty[w, slot]
    old_c = lot_cost[w, slot]
    new_q = old_q + qty
    if new_q > 0:
        lot_cost[w, slot] = (old_q * old_c + qty * unit_cost) / _max(new_q, 1e-12)
    else:
        lot_cost[w, slot] = unit_cost
    lot_qty[w, slot] = new_q


_AHEAD = 16                # offers / trades ahead whose slot lines the offers' passes ask the cache for (`prefetch`)
_NO_DRAWS = np.zeros(0)
_NO_STATE = np.zeros(0, np.uint64)
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645   # PCG64's 128-bit LCG multiplier (numpy's, `envs/streams.py`)
_MASK128 = (1 << 128) - 1


def _keep_draws(bg: np.random.PCG64, before: dict, used: int) -> None:
    """Set the PCG64 `bg`, whose state was `before` ahead of some doubles drawn, to where drawing only the
    first `used` of them leaves it: each double is one step of its 128-bit LCG (s' = s * MULT + inc), so
    the state `used` steps on (the LCG's jump, by halving: log2(used) steps); its 32-bit buffer
    (`has_uint32`, `uinteger`) is as it was (doubles do not use it)."""
    mult, plus, acc_mult, acc_plus = _PCG_MULT, before["state"]["inc"], 1, 0
    d = used
    while d > 0:
        if d & 1:
            acc_mult = (acc_mult * mult) & _MASK128
            acc_plus = (acc_plus * mult + plus) & _MASK128
        plus = ((mult + 1) * plus) & _MASK128
        mult = (mult * mult) & _MASK128
        d >>= 1
    before["state"]["state"] = (acc_mult * before["state"]["state"] + acc_plus) & _MASK128
    bg.state = before


def _gives_back(bg) -> bool:
    """Whether `_keep_draws` can give back the doubles a generator drew beyond those used (PCG64)."""
    return type(bg) is np.random.PCG64


def _slots_in_range(st, radius: float) -> int:
    """How many open customer slots are in range (the advertising draws of the day), with NumPy: for a
    generator other than PCG64, whose draws cannot be given back."""
    rows, slots = np.nonzero(st.partner >= 0)
    b = st.partner[rows, slots]
    dx = st.xy[b, 0] - st.xy[rows, 0]
    dy = st.xy[b, 1] - st.xy[rows, 1]
    return int(np.count_nonzero(dx * dx + dy * dy < radius * radius))


_RULE_NUMBERS: dict = {}


def _rule_numbers(rp: RiskParams) -> np.ndarray:
    """`rp`'s numbers in `_RULES` order (RiskParams is frozen: kept per value, a few entries; read only)."""
    got = _RULE_NUMBERS.get(rp)
    if got is None:
        if len(_RULE_NUMBERS) >= 64:
            _RULE_NUMBERS.clear()
        got = _RULE_NUMBERS[rp] = np.array([getattr(rp, name) for name in _RULES], np.float64)
    return got


def negotiate(st, radius: float, rp: RiskParams, *, cap: np.ndarray, pkg: np.ndarray,
              food: int, food_scale: float, input_batches: float, batch: np.ndarray, advertising: float,
              learned: np.ndarray, ask: np.ndarray, bid: np.ndarray, qty: np.ndarray,
              concession: np.ndarray, ref: np.ndarray, reach: "np.ndarray | None" = None):
    """One day of offers, answers and sales, in place. Returns (DayTrades, DayOffers). `reach`: the
    sellers' `slot_reach` (from `refresh_slots`; computed here when None). Each agent's food target is
    `food_scale` x (1.5 - r), its input target `input_batches` of its kind's `batch` (in units; none without
    an input)."""
    n, kk = st.partner.shape
    if reach is None:
        reach = slot_reach(st.partner)
    # packages to sell and the customers' rows; the offers sent, one advertising draw a slot in range (drawn
    # for a bound on them, the open slots, and the generator left as if it had drawn only those it used)
    food_target, batch_units = np.empty(n), np.empty(n)      # written by the setup pass
    packages, cu = setup_kernel(
        xy=st.xy, alive=st.alive, hold=st.hold, out_good=st.out_good, in_good=st.in_good, learned=learned,
        qty=qty, pkg=pkg, food=int(food), r=st.r, kind=st.kind, batch=batch, food_scale=float(food_scale),
        input_batches=float(input_batches), food_target=food_target, batch_units=batch_units)
    state = state_view(st.rng)            # a live PCG64: the kernel draws the doubles it needs itself
    before = None
    if state is not None:
        draws = _NO_DRAWS
    else:
        state = _NO_STATE
        bg = st.rng.bit_generator
        before = bg.state if _gives_back(bg) else None
        draws = st.rng.random(int(reach.sum()) if before is not None else _slots_in_range(st, radius))
    f_sent, si, sj, need, target, is_input, held, held_a, used = sent_kernel(
        partner=st.partner, reach=reach, xy=st.xy, radius=float(radius), alive=st.alive, out_good=st.out_good,
        food=int(food), food_target=food_target, packages=packages, cu=cu, draws=draws, state=state, offered=st.offered,
        advertising=float(advertising), points=st.points)
    if before is not None:
        _keep_draws(bg, before, int(used))
    price = st.price.copy()
    tr, of = offers_kernel(
        f_sent=f_sent, si=si, sj=sj, need=need, target=target, is_input=is_input, kk=kk, t_now=int(st.t),
        food=int(food),
        rules=_rule_numbers(rp), r=st.r, out_good=st.out_good,
        in_good=st.in_good, out_cost=st.out_cost, vital=st.vital, hold=st.hold, money=st.money, price=price,
        last_paid=st.last_paid, lot_qty=st.lot_qty, lot_cost=st.lot_cost, points=st.points, n_tr=st.n_tr,
        value_sum=st.value_sum, t_first=st.t_first, t_last=st.t_last, list_price=st.list_price, outcome=st.outcome,
        offered=st.offered, partner=st.partner, held=held, held_a=held_a, learned=learned, ask=ask, bid=bid,
        concession=concession,
        ref=ref, cap=cap, pkg=pkg, packages=packages, food_target=food_target, batch_units=batch_units)
    st.price = price
    return DayTrades(*tr), DayOffers(*of)


_regular, _discount, _margin, _first, _repeat, _pressured, _restrained, _decision, _decay_inline = (
    jit(f, inline=True) or f for f in (regular_rule, discount_rule, margin_rule, first_contact_rule, repeat_rule,
                                       pressured_rule, restrained_rule, decision_rule, decay_rule))
_clip, _clip_to, _min, _isnan, _not = (jit(f) or f for f in (scalar_clip, scalar_clip_to, scalar_minimum, scalar_isnan,
                                                              scalar_not))
_max, _where = _max1, _where1
_sort_run = jit(_sort_run_loop, inline=True) or _sort_run_loop
_add_lot = jit(_add_lot_loop, inline=True) or _add_lot_loop   # inlined: no call (and array references) per buyer
_paid = jit(_paid_loop, inline=True) or _paid_loop
_rule_values = jit(_rule_values) or _rule_values
offers_kernel = kernel("supply_chain_offers", _offers_numpy, _offers_loop, split="f_sent", min_items=6_000)


__all__ = ["refresh_slots", "slot_reach", "negotiate", "sent_kernel", "DayTrades", "DayOffers", "refresh_kernel", "setup_kernel", "offers_kernel"]
