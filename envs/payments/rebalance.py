"""Rebalancing: refill a depleted channel side with a circular payment through the graph.

An active agent whose side of an open channel c = (a, y) holds less than `rebalance_below` of the
capacity pays itself around a triangle a -> x -> y -> a: out over one of its own channels with
room (a, x), on over a channel (x, y) of x's, back over c, which moves c's balance toward a. It
sends the amount that restores its side to `liquidity_target` (or less, what the triangle
carries), paying x and y their routing fees (HTLC-style, `htlc`). Its fee limit is
`max_fee_share` of the amount and, when splicing is on, also the splice fee: the baseline rule
rebalances when a cycle exists and costs less than an on-chain splice, and leaves the side to
`splice` otherwise. Triangles are found by a vectorized join over the directed channels (every
depleted side x the owner's out-edges, then a sorted lookup of the edge x -> y), and the widest
one per depleted side is tried, in channel order; O(D * degree * log E).
"""

from __future__ import annotations

import numpy as np

from ..compiled import jit, register
from .graph import out_csr
from .htlc import _pay_routes_into_nb, pay_routes_loop
from .reasons import OK
from .routes import directed_edges


def depleted_sides(u, v, capacity, balance_u, usable, share: float):
    """(owner, channel, other end, need EUR to the target share is computed by the caller) of
    every usable channel side under `share` of its capacity: u sides first, then v sides."""
    low_u = usable & (balance_u < share * capacity)
    low_v = usable & (capacity - balance_u < share * capacity)
    cu, cv = np.flatnonzero(low_u), np.flatnonzero(low_v)
    owner = np.concatenate([u[cu], v[cv]]).astype(np.int64)
    other = np.concatenate([v[cu], u[cv]]).astype(np.int64)
    return owner, np.concatenate([cu, cv]), other


def triangles_numpy(u, v, capacity, balance_u, usable, owner, chan, other, n):
    """(index into the depleted sides [K], first hop a -> x [K], second hop x -> y [K] as directed
    edges 2c / 2c + 1, width [K]) of the widest triangle of each depleted side that has one, in
    the depleted sides' order; ties go to the owner's lowest out-edge, then x's lowest."""
    src, dst, side, ok = directed_edges(u, v, capacity, balance_u, usable)
    d_ok = np.flatnonzero(ok & (side > 0.0))
    order = d_ok[np.argsort(src[d_ok], kind="stable")]    # out-edges per node (CSR), in edge order
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src[order], minlength=n), out=indptr[1:])
    counts = indptr[owner + 1] - indptr[owner]
    total = int(counts.sum())
    z = np.zeros(0, dtype=np.int64)
    if total == 0:
        return z, z, z, np.zeros(0)
    which = np.repeat(np.arange(owner.shape[0]), counts)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    first = order[indptr[owner][which] + offs]          # a -> x
    x = dst[first]
    y = other[which]
    fine = (x != y) & (first >> 1 != chan[which])
    which, first, x, y = which[fine], first[fine], x[fine], y[fine]
    keys = src[order] * n + dst[order]                   # the edge x -> y, by a sorted lookup
    korder = np.argsort(keys, kind="stable")
    sorted_keys = keys[korder]
    want = x * n + y
    pos = np.searchsorted(sorted_keys, want)
    found = (pos < sorted_keys.shape[0]) & (sorted_keys[np.minimum(pos, max(sorted_keys.shape[0] - 1, 0))] == want)
    which, first = which[found], first[found]
    second = order[korder[pos[found]]]                   # x -> y
    width = np.minimum(side[first], side[second])
    if which.shape[0] == 0:
        return z, z, z, np.zeros(0)
    pick = np.lexsort((-width, which))                   # the widest per depleted side
    head = np.ones(pick.shape[0], dtype=bool)
    head[1:] = which[pick][1:] != which[pick][:-1]
    pick = pick[head]
    return which[pick], first[pick], second[pick], width[pick]


