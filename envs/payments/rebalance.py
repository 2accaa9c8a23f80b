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


def rebalance(sc, u, v, capacity, balance_u, usable, fee_base, fee_rate):
    """(balance_u after, flow into u's sides [E], fees paid [N], fees earned [N], completed count)."""
    n = int(max(u.max(initial=0), v.max(initial=0))) + 1 if u.shape[0] else 0
    return rebalance_n(sc, u, v, capacity, balance_u, usable, fee_base, fee_rate, n)


def rebalance_n(sc, u, v, capacity, balance_u, usable, fee_base, fee_rate, n: int):
    e = u.shape[0]
    nothing = (balance_u, np.zeros(e), np.zeros(n), np.zeros(n), 0)
    owner, chan, other = depleted_sides(u, v, capacity, balance_u, usable, sc.rebalance_below)
    if owner.shape[0] == 0:
        return nothing
    own_side = np.where(u[chan] == owner, balance_u[chan], capacity[chan] - balance_u[chan])
    need = sc.liquidity_target * capacity[chan] - own_side
    src, dst, side, ok = directed_edges(u, v, capacity, balance_u, usable)
    d_ok = np.flatnonzero(ok & (side > 0.0))
    # out-edges per node (CSR over the usable directed edges with liquidity)
    order = d_ok[np.argsort(src[d_ok], kind="stable")]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src[order], minlength=n), out=indptr[1:])
    counts = indptr[owner + 1] - indptr[owner]
    total = int(counts.sum())
    if total == 0:
        return nothing
    which = np.repeat(np.arange(owner.shape[0]), counts)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    first = order[indptr[owner][which] + offs]          # a -> x
    x = dst[first]
    y = other[which]
    fine = (x != y) & (first >> 1 != chan[which])
    which, first, x, y = which[fine], first[fine], x[fine], y[fine]
    # the edge x -> y, by a sorted lookup of (src, dst) keys
    keys = src[order] * n + dst[order]
    korder = np.argsort(keys, kind="stable")
    sorted_keys = keys[korder]
    want = x * n + y
    pos = np.searchsorted(sorted_keys, want)
    found = (pos < sorted_keys.shape[0]) & (sorted_keys[np.minimum(pos, sorted_keys.shape[0] - 1)] == want)
    which, first = which[found], first[found]
    second = order[korder[pos[found]]]                   # x -> y
    width = np.minimum(side[first], side[second])
    if which.shape[0] == 0:
        return nothing
    # the widest triangle per depleted side
    pick = np.lexsort((-width, which))
    head = np.ones(pick.shape[0], dtype=bool)
    head[1:] = which[pick][1:] != which[pick][:-1]
    pick = pick[head]
    w_idx = which[pick]
    amount = np.minimum(need[w_idx], width[pick] / (1.0 + sc.max_fee_share) * (1.0 - 1e-9))
    amount = np.maximum(amount, 0.0)
    route = np.stack([first[pick] >> 1, second[pick] >> 1, chan[w_idx]], axis=1).astype(np.int64)
    max_fee = amount * sc.max_fee_share
    if sc.splice_below > 0.0:
        max_fee = np.minimum(max_fee, sc.splice_fee)
    payer = owner[w_idx]
    none = np.zeros(n, dtype=bool)
    reason, fee, bal, flow_in_u, earned = pay_routes(
        route=route, payer=payer, amount=amount, max_fee=max_fee, u=u, v=v, capacity=capacity, balance_u=balance_u,
        fee_base=fee_base, fee_rate=fee_rate, blocked_agent=none, blocked_channel=np.zeros(e, dtype=bool), n=n)
    ok_ = reason == OK
    paid = np.bincount(payer, weights=np.where(ok_, fee, 0.0), minlength=n)
    return bal, flow_in_u, paid, earned, int(ok_.sum())


__all__ = ["rebalance", "rebalance_n", "depleted_sides"]
