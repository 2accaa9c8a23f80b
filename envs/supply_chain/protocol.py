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

Learned agents: as a seller, the `ask` action sets the margin share (a + 1) / 2 in place of
the first-contact/repeat rule (regular-customer cuts still apply) and `quantity` the share of
its packages offered; as a buyer, `bid` sets the highest price it accepts, (b + 1) / 2 x cap,
and `quantity` the share of its need it buys.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..risk_rules import (ACCEPTED, REJECTED, RiskParams, advertise, buys, decay_points, first_contact_price,
                          preferential_discount, pressured_price, purchase_decision, regular_share,
                          repeat_price)
from ..compiled import Kernel, jit
from .production import add_lots


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
                  ci, cj, radius, lapse_days, per_day, t):
    """Lapse and open customer slots in place (loops; compiled by numba, the same code as its twin)."""
    n, k = partner.shape
    for a in range(n):
        for s in range(k):
            p = partner[a, s]
            if p < 0:
                continue
            dx = xy[p, 0] - xy[a, 0]
            dy = xy[p, 1] - xy[a, 1]
            if dx * dx + dy * dy >= radius * radius:
                away[a, s] += 1
            else:
                away[a, s] = 0
            if (not alive[p]) or (not alive[a]) or away[a, s] > lapse_days or t - t_last[a, s] > 2 * lapse_days:
                partner[a, s] = -1
                away[a, s] = 0
                t_last[a, s] = 0.0
                points[a, s] = 0.0
                n_tr[a, s] = 0.0
                value_sum[a, s] = 0.0
                t_first[a, s] = 0.0
                list_price[a, s] = np.nan
                outcome[a, s] = 0
                offered[a, s] = False
    added = np.zeros(n, np.int64)
    for c in range(ci.shape[0]):
        a = ci[c]
        b = cj[c]
        if added[a] >= per_day:
            continue
        free = -1
        known = False
        for s in range(k):
            if partner[a, s] == b:
                known = True
                break
            if free < 0 and partner[a, s] < 0:
                free = s
        if known or free < 0:
            continue
        partner[a, free] = b
        t_last[a, free] = t
        list_price[a, free] = np.nan
        added[a] += 1


refresh_kernel = Kernel("supply_chain_refresh_slots", _refresh_loop, jit(_refresh_loop))


def refresh_slots(st, i: np.ndarray, j: np.ndarray, customer: np.ndarray, radius: float, lapse_days: int,
                  per_day: int = 6) -> None:
    """Lapse customer slots (out of range too long, idle too long, a side dead) and open new ones
    (up to `per_day` a seller a day, candidates in neighbour order), in place."""
    refresh_kernel(partner=st.partner, away=st.away, t_last=st.t_last, points=st.points, n_tr=st.n_tr,
                   value_sum=st.value_sum, t_first=st.t_first, list_price=st.list_price, outcome=st.outcome,
                   offered=st.offered, xy=st.xy, alive=st.alive, ci=i[customer], cj=j[customer], radius=float(radius),
                   lapse_days=int(lapse_days), per_day=int(per_day), t=float(st.t))


