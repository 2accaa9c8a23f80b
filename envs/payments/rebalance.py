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
from .htlc import pay_routes
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


triangles = register("rebalance_triangles", triangles_numpy, _triangles_nb)


def rebalance_n(sc, u, v, capacity, balance_u, usable, fee_base, fee_rate, n: int):
    """(balance_u after, flow into u's sides [E], fees paid [N], fees earned [N], completed count)."""
    e = u.shape[0]
    nothing = (balance_u, np.zeros(e), np.zeros(n), np.zeros(n), 0)
    owner, chan, other = depleted_sides(u, v, capacity, balance_u, usable, sc.rebalance_below)
    if owner.shape[0] == 0:
        return nothing
    own_side = np.where(u[chan] == owner, balance_u[chan], capacity[chan] - balance_u[chan])
    need = sc.liquidity_target * capacity[chan] - own_side
    w_idx, first, second, width = triangles(u=u, v=v, capacity=capacity, balance_u=balance_u, usable=usable,
                                            owner=owner, chan=chan, other=other, n=n)
    if w_idx.shape[0] == 0:
        return nothing
    amount = np.maximum(np.minimum(need[w_idx], width / (1.0 + sc.max_fee_share) * (1.0 - 1e-9)), 0.0)
    route = np.stack([first >> 1, second >> 1, chan[w_idx]], axis=1).astype(np.int64)
    max_fee = amount * sc.max_fee_share
    if sc.splice_below > 0.0:
        max_fee = np.minimum(max_fee, sc.splice_fee)
    payer = owner[w_idx]
    reason, fee, bal, flow_in_u, earned = pay_routes(
        route=route, payer=payer, amount=amount, max_fee=max_fee, u=u, v=v, capacity=capacity, balance_u=balance_u,
        fee_base=fee_base, fee_rate=fee_rate, blocked_agent=np.zeros(n, dtype=bool),
        blocked_channel=np.zeros(e, dtype=bool), n=n)
    ok_ = reason == OK
    paid = np.bincount(payer, weights=np.where(ok_, fee, 0.0), minlength=n)
    return bal, flow_in_u, paid, earned, int(ok_.sum())


__all__ = ["rebalance_n", "depleted_sides", "triangles", "triangles_numpy"]
