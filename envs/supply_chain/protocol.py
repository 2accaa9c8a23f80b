"""Trading: customer slots, offers and answers (the two-step protocol of Table 1), the sale.

Customer slots (paper 3.4): every agent keeps a list of `contacts` customers, the economy's
channels. A neighbour that buys its product (the next kind in the loop; every kind buys food
from Sellers) takes a free slot, up to two new customers a day; a slot lapses after `lapse_days` out of
range, after 2 x `lapse_days` without a transaction (relations form and lapse with proximity
and trading history), or when either side dies.

One day of negotiation over the open slots in range (vectorized over slots, the rules are
`envs.risk_rules`, the same functions the energy market's risk-factor negotiator uses):

1. Offer (Making an offer): a seller holding at least one package offers to a customer it has
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
                          margin_share, preferential_discount, pressured_price, purchase_decision, regular_share,
                          repeat_price)
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


def refresh_slots(st, i: np.ndarray, j: np.ndarray, customer: np.ndarray, radius: float, lapse_days: int,
                  per_day: int = 2) -> np.ndarray:
    """Lapse and open customer slots in place; returns [N, K] distance of each slot's customer."""
    n, k = st.partner.shape
    has = st.partner >= 0
    p = np.maximum(st.partner, 0)
    d = np.linalg.norm(st.xy[p] - st.xy[:, None, :], axis=2)
    d = np.where(has, d, np.inf)
    out = has & (d >= radius)
    st.away = np.where(out, st.away + 1, 0)
    idle = st.t - st.t_last > 2 * lapse_days          # no transaction for twice the lapse time
    gone = has & (~st.alive[p] | ~st.alive[:, None] | (st.away > lapse_days) | idle)
    if gone.any():
        for arr, val in ((st.partner, -1), (st.points, 0.0), (st.n_tr, 0.0), (st.value_sum, 0.0), (st.t_first, 0.0),
                         (st.t_last, 0.0), (st.list_price, np.nan), (st.outcome, 0), (st.offered, False),
                         (st.away, 0)):
            arr[gone] = val
        d = np.where(gone, np.inf, d)
    # up to `per_day` new customers a day per seller: the last candidate pairs not yet customers
    ci, cj = i[customer], j[customer]
    for _ in range(per_day):
        if ci.size == 0:
            break
        known = (st.partner[ci] == cj[:, None]).any(axis=1)
        ci, cj = ci[~known], cj[~known]
        free = st.partner < 0
        pick = np.full(n, -1, dtype=np.int64)
        pick[ci] = cj
        who = np.flatnonzero((pick >= 0) & free.any(axis=1))
        if who.size == 0:
            break
        slot = np.argmax(free[who], axis=1)
        st.partner[who, slot] = pick[who]
        st.list_price[who, slot] = np.nan
        st.t_last[who, slot] = st.t                     # a new relation counts as active today
        d[who, slot] = np.linalg.norm(st.xy[pick[who]] - st.xy[who], axis=1)
    return d


def _group_cumsum(group: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative sum of x within runs of equal `group` (sorted), exclusive of the element."""
    c = np.cumsum(x) - x
    if x.size == 0:
        return c
    start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run = np.repeat(np.arange(start.size), np.diff(np.r_[start, x.size]))
    return c - c[start][run]


def negotiate(st, dist: np.ndarray, radius: float, rp: RiskParams, *, cap: np.ndarray, pkg: np.ndarray,
              food: int, food_target: np.ndarray, input_target: np.ndarray, batch_units: np.ndarray,
              advertising: float, learned: np.ndarray, ask: np.ndarray, bid: np.ndarray, qty: np.ndarray):
    """One day of offers, answers and sales, in place. Returns (DayTrades, DayOffers)."""
    n, kk = st.partner.shape
    rows = np.arange(n)
    flat_ok = (st.partner >= 0) & (dist < radius)
    si, sk = np.nonzero(flat_ok)
    sj = st.partner[si, sk]
    g = st.out_good[si]
    packages = np.floor(st.hold[rows, st.out_good] / pkg[st.out_good])
    packages = np.where(learned, np.floor(packages * (qty + 1.0) * 0.5), packages)
    # buyer's need (units) of good g
    is_input = g == st.in_good[sj]
    is_food = (g == food) & (st.out_good[sj] != food)
    own_stock = np.where(is_input, st.hold[sj, np.maximum(st.in_good[sj], 0)], st.hold[sj, food])
    target = np.where(is_input, input_target[sj], food_target[sj])
    # input is wanted only while the product sells (its stock under two batches)
    unsold = st.hold[sj, st.out_good[sj]] >= 2.0 * batch_units[sj]
    need = np.where((is_input & ~unsold) | is_food, np.maximum(target - own_stock, 0.0), 0.0)
    need = np.where(learned[sj], need * (qty[sj] + 1.0) * 0.5, need)
    interesting = need >= 1.0
    eligible = st.alive[si] & st.alive[sj] & (packages[si] >= 1) & interesting
    draws = st.rng.random(si.size)
    sent = advertise(st.offered[si, sk], eligible, draws, advertising)
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
    # ---- slot memory: points, history, outcome, list price, offered
    traded = np.zeros(n * kk, dtype=bool)
    traded[tr.slot] = True
    val = np.bincount(tr.slot, weights=value, minlength=n * kk).reshape(n, kk)
    traded = traded.reshape(n, kk)
    t_now = float(st.t)
    new = traded & (st.n_tr == 0)
    st.t_first = np.where(new, t_now, st.t_first)
    st.n_tr = st.n_tr + traded
    st.value_sum = st.value_sum + val
    st.t_last = np.where(traded, t_now, st.t_last)
    r_rows = np.broadcast_to(st.r[:, None], st.points.shape)
    st.points = decay_points(st.points + val, st.n_tr, st.value_sum, st.t_first, st.t_last, r_rows, ~traded, rp)
    sent_m = np.zeros((n, kk), dtype=bool)
    sent_m[si[sent], sk[sent]] = True
    st.outcome = np.where(sent_m, np.where(traded, ACCEPTED, REJECTED), st.outcome).astype(np.int8)
    st.list_price[si[sent], sk[sent]] = lp[sent]
    st.offered |= sent_m
    # the seller's current price: mean of the prices it sent today (unchanged if it sent none)
    cnt = np.bincount(si[sent], minlength=n)
    tot = np.bincount(si[sent], weights=np.where(acc1[sent], p1[sent], p2[sent]), minlength=n)
    st.price = np.where(cnt > 0, tot / np.maximum(cnt, 1), st.price)
    offers = DayOffers(np.concatenate([g[sent], g[again]]), np.concatenate([p1[sent], p2[again]]),
                       np.concatenate([acc1[sent], acc2[again]]))
    return tr, offers


__all__ = ["refresh_slots", "negotiate", "DayTrades", "DayOffers", "margin_share"]