@jit
def _triangles_nb(u, v, capacity, balance_u, usable, owner, chan, other, n):  # pragma: no cover - compiled
    e_n = u.shape[0]
    cnt = np.zeros(n + 1, dtype=np.int64)
    for ch in range(e_n):
        if usable[ch]:
            if balance_u[ch] > 0.0:
                cnt[u[ch] + 1] += 1
            if capacity[ch] - balance_u[ch] > 0.0:
                cnt[v[ch] + 1] += 1
    for i in range(n):
        cnt[i + 1] += cnt[i]
    indptr = cnt.copy()
    fill = cnt[:n].copy()
    out_d = np.empty(indptr[n], dtype=np.int64)     # directed edge ids, per source, in edge order
    out_dst = np.empty(indptr[n], dtype=np.int64)
    out_side = np.empty(indptr[n])
    for ch in range(e_n):
        if usable[ch]:
            bu = balance_u[ch]
            if bu > 0.0:
                k = fill[u[ch]]
                out_d[k], out_dst[k], out_side[k] = 2 * ch, v[ch], bu
                fill[u[ch]] = k + 1
            bv = capacity[ch] - bu
            if bv > 0.0:
                k = fill[v[ch]]
                out_d[k], out_dst[k], out_side[k] = 2 * ch + 1, u[ch], bv
                fill[v[ch]] = k + 1
    m = owner.shape[0]
    r_which = np.empty(m, dtype=np.int64)
    r_first = np.empty(m, dtype=np.int64)
    r_second = np.empty(m, dtype=np.int64)
    r_width = np.empty(m)
    k_out = 0
    for i in range(m):
        a, y, c0 = owner[i], other[i], chan[i]
        best = -1.0
        bf = -1
        bs = -1
        for q in range(indptr[a], indptr[a + 1]):
            x = out_dst[q]
            if x == y or out_d[q] >> 1 == c0:
                continue
            for r in range(indptr[x], indptr[x + 1]):
                if out_dst[r] == y:
                    w = out_side[q] if out_side[q] < out_side[r] else out_side[r]
                    if w > best:
                        best, bf, bs = w, out_d[q], out_d[r]
                    break
        if bf >= 0:
            r_which[k_out], r_first[k_out], r_second[k_out], r_width[k_out] = i, bf, bs, best
            k_out += 1
    return r_which[:k_out].copy(), r_first[:k_out].copy(), r_second[:k_out].copy(), r_width[:k_out].copy()


@jit
def _triangles_csr_nb(indptr, edge, target, u, v, capacity, balance_u, usable, owner, chan,
                      other):  # pragma: no cover - compiled
    """`_triangles_nb` over the cached CSR of `graph.out_csr`: per depleted side (a, y), each x's
    first edge x -> y with liquidity (edge order) is marked from y's edges, then a's out-edges are
    walked once: O(D * degree) without building a CSR per step."""
    n = indptr.shape[0] - 1
    m = owner.shape[0]
    r_which = np.empty(m, dtype=np.int64)
    r_first = np.empty(m, dtype=np.int64)
    r_second = np.empty(m, dtype=np.int64)
    r_width = np.empty(m)
    stamp = np.full(n, -1, dtype=np.int64)
    mark_d = np.empty(n, dtype=np.int64)
    mark_side = np.empty(n)
    k_out = 0
    for i in range(m):
        a, y, c0 = owner[i], other[i], chan[i]
        for r in range(indptr[y], indptr[y + 1]):
            d = edge[r] ^ 1            # x -> y
            ch = d >> 1
            if not usable[ch]:
                continue
            sd = balance_u[ch] if d & 1 == 0 else capacity[ch] - balance_u[ch]
            x = target[r]
            if sd > 0.0 and stamp[x] != i:
                stamp[x] = i
                mark_d[x] = d
                mark_side[x] = sd
        best = -1.0
        bf = -1
        bs = -1
        for q in range(indptr[a], indptr[a + 1]):
            d = edge[q]                # a -> x
            ch = d >> 1
            x = target[q]
            if x == y or ch == c0 or stamp[x] != i or not usable[ch]:
                continue
            sd = balance_u[ch] if d & 1 == 0 else capacity[ch] - balance_u[ch]
            if sd <= 0.0:
                continue
            w = sd if sd < mark_side[x] else mark_side[x]
            if w > best:
                best, bf, bs = w, d, mark_d[x]
        if bf >= 0:
            r_which[k_out], r_first[k_out], r_second[k_out], r_width[k_out] = i, bf, bs, best
            k_out += 1
    return r_which[:k_out].copy(), r_first[:k_out].copy(), r_second[:k_out].copy(), r_width[:k_out].copy()