def _group_cumsum(group: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative sum of x within runs of equal `group` (sorted), exclusive of the element."""
    c = np.cumsum(x) - x
    if x.size == 0:
        return c
    start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run = np.repeat(np.arange(start.size), np.diff(np.r_[start, x.size]))
    return c - c[start][run]


def _setup_loop(partner, xy, radius, alive, hold, out_good, in_good, learned, qty, packages, food, food_target,
                input_target, batch_units):
    """Per open slot in range (flat index, customer): is an offer worth sending (both alive, a package
    to sell, the customer needs >= 1 unit), the customer's need and target of the seller's good,
    whether it is the customer's input. Input is needed only while the customer's product sells (under
    two batches unsold); a learned customer buys the share (q + 1) / 2 of its need. Loops, compiled."""
    n, k = partner.shape
    r2 = radius * radius
    m = 0
    for a in range(n):
        for s in range(k):
            b = partner[a, s]
            if b >= 0:
                dx = xy[b, 0] - xy[a, 0]
                dy = xy[b, 1] - xy[a, 1]
                if dx * dx + dy * dy < r2:
                    m += 1
    f = np.empty(m, np.int64)
    cust = np.empty(m, np.int64)
    eligible = np.empty(m, np.bool_)
    need = np.empty(m)
    target = np.empty(m)
    is_input = np.empty(m, np.bool_)
    c = 0
    for a in range(n):
        g = out_good[a]
        for s in range(k):
            b = partner[a, s]
            if b < 0:
                continue
            dx = xy[b, 0] - xy[a, 0]
            dy = xy[b, 1] - xy[a, 1]
            if dx * dx + dy * dy >= r2:
                continue
            inp = g == in_good[b]
            fd = (g == food) and (out_good[b] != food)
            if inp:
                tgt = input_target[b]
                own = hold[b, in_good[b]]
                wanted = hold[b, out_good[b]] < 2.0 * batch_units[b]
            else:
                tgt = food_target[b]
                own = hold[b, food]
                wanted = fd
            nd = max(tgt - own, 0.0) if wanted else 0.0
            if learned[b]:
                nd = nd * (qty[b] + 1.0) * 0.5
            f[c] = a * k + s
            cust[c] = b
            need[c] = nd
            target[c] = tgt
            is_input[c] = inp
            eligible[c] = alive[a] and alive[b] and packages[a] >= 1.0 and nd >= 1.0
            c += 1
    return f, cust, eligible, need, target, is_input


setup_kernel = Kernel("supply_chain_offer_setup", _setup_loop, jit(_setup_loop))


def negotiate(st, radius: float, rp: RiskParams, *, cap: np.ndarray, pkg: np.ndarray,
              food: int, food_target: np.ndarray, input_target: np.ndarray, batch_units: np.ndarray,
              advertising: float, learned: np.ndarray, ask: np.ndarray, bid: np.ndarray, qty: np.ndarray):
    """One day of offers, answers and sales, in place. Returns (DayTrades, DayOffers)."""
    n, kk = st.partner.shape
    rows = np.arange(n)
    f_open = np.flatnonzero(st.partner.ravel() >= 0)         # open slots (flat i * K + k)
    # a Seller keeps its own food target for itself (it eats its product)
    keep_own = np.where(st.out_good == food, food_target, 0.0)
    packages = np.floor(np.maximum(st.hold[rows, st.out_good] - keep_own, 0.0) / pkg[st.out_good])
    packages = np.where(learned, np.floor(packages * (qty + 1.0) * 0.5), packages)
    # slots in range, the customer's need of the seller's good, whether an offer is worth sending
    f_neg, sj, eligible, need, target, is_input = setup_kernel(
        partner=st.partner, xy=st.xy, radius=float(radius), alive=st.alive, hold=st.hold, out_good=st.out_good,
        in_good=st.in_good, learned=learned, qty=qty, packages=packages, food=int(food), food_target=food_target,
        input_target=input_target, batch_units=batch_units)
    si, sk = f_neg // kk, f_neg % kk
    g = st.out_good[si]
    interesting = need >= 1.0
    draws = st.rng.random(si.size)
    sent = advertise(st.offered[si, sk], eligible, draws, advertising)
    # from here on only the offers sent
    keep = np.flatnonzero(sent)
    si, sk, sj, g, f_neg = si[keep], sk[keep], sj[keep], g[keep], f_neg[keep]
    is_input, need, interesting, target = is_input[keep], need[keep], interesting[keep], target[keep]
    sent = np.ones(keep.size, dtype=bool)
    # ---- step 1: prices
    r_s, r_b = st.r[si], st.r[sj]
    floor = st.out_cost[si]
    c = cap[g]
    stock_p = np.clip(st.hold[si, g] / np.maximum(2.0 * batch_units[si], 1.0), 0.0, 1.0)
    hunger = np.clip(1.0 - st.hold[si, food] / np.maximum(food_target[si], 1.0), 0.0, 1.0)
    press = np.maximum(stock_p, hunger)
    regular = regular_share(st.points[si, sk], rp)
    first_now = first_contact_price(floor, c, r_s, regular, rp)
    last = st.list_price[si, sk]
    rep = ~np.isnan(last)
    lp = first_now.copy()
    if rep.any():
        lp[rep] = repeat_price(last[rep], first_now[rep], st.outcome[si, sk][rep], r_s[rep], press[rep], floor[rep],
                               c[rep], rp)
    learned_s = learned[si]
    if learned_s.any():
        share = (ask[si] + 1.0) * 0.5 * (1.0 - preferential_discount(r_s, rp) * regular)
        lp = np.where(learned_s, floor + share * np.maximum(c - floor, 0.0), lp)
    p1 = np.minimum(pressured_price(lp, floor, press, rp), np.maximum(c, floor))
    # ---- answers (the IF-chain; a learned buyer accepts up to its bid)
    cat = np.where(is_input, 0, 1)
    last_paid = st.last_paid[sj, cat]
    first = np.isnan(last_paid)
    b_press = np.clip(np.maximum(need / np.maximum(target, 1.0), 1.0 - st.vital[sj]), 0.0, 1.0)
    unit_pkg = pkg[g]
    learned_b = learned[sj]
    thr = (bid[sj] + 1.0) * 0.5 * c

    def answer(price):
        afford = st.money[sj] >= price * unit_pkg
        rule = buys(purchase_decision(interesting, afford, first, price, last_paid, r_b, b_press, rp))
        return sent & np.where(learned_b, interesting & afford & (price <= thr), rule)

    acc1 = answer(p1)
    # ---- step 2: a rejected offer, re-priced lower, sent again
    again = sent & ~acc1
    p2 = p1.copy()
    if again.any():
        lp2 = repeat_price(lp[again], first_now[again], np.full(again.sum(), REJECTED, np.int8), r_s[again],
                           press[again], floor[again], c[again], rp)
        p2[again] = np.minimum(pressured_price(lp2, floor[again], press[again], rp), p1[again])
        lp[again] = lp2
    acc2 = again & answer(p2)
    accepted = acc1 | acc2
    price = np.where(acc1, p1, p2)
    # ---- sale: seller's highest accepted prices first, one package each up to the buyer's need
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
    money_b = st.money[sj[a]]
    affordable = np.floor(np.maximum(money_b - spent_before, 0.0) / np.maximum(unit_pkg[a] * price[a], 1e-12))
    need_pk = np.ceil(np.maximum(need[a] - units_before, 0.0) / unit_pkg[a])
    give = np.minimum(give, np.minimum(affordable, need_pk))
    t = give > 0
    a, give = a[t], give[t]
    tr = DayTrades(si[a], sj[a], g[a], give * unit_pkg[a], price[a], si[a] * kk + sk[a])
    value = tr.qty * tr.price
    # ---- move money and goods
    np.add.at(st.money, tr.seller, value)
    np.subtract.at(st.money, tr.buyer, value)
    np.subtract.at(st.hold, (tr.seller, tr.good), tr.qty)
    np.add.at(st.hold, (tr.buyer, tr.good), tr.qty)
    inp = tr.good == st.in_good[tr.buyer]
    if inp.any():
        who = tr.buyer[inp]
        q = np.bincount(who, weights=tr.qty[inp], minlength=n)
        m = np.bincount(who, weights=value[inp], minlength=n)
        u = np.flatnonzero(q > 0)
        add_lots(st.lot_qty, st.lot_cost, u, q[u], m[u] / q[u])
        st.last_paid[u, 0] = m[u] / q[u]
    fd = ~inp
    if fd.any():
        who = tr.buyer[fd]
        q = np.bincount(who, weights=tr.qty[fd], minlength=n)
        m = np.bincount(who, weights=value[fd], minlength=n)
        u = np.flatnonzero(q > 0)
        st.last_paid[u, 1] = m[u] / q[u]
    # ---- slot memory: history of the slots that traded, points decay where there are points
    t_now = float(st.t)
    P, NT, VS, TF, TL = (st.points.ravel(), st.n_tr.ravel(), st.value_sum.ravel(), st.t_first.ravel(),
                         st.t_last.ravel())
    sl = tr.slot                                     # one trade per slot and day
    TF[sl] = np.where(NT[sl] == 0, t_now, TF[sl])
    NT[sl] += 1.0
    VS[sl] += value
    TL[sl] = t_now
    P[sl] += value
    traded_f = np.zeros(n * kk, dtype=bool)
    traded_f[sl] = True
    f_dec = f_open[P[f_open] > 0]
    P[f_dec] = decay_points(P[f_dec], NT[f_dec], VS[f_dec], TF[f_dec], TL[f_dec], st.r[f_dec // kk],
                            ~traded_f[f_dec], rp)
    f_sent = f_neg[sent]
    st.outcome.ravel()[f_sent] = np.where(traded_f[f_sent], ACCEPTED, REJECTED)
    st.list_price.ravel()[f_sent] = lp[sent]
    st.offered.ravel()[f_sent] = True
    # the seller's current price: mean of the prices it sent today (unchanged if it sent none)
    cnt = np.bincount(si[sent], minlength=n)
    tot = np.bincount(si[sent], weights=np.where(acc1[sent], p1[sent], p2[sent]), minlength=n)
    st.price = np.where(cnt > 0, tot / np.maximum(cnt, 1), st.price)
    offers = DayOffers(np.concatenate([g[sent], g[again]]), np.concatenate([p1[sent], p2[again]]),
                       np.concatenate([acc1[sent], acc2[again]]))
    return tr, offers


__all__ = ["refresh_slots", "negotiate", "DayTrades", "DayOffers", "refresh_kernel", "setup_kernel"]