def _triangles_compiled(u, v, capacity, balance_u, usable, owner, chan, other, n):
    """The compiled triangle search over the cached channel CSR."""
    indptr, edge, target = out_csr(u, v, n)
    return _triangles_csr_nb(indptr, edge, target, u, v, capacity, balance_u, usable,
                             np.ascontiguousarray(owner, dtype=np.int64), np.ascontiguousarray(chan, dtype=np.int64),
                             np.ascontiguousarray(other, dtype=np.int64))


triangles = register("rebalance_triangles", triangles_numpy, _triangles_compiled if _triangles_nb is not None else None)


def rebalance_n(sc, u, v, capacity, balance_u, usable, fee_base, fee_rate, n: int, by_agent: bool = False):
    """(balance_u after, flow into u's sides [E], fees paid [N], fees earned [N], completed count;
    with `by_agent` the completed rebalances of each payer [N] instead): one `rebalancing` kernel
    call with the scenario's fields (the fee limit is also the splice fee when splicing is on)."""
    fee_cap = float(sc.splice_fee) if sc.splice_below > 0.0 else np.inf
    bal, flow_in_u, paid, earned, k, done_by = rebalancing(
        u=u, v=v, capacity=capacity, balance_u=balance_u, usable=usable, fee_base=fee_base, fee_rate=fee_rate, n=n,
        below=float(sc.rebalance_below), target=float(sc.liquidity_target), max_fee_share=float(sc.max_fee_share),
        fee_cap=fee_cap)
    return bal, flow_in_u, paid, earned, (done_by if by_agent else int(k))


def rebalancing_numpy(u, v, capacity, balance_u, usable, fee_base, fee_rate, n, below, target, max_fee_share,
                      fee_cap):
    """The step's rebalancing, vectorized: depleted sides, their widest triangles, the amounts
    that restore `target` (what the triangle carries at most, less room for fees), paid
    HTLC-style with a fee limit of min(`max_fee_share` of the amount, `fee_cap`)."""
    e = u.shape[0]
    nothing = (balance_u, np.zeros(e), np.zeros(n), np.zeros(n), 0, np.zeros(n, dtype=np.int64))
    owner, chan, other = depleted_sides(u, v, capacity, balance_u, usable, below)
    if owner.shape[0] == 0:
        return nothing
    own_side = np.where(u[chan] == owner, balance_u[chan], capacity[chan] - balance_u[chan])
    need = target * capacity[chan] - own_side
    w_idx, first, second, width = triangles_numpy(u, v, capacity, balance_u, usable, owner, chan, other, n)
    if w_idx.shape[0] == 0:
        return nothing
    amount = np.maximum(np.minimum(need[w_idx], width / (1.0 + max_fee_share) * (1.0 - 1e-9)), 0.0)
    route = np.stack([first >> 1, second >> 1, chan[w_idx]], axis=1).astype(np.int64)
    max_fee = np.minimum(amount * max_fee_share, fee_cap)
    payer = owner[w_idx]
    reason, fee, bal, flow_in_u, earned = pay_routes_loop(
        route, payer, amount, max_fee, u, v, capacity, balance_u, fee_base, fee_rate, np.zeros(n, dtype=bool),
        np.zeros(e, dtype=bool), n)
    ok_ = reason == OK
    paid = np.bincount(payer, weights=np.where(ok_, fee, 0.0), minlength=n)
    return bal, flow_in_u, paid, earned, int(ok_.sum()), np.bincount(payer[ok_], minlength=n).astype(np.int64)


@jit
def _depleted_sides_nb(u, v, capacity, balance_u, usable, below):  # pragma: no cover - compiled
    """`depleted_sides` compiled: (channel, owner, other end) of every usable side under `below` of its
    capacity, u sides first, then v sides, each in slot order; listed without a branch."""
    e_n = u.shape[0]
    low_u = np.empty(e_n, dtype=np.int64)
    low_v = np.empty(e_n, dtype=np.int64)
    m_u = 0
    m_v = 0
    for c in range(e_n):
        ok = usable[c]
        b = balance_u[c]
        cp = capacity[c]
        low_u[m_u] = c
        m_u += ok & (b < below * cp)
        low_v[m_v] = c
        m_v += ok & (cp - b < below * cp)
    d_n = m_u + m_v
    chan = np.empty(d_n, dtype=np.int64)
    owner = np.empty(d_n, dtype=np.int64)
    other = np.empty(d_n, dtype=np.int64)
    for i in range(m_u):
        c = low_u[i]
        chan[i], owner[i], other[i] = c, u[c], v[c]
    for i in range(m_v):
        c = low_v[i]
        chan[m_u + i], owner[m_u + i], other[m_u + i] = c, v[c], u[c]
    return chan, owner, other


@jit
def _rebalancing_nb(indptr, edge, target_node, u, v, capacity, balance_u, usable, fee_base, fee_rate, n, below,
                    target, max_fee_share, fee_cap):  # pragma: no cover - compiled
    e_n = u.shape[0]
    chan, owner, other = _depleted_sides_nb(u, v, capacity, balance_u, usable, below)
    if chan.shape[0] == 0:
        return balance_u.copy(), np.zeros(e_n), np.zeros(n), np.zeros(n), 0, np.zeros(n, dtype=np.int64)
    w_idx, first, second, width = _triangles_csr_nb(indptr, edge, target_node, u, v, capacity, balance_u, usable,
                                                    owner, chan, other)
    k_n = w_idx.shape[0]
    if k_n == 0:
        return balance_u.copy(), np.zeros(e_n), np.zeros(n), np.zeros(n), 0, np.zeros(n, dtype=np.int64)
    route = np.empty((k_n, 3), dtype=np.int64)
    amount = np.empty(k_n)
    max_fee = np.empty(k_n)
    payer = np.empty(k_n, dtype=np.int64)
    for k in range(k_n):
        i = w_idx[k]
        c = chan[i]
        own = balance_u[c] if u[c] == owner[i] else capacity[c] - balance_u[c]
        need = target * capacity[c] - own
        room = width[k] / (1.0 + max_fee_share) * (1.0 - 1e-9)
        x = need if need < room else room          # np.minimum / np.maximum: ties give the second
        amount[k] = x if x > 0.0 else 0.0
        f = amount[k] * max_fee_share
        max_fee[k] = f if f < fee_cap else fee_cap
        route[k, 0] = first[k] >> 1
        route[k, 1] = second[k] >> 1
        route[k, 2] = c
        payer[k] = owner[i]
    bal = balance_u.copy()
    flow_in_u = np.zeros(e_n)
    earned = np.zeros(n)
    reason = np.zeros(k_n, dtype=np.int8)
    fee = np.zeros(k_n)
    none = np.zeros(1, dtype=np.bool_)   # no faults: never read
    _pay_routes_into_nb(route, payer, amount, max_fee, u, v, capacity, bal, flow_in_u, earned, fee_base, fee_rate,
                        none, none, False, reason, fee)
    paid = np.zeros(n)
    done = 0
    done_by = np.zeros(n, dtype=np.int64)
    for k in range(k_n):
        ok = reason[k] == OK
        paid[payer[k]] += fee[k] if ok else 0.0
        done += 1 if ok else 0
        done_by[payer[k]] += 1 if ok else 0
    return bal, flow_in_u, paid, earned, done, done_by


def _rebalancing_compiled(u, v, capacity, balance_u, usable, fee_base, fee_rate, n, below, target, max_fee_share,
                          fee_cap):
    """The compiled rebalancing over the cached channel CSR (`graph.out_csr`)."""
    indptr, edge, target_node = out_csr(u, v, n)
    return _rebalancing_nb(indptr, edge, target_node, u, v, capacity, balance_u, usable, fee_base, fee_rate, n, below,
                           target, max_fee_share, fee_cap)


rebalancing = register("rebalancing", rebalancing_numpy,
                       _rebalancing_compiled if _rebalancing_nb is not None else None)


__all__ = ["rebalance_n", "rebalancing", "rebalancing_numpy", "depleted_sides", "triangles", "triangles_numpy"]
