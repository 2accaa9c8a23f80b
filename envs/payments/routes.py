"""Routes: the widest path of at most H hops from every payer to any of a set of payees.

Money flows payer -> ... -> payee; a hop over channel c from node x needs x's side of c. The
search is a multi-source dynamic programme over the directed channel graph (2E directed edges:
edge 2c is u -> v of slot c, paying from balance_u; 2c + 1 is v -> u, paying from the rest), one pass
per hop count k = 1..H: width_k[x] = max(width_{k-1}[x], max over edges x -> y of
min(side, width_{k-1}[y])), width_0 = inf at the payees and 0 elsewhere. Each pass is O(E), so
routing all payers at once is O(E * H): no search per payment. Ties go to the lowest edge index.
Routes follow the chosen edges (`via`) back down the levels; they follow channels only, so the
search is naturally block-diagonal over independent markets.

`level_numpy` and its compiled twin `_level_nb` are one pass; `widest_routes` runs the passes
and `extract_routes` walks them. `multi_hop=True` on the last pass excludes edges straight into
a payee, so a buyer with a direct channel to a seller still gets a routed alternative.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..compiled import THREADS, jit, prange, register
from .reasons import HOP_LIMIT, NO_ROUTE

PARALLEL_SLOTS = 100_000   # channel slots from which the agreements pass runs multi-threaded (one thread
#   start; at 10,000 agents / 50,000 slots one and two threads were even on this VM, at 100,000 agents two 35% faster)
SEARCH_PARALLEL_SLOTS = 200_000   # ... and the route search (four thread starts of ~40 us each, and
#   memory-bound passes: at 10,000 agents the serial search was faster on this 2-core VM, at 100,000 ~10% slower)


def directed_edges(u, v, capacity, balance_u, usable):
    """(src, dst, side, usable) over the 2E directed edges: 2c is u -> v of slot c, 2c + 1 is v -> u."""
    src = np.stack((u, v), axis=1).ravel().astype(np.int64)
    dst = np.stack((v, u), axis=1).ravel().astype(np.int64)
    side = np.stack((balance_u, capacity - balance_u), axis=1).ravel()
    ok = np.repeat(usable, 2)
    return src, dst, side, ok


def level_numpy(src, dst, side, usable, prev_width, start_width, prev_via, blocked_dst):
    """One pass: (width [N], via [N]) over edges into the previous level's widths, improving on
    `start_width` (the previous level's, or zeros for the multi-hop last pass); an edge into a
    node with `blocked_dst` set is not used."""
    n = prev_width.shape[0]
    ok = usable & ~blocked_dst[dst]
    cand = np.where(ok, np.minimum(side, prev_width[dst]), 0.0)
    best = start_width.copy()
    np.maximum.at(best, src, cand)
    improved = best > start_width
    hit = np.flatnonzero(improved[src] & (cand == best[src]) & ok)
    first = np.full(n, src.shape[0], dtype=np.int64)
    np.minimum.at(first, src[hit], hit)
    via = np.where(improved, first, prev_via)
    return best, via


@jit
def _level_nb(src, dst, side, usable, prev_width, start_width, prev_via, blocked_dst):  # pragma: no cover
    best = start_width.copy()
    via = prev_via.copy()
    for d in range(src.shape[0]):
        if usable[d] and not blocked_dst[dst[d]]:
            y = dst[d]
            c = side[d] if side[d] < prev_width[y] else prev_width[y]
            x = src[d]
            if c > best[x]:
                best[x] = c
                via[x] = d
    return best, via


level = register("route_level", level_numpy, _level_nb)


class Widest(NamedTuple):
    width: np.ndarray   # [L + 1, N] widest route of at most k hops to a payee, per level k
    via: np.ndarray     # [L + 1, N] first directed edge of that route, -1 at payees and unreachable nodes
    last_width: np.ndarray  # [N] the multi-hop last pass (routes of 2..H hops), or the level-H width
    last_via: np.ndarray    # [N]


def widest_routes(src, dst, side, usable, payee: np.ndarray, max_hops: int, extra_levels: int = 0,
                  multi_hop: bool = False) -> Widest:
    """The passes 1..max_hops (+ `extra_levels` more, to tell a hop limit from no route), and,
    with `multi_hop`, a last pass of routes with at least two hops."""
    n = payee.shape[0]
    levels = max_hops + extra_levels
    width = np.zeros((levels + 1, n))
    via = np.full((levels + 1, n), -1, dtype=np.int64)
    width[0] = np.where(payee, np.inf, 0.0)
    no_block = np.zeros(n, dtype=bool)
    for k in range(1, levels + 1):
        width[k], via[k] = level(src=src, dst=dst, side=side, usable=usable, prev_width=width[k - 1],
                                 start_width=width[k - 1], prev_via=via[k - 1], blocked_dst=no_block)
    if multi_hop and max_hops >= 2:
        last_w, last_v = level(src=src, dst=dst, side=side, usable=usable, prev_width=width[max_hops - 1],
                               start_width=np.zeros(n), prev_via=np.full(n, -1, dtype=np.int64), blocked_dst=payee)
        last_w = np.where(payee, 0.0, last_w)
    else:
        last_w, last_v = width[max_hops], via[max_hops]
    return Widest(width, via, last_w, last_v)


def extract_routes(w: Widest, dst, payers: np.ndarray, max_hops: int,
                   use_last: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(route [P, H] channel slots from each payer, -1 padded; end node [P]; hops [P]) following
    the chosen edges: the first from the last pass (`use_last`) or level H, then level H-1, ..."""
    p = payers.shape[0]
    route = np.full((p, max_hops), -1, dtype=np.int64)
    node = payers.astype(np.int64).copy()
    d = (w.last_via if use_last else w.via[max_hops])[node]
    alive = d >= 0
    for j in range(max_hops):
        if j > 0:
            d = np.where(alive, w.via[max_hops - j][node], -1)
            alive = d >= 0
        if not alive.any():
            break
        route[alive, j] = d[alive] >> 1
        node = np.where(alive, dst[np.maximum(d, 0)], node)
    return route, node, (route >= 0).sum(axis=1)


def route_width(route: np.ndarray, payers: np.ndarray, u, v, capacity, balance_u) -> np.ndarray:
    """[P] the narrowest paying side along each route from its payer (inf for an empty route)."""
    out = np.full(route.shape[0], np.inf)
    node = payers.astype(np.int64).copy()
    for j in range(route.shape[1]):
        ch = route[:, j]
        live = ch >= 0
        c = np.maximum(ch, 0)
        pays_u = u[c] == node
        side = np.where(pays_u, balance_u[c], capacity[c] - balance_u[c])
        out = np.where(live, np.minimum(out, side), out)
        node = np.where(live, np.where(pays_u, v[c], u[c]), node)
    return out


__all__ = ["directed_edges", "level", "level_numpy", "widest_routes", "extract_routes", "route_width", "Widest", "RoutedCandidates", "search",
           "routed_candidates", "candidates", "candidates_numpy"]


def search_numpy(u, v, capacity, balance_u, usable, payee, buyers, max_hops):
    """For each buyer: (route [B, H] of its widest route of 2..H hops to a payee, -1 padded and all
    -1 when it has none; end node [B]; route width [B] (0 without a route); why it reaches no payee
    at all within H hops [B] int8: NO_ROUTE, HOP_LIMIT or 0). The passes above, composed."""
    src, dst, side, ok = directed_edges(u, v, capacity, balance_u, usable)
    w = widest_routes(src, dst, side, ok, payee, max_hops, extra_levels=1, multi_hop=True)
    none = w.width[max_hops][buyers] <= 0.0
    unrouted = np.where(none, np.where(w.width[max_hops + 1][buyers] > 0.0, HOP_LIMIT, NO_ROUTE), 0).astype(np.int8)
    route, end, hops = extract_routes(w, dst, buyers, max_hops)
    keep = (hops >= 2) & payee[end]
    route[~keep] = -1
    width = np.where(keep, route_width(route, buyers, u, v, capacity, balance_u), 0.0)
    return route, end, width, unrouted


def _pack_range(u, v, capacity, balance_u, usable, payee, lo, hi, pu, pv, pbu, pbv, pch, best, via, nxt,
                drop):  # pragma: no cover - compiled
    """The usable channels of slots lo..hi-1, packed from position lo on in slot order, without a
    branch (u, v, u's side, v's side, slot); returns the end. Positions stay within lo..hi-1, so
    chunks pack side by side. On the way, level 1 of these channels (`_relax_range` from level 0:
    inf at the payees, 0 elsewhere) into `best`, `via`, `nxt`: the widest side straight into a payee.
    With `drop` (the packing serves these payees only) a channel neither of whose directions can
    ever raise a width after level 1 is left out: each direction pays from a payee (whose width
    is inf at every level and in the last pass) or from an empty (or NaN) side. Neither can
    they tell a hop limit (a stuck buyer is no payee and needs a non-empty side), so every pass
    over the packing gives what it gives over all usable channels, a fifth fewer at 10,000 agents.
    (Loops over views from 0, and node indices unsigned: numba then leaves out its
    negative-index checks, a third of these passes' time.)"""
    for x in range(best.shape[0]):
        best[x] = np.inf if payee[x] else 0.0
        via[x] = -1
        nxt[x] = -1
    u_, v_, bal, cap, ok = u[lo:hi], v[lo:hi], balance_u[lo:hi], capacity[lo:hi], usable[lo:hi]
    qu, qv, qbu, qbv, qch = pu[lo:hi], pv[lo:hi], pbu[lo:hi], pbv[lo:hi], pch[lo:hi]
    m = 0
    for j in range(hi - lo):
        a = np.uint32(u_[j])
        b = np.uint32(v_[j])
        bu = bal[j]
        bv = cap[j] - bu
        use = ok[j]
        qu[m] = a
        qv[m] = b
        qbu[m] = bu
        qbv[m] = bv
        qch[m] = lo + j
        m += use & ((not drop) | ((not payee[a]) & (bu > 0.0)) | ((not payee[b]) & (bv > 0.0)))
        c = bu if use & payee[b] else 0.0     # min(level 0 of b, side): 0 never raises a width
        if c > best[a]:
            best[a] = c
            via[a] = 2 * (lo + j)
            nxt[a] = b
        c = bv if use & payee[a] else 0.0
        if c > best[b]:
            best[b] = c
            via[b] = 2 * (lo + j) + 1
            nxt[b] = a
    return lo + m


def _relax_range(pu, pv, pbu, pbv, pch, lo, hi, prev, start, start_via, start_nxt, best, via,
                 nxt):  # pragma: no cover - compiled
    """One level over the packed channels lo..hi-1, both directions, in directed-edge order (2c:
    u -> v paying from u's side, 2c + 1: v -> u), from `start` / `start_via`: best[x] =
    max(start[x], min(side, prev[y])) over the edges x -> y, `via` the first edge that raised it and
    `nxt` the node y it leads to (so the walk reads no channel ends).
    No test is needed for the rest: a payee's start is inf, so edges out of payees never win, and
    an empty (or NaN) side gives 0 (or NaN), which never beats a width."""
    best[:] = start
    via[:] = start_via
    nxt[:] = start_nxt
    qu, qv, qbu, qbv, qch = pu[lo:hi], pv[lo:hi], pbu[lo:hi], pbv[lo:hi], pch[lo:hi]
    for i in range(hi - lo):
        a = np.uint32(qu[i])
        b = np.uint32(qv[i])
        p = prev[b]
        sd = qbu[i]
        c = p if p < sd else sd
        if c > best[a]:
            best[a] = c
            via[a] = 2 * np.int64(qch[i])
            nxt[a] = b
        p = prev[a]
        sd = qbv[i]
        c = p if p < sd else sd
        if c > best[b]:
            best[b] = c
            via[b] = 2 * np.int64(qch[i]) + 1
            nxt[b] = a


def _merge_range(lo, hi, best, via, nxt, cw, cv, cn):  # pragma: no cover - compiled
    """Nodes lo..hi-1 of a level from the chunks' passes (best, via, nxt: chunk 0; cw[k], cv[k],
    cn[k]: chunk k >= 1): the widest, the earliest chunk on ties, i.e. the lowest edge index, as
    one pass over all edges gives."""
    for x in range(lo, hi):
        b = best[x]
        d = via[x]
        y = nxt[x]
        for k in range(1, cw.shape[0]):
            if cw[k, x] > b:
                b = cw[k, x]
                d = cv[k, x]
                y = cn[k, x]
        best[x] = b
        via[x] = d
        nxt[x] = y


def _walk_range(payee, buyers, first_via, first_nxt, first_width, via, nxt, h, lo, hi, route, end,
                width):  # pragma: no cover - compiled
    """Buyers lo..hi-1's routes into route[i] [H], their end nodes and widths: each buyer's first
    edge `first_via[b]` (to `first_nxt[b]`), then level H-1's, H-2's, ... edges (`nxt`: the node
    each leads to, so no channel ends are read); the width is 0 and the row all -1
    unless it has >= 2 hops and ends at a payee. A route's width, the narrowest side along it, is
    the pass's width `first_width[b]` itself (a min of the same sides, exact in floats)."""
    for i in range(lo, hi):
        b = np.uint32(buyers[i])
        node = b
        d = first_via[b]
        y = first_nxt[b]
        hops = 0
        for j in range(h):
            if j > 0:
                d = via[h - j, node]
                y = nxt[h - j, node]
            if d < 0:
                break
            route[i, j] = d >> 1
            node = np.uint32(y)
            hops += 1
        end[i] = node
        if hops >= 2 and payee[node]:
            width[i] = first_width[b]
        else:
            width[i] = 0.0
            for j in range(h):
                route[i, j] = -1


def _hop_limit_range(pu, pv, pbu, pbv, lo, hi, stuck, last_w, hop):  # pragma: no cover - compiled
    """hop[x] = True for the stuck nodes x of the packed channels lo..hi-1 with a non-empty side
    to a node whose last pass is > 0 (one hop more would reach a payee)."""
    qu, qv, qbu, qbv = pu[lo:hi], pv[lo:hi], pbu[lo:hi], pbv[lo:hi]
    for i in range(hi - lo):
        a = np.uint32(qu[i])
        b = np.uint32(qv[i])
        if stuck[a]:
            if last_w[b] > 0.0 and qbu[i] > 0.0:
                hop[a] = True
        if stuck[b]:
            if last_w[a] > 0.0 and qbv[i] > 0.0:
                hop[b] = True


_pack_range_nb = jit(_pack_range)
_relax_range_nb = jit(_relax_range)
_merge_range_nb = jit(_merge_range)
_walk_range_nb = jit(_walk_range)
_hop_limit_range_nb = jit(_hop_limit_range)


def _last_pass_buffers(payee):  # pragma: no cover - compiled
    """The multi-hop last pass's inputs and outputs over N nodes: (into [N] (filled later), from_zero
    (inf at the payees, 0 elsewhere), no_via, no_nxt (all -1), last_w, last_v, last_n)."""
    n = payee.shape[0]
    into = np.empty(n)      # the last pass: edges into a payee never count, widths from 0
    from_zero = np.empty(n)
    for x in range(n):
        from_zero[x] = np.inf if payee[x] else 0.0
    no_via = np.full(n, -1, dtype=np.int64)
    no_nxt = np.full(n, -1, dtype=np.int32)
    return (into, from_zero, no_via, no_nxt, np.empty(n), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int32))


def _stuck(buyers, prev, last_w):  # pragma: no cover - compiled
    """(stuck [N] bool, any): the buyers that reach no payee within H hops (level H-1 `prev` and
    the last pass both 0)."""
    stuck = np.zeros(prev.shape[0], dtype=np.bool_)
    any_stuck = False
    for i in range(buyers.shape[0]):
        b = buyers[i]
        if not (prev[b] > 0.0 or last_w[b] > 0.0):
            stuck[b] = True
            any_stuck = True
    return stuck, any_stuck


def _walk_all(payee, buyers, last_v, last_n, last_w, via, nxt, h):  # pragma: no cover - compiled
    """(route [B, H], end [B], width [B]) of every buyer (`_walk_range` over all of them)."""
    m = buyers.shape[0]
    route = np.full((m, h), -1, dtype=np.int64)
    end = np.empty(m, dtype=np.int64)
    rw = np.empty(m)
    _walk_range_nb(payee, buyers, last_v, last_n, last_w, via, nxt, h, 0, m, route, end, rw)
    return route, end, rw


_last_pass_buffers_nb = jit(_last_pass_buffers, inline=True)
_stuck_nb = jit(_stuck, inline=True)
_walk_all_nb = jit(_walk_all, inline=True)


def _search_packed(pu, pv, pbu, pbv, pch, m_ch, payee, buyers, h, width, via, nxt):  # pragma: no cover - compiled
    """`_search_multi` in one chunk after the packing: levels 2..H-1 and the multi-hop last pass over
    the packed channels (the first m_ch of pu, ...), the hop-limit pass and the walk. `width`,
    `via`, `nxt` [H, N] hold levels 0 and 1."""
    n = payee.shape[0]
    into, from_zero, no_via, no_nxt, last_w, last_v, last_n = _last_pass_buffers_nb(payee)
    for lev in range(2, h + 1):   # levels 2..H-1, then (lev = H) the last pass
        if lev < h:
            _relax_range_nb(pu, pv, pbu, pbv, pch, 0, m_ch, width[lev - 1], width[lev - 1], via[lev - 1],
                            nxt[lev - 1], width[lev], via[lev], nxt[lev])
        else:
            for x in range(n):
                into[x] = 0.0 if payee[x] else width[h - 1, x]
            _relax_range_nb(pu, pv, pbu, pbv, pch, 0, m_ch, into, from_zero, no_via, no_nxt, last_w, last_v, last_n)
    m = buyers.shape[0]
    stuck, any_stuck = _stuck_nb(buyers, width[h - 1], last_w)
    unrouted = np.zeros(m, dtype=np.int8)
    if any_stuck:
        hop = np.zeros(n, dtype=np.bool_)
        _hop_limit_range_nb(pu, pv, pbu, pbv, 0, m_ch, stuck, last_w, hop)
        for i in range(m):
            b = buyers[i]
            if stuck[b]:
                unrouted[i] = HOP_LIMIT if hop[b] else NO_ROUTE
    route, end, rw = _walk_all_nb(payee, buyers, last_v, last_n, last_w, via, nxt, h)
    return route, end, rw, unrouted


_search_packed_nb = jit(_search_packed)



def _search_multi(u, v, capacity, balance_u, usable, payee, buyers, max_hops, chunks):  # pragma: no cover - compiled
    """The search for max_hops >= 2: the usable channels packed once (`_pack_range`), then H (+1)
    relaxation passes over them (a directed edge list with per-edge tests cost more than the
    passes): levels 1..H-1 over all nodes, then the multi-hop last pass (edges not into a payee,
    widths from 0). That pass also answers level H: a buyer reaches a payee within H hops iff
    its level H-1 or its last pass is > 0 (an edge straight into a payee makes level 1 > 0).
    Hop limit or no route (level H + 1) only when some buyer reaches no payee: a neighbour of
    such a buyer has level H-1 = 0, so its level H > 0 iff its last pass is > 0.
    Every pass runs in `chunks` slices of the channels side by side (`prange`), each into its own
    widths (chunk 0 into the level itself), merged per node keeping the earliest chunk on ties:
    the lowest edge index, as one pass gives, whatever the number of chunks or threads. The
    merges and the walk are serial: each start of the threads costs 10-40 us."""
    n = payee.shape[0]
    e_n = u.shape[0]
    h = max_hops
    size = (e_n + chunks - 1) // chunks
    pu = np.empty(e_n, dtype=np.int32)
    pv = np.empty(e_n, dtype=np.int32)
    pbu = np.empty(e_n)
    pbv = np.empty(e_n)
    pch = np.empty(e_n, dtype=np.int32)
    lo = np.empty(chunks, dtype=np.int64)
    hi = np.empty(chunks, dtype=np.int64)
    width = np.empty((h, n))
    via = np.empty((h, n), dtype=np.int64)
    nxt = np.empty((h, n), dtype=np.int32)
    for x in range(n):
        width[0, x] = np.inf if payee[x] else 0.0
        via[0, x] = -1
        nxt[0, x] = -1
    if chunks == 1:   # one chunk: pack (and level 1), then the rest in one serial pass each
        m_ch = _pack_range_nb(u, v, capacity, balance_u, usable, payee, 0, e_n, pu, pv, pbu, pbv, pch, width[1],
                              via[1], nxt[1], True)
        return _search_packed_nb(pu, pv, pbu, pbv, pch, m_ch, payee, buyers, h, width, via, nxt)
    cw = np.empty((chunks, n))
    cv = np.empty((chunks, n), dtype=np.int64)
    cn = np.empty((chunks, n), dtype=np.int32)
    for k in prange(chunks):   # packing, and level 1
        a = min(k * size, e_n)
        lo[k] = a
        if k == 0:
            hi[k] = _pack_range_nb(u, v, capacity, balance_u, usable, payee, a, min(a + size, e_n), pu, pv, pbu,
                                   pbv, pch, width[1], via[1], nxt[1], True)
        else:
            hi[k] = _pack_range_nb(u, v, capacity, balance_u, usable, payee, a, min(a + size, e_n), pu, pv, pbu,
                                   pbv, pch, cw[k], cv[k], cn[k], True)
    if chunks > 1:   # (serial: cheaper than starting the threads again)
        _merge_range_nb(0, n, width[1], via[1], nxt[1], cw, cv, cn)
    into, from_zero, no_via, no_nxt, last_w, last_v, last_n = _last_pass_buffers_nb(payee)
    for lev in range(2, h + 1):   # levels 2..H-1, then (lev = H) the last pass
        if lev < h:
            prev = width[lev - 1]
            start = prev
            start_via = via[lev - 1]
            start_nxt = nxt[lev - 1]
            best = width[lev]
            bvia = via[lev]
            bnxt = nxt[lev]
        else:
            for x in range(n):
                into[x] = 0.0 if payee[x] else width[h - 1, x]
            prev = into
            start = from_zero
            start_via = no_via
            start_nxt = no_nxt
            best = last_w
            bvia = last_v
            bnxt = last_n
        for k in prange(chunks):
            if k == 0:
                _relax_range_nb(pu, pv, pbu, pbv, pch, lo[0], hi[0], prev, start, start_via, start_nxt, best, bvia,
                                bnxt)
            else:
                _relax_range_nb(pu, pv, pbu, pbv, pch, lo[k], hi[k], prev, start, start_via, start_nxt, cw[k], cv[k],
                                cn[k])
        if chunks > 1:
            _merge_range_nb(0, n, best, bvia, bnxt, cw, cv, cn)
    m = buyers.shape[0]
    stuck, any_stuck = _stuck_nb(buyers, width[h - 1], last_w)
    unrouted = np.zeros(m, dtype=np.int8)
    if any_stuck:
        hop = np.zeros((chunks, n), dtype=np.bool_)
        for k in prange(chunks):
            _hop_limit_range_nb(pu, pv, pbu, pbv, lo[k], hi[k], stuck, last_w, hop[k])
        for i in range(m):
            b = buyers[i]
            if stuck[b]:
                unrouted[i] = NO_ROUTE
                for k in range(chunks):
                    if hop[k, b]:
                        unrouted[i] = HOP_LIMIT
    route, end, rw = _walk_all_nb(payee, buyers, last_v, last_n, last_w, via, nxt, h)
    return route, end, rw, unrouted


@jit
def _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops):  # pragma: no cover - compiled
    """The search for max_hops < 2 (no routed alternative can exist): levels 1..H+1 over all edges,
    the reasons from levels H and H + 1."""
    n = payee.shape[0]
    e_n = u.shape[0]
    levels = max_hops + 1
    width = np.zeros((levels + 1, n))
    via = np.full((levels + 1, n), -1, dtype=np.int64)
    nxt = np.full((levels + 1, n), -1, dtype=np.int32)
    for i in range(n):
        if payee[i]:
            width[0, i] = np.inf
    pu = np.empty(e_n, dtype=np.int32)
    pv = np.empty(e_n, dtype=np.int32)
    pbu = np.empty(e_n)
    pbv = np.empty(e_n)
    pch = np.empty(e_n, dtype=np.int32)
    m_ch = _pack_range_nb(u, v, capacity, balance_u, usable, payee, 0, e_n, pu, pv, pbu, pbv, pch, width[1], via[1],
                          nxt[1], True)
    for k in range(2, levels + 1):
        _relax_range_nb(pu, pv, pbu, pbv, pch, 0, m_ch, width[k - 1], width[k - 1], via[k - 1], nxt[k - 1], width[k],
                        via[k], nxt[k])
    m = buyers.shape[0]
    unrouted = np.zeros(m, dtype=np.int8)
    for i in range(m):
        b = buyers[i]
        if width[max_hops, b] <= 0.0:
            unrouted[i] = HOP_LIMIT if width[max_hops + 1, b] > 0.0 else NO_ROUTE
    route = np.full((m, max_hops), -1, dtype=np.int64)
    end = np.empty(m, dtype=np.int64)
    rw = np.empty(m)
    _walk_range_nb(payee, buyers, via[max_hops], nxt[max_hops], width[max_hops], via, nxt, max_hops, 0, m, route,
                   end, rw)
    return route, end, rw, unrouted


_search_multi_nb = jit(_search_multi)
_search_multi_par = jit(_search_multi, parallel=True)


def _search_compiled(u, v, capacity, balance_u, usable, payee, buyers, max_hops):
    """The compiled search (`_search_multi` when routes can have 2 hops or more), one chunk."""
    buyers = np.ascontiguousarray(buyers, dtype=np.int64)
    if max_hops < 2:
        return _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops)
    return _search_multi_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops, 1)


def _search_parallel(u, v, capacity, balance_u, usable, payee, buyers, max_hops):
    """The multi-threaded search: one chunk of channels per thread."""
    buyers = np.ascontiguousarray(buyers, dtype=np.int64)
    if max_hops < 2:
        return _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops)
    return _search_multi_par(u, v, capacity, balance_u, usable, payee, buyers, max_hops, THREADS)


search = register("route_search", search_numpy, _search_compiled if _search_multi_nb is not None else None,
                  parallel=_search_parallel if _search_multi_par is not None else None, split="u",
                  min_items=SEARCH_PARALLEL_SLOTS)



class RoutedCandidates(NamedTuple):
    """Sellers a buyer reaches over a route of 2..H hops (one widest route per buyer and good)."""

    seller: np.ndarray    # [P] int64
    buyer: np.ndarray     # [P] int64
    route: np.ndarray     # [P, H] int64 channel slots from the buyer to the seller, -1 padded
    width: np.ndarray     # [P] EUR the narrowest paying side along the route
    unrouted: np.ndarray  # [N] int8 reasons.NO_ROUTE / HOP_LIMIT of buyers reaching no seller within H hops, else 0


def candidates_numpy(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good, buys_good, max_hops):
    """(seller [P], buyer [P], route [P, H], width [P], unrouted [N]) of `routed_candidates`: one
    `search` per good wanted (ascending), its buyers in index order, those with a route kept."""
    n = sell_qty.shape[0]
    unrouted = np.zeros(n, dtype=np.int8)
    wants = buy_qty > 0.0
    parts = []
    for g in np.unique(buys_good[wants & (buys_good >= 0)]).tolist():   # goods are few
        payee = (sell_qty > 0.0) & (sells_good == g)
        buyers = np.flatnonzero(wants & (buys_good == g) & ~payee)
        if not payee.any():
            unrouted[buyers] = NO_ROUTE
            continue
        route, end, width, why = search_numpy(u, v, capacity, balance_u, usable, payee, buyers, max_hops)
        unrouted[buyers] = why
        keep = route[:, 0] >= 0
        parts.append((end[keep], buyers[keep], route[keep], width[keep]))
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros((0, max_hops), dtype=np.int64), np.zeros(0), unrouted
    s, b, r, wd = (np.concatenate(x) for x in zip(*parts))
    return s, b, r, wd, unrouted


def _candidates_with(search_multi):
    """`routed_candidates`' compiled body over the search build `search_multi` (serial or parallel)."""
    def candidates(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good, buys_good, max_hops,
                   chunks):  # pragma: no cover - compiled
        n = sell_qty.shape[0]
        unrouted = np.zeros(n, dtype=np.int8)
        g_max = -1
        for i in range(n):
            g = buys_good[i] if buy_qty[i] > 0.0 else -1
            g_max = g if g > g_max else g_max
        wanted = np.zeros(g_max + 1, dtype=np.bool_)
        for i in range(n):
            if buy_qty[i] > 0.0 and buys_good[i] >= 0:
                wanted[buys_good[i]] = True
        o_s = np.empty(n, dtype=np.int64)
        o_b = np.empty(n, dtype=np.int64)
        o_r = np.empty((n, max_hops), dtype=np.int64)
        o_w = np.empty(n)
        k = 0
        payee = np.zeros(n, dtype=np.bool_)
        all_buyers = np.empty(n, dtype=np.int64)
        for g in range(g_max + 1):
            if not wanted[g]:
                continue
            any_payee = False
            m = 0
            for i in range(n):   # without a branch: payees, and the buyers of g (who are not payees) in order
                pe = (sell_qty[i] > 0.0) & (sells_good[i] == g)
                payee[i] = pe
                any_payee |= pe
                all_buyers[m] = i
                m += (buy_qty[i] > 0.0) & (buys_good[i] == g) & (not pe)
            buyers = all_buyers[:m]
            if not any_payee:
                for i in range(m):
                    unrouted[buyers[i]] = NO_ROUTE
                continue
            if max_hops >= 2:
                route, end, width, why = search_multi(u, v, capacity, balance_u, usable, payee, buyers, max_hops,
                                                      chunks)
            else:
                route, end, width, why = _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers,
                                                          max_hops)
            for i in range(m):
                unrouted[buyers[i]] = why[i]
                if route[i, 0] >= 0:
                    o_s[k] = end[i]
                    o_b[k] = buyers[i]
                    for j in range(max_hops):
                        o_r[k, j] = route[i, j]
                    o_w[k] = width[i]
                    k += 1
        return o_s[:k], o_b[:k], o_r[:k], o_w[:k], unrouted   # (views of the N-sized buffers: no copy)
    return candidates


def _named(fn, name):
    """`fn` under its own qualified name (numba's disk cache files a build by it)."""
    fn.__name__ = fn.__qualname__ = name
    return fn


_candidates_nb = jit(_named(_candidates_with(_search_multi_nb), "_candidates_nb")) if _search_multi_nb is not None else None
_candidates_par = (jit(_named(_candidates_with(_search_multi_par), "_candidates_par"))
                   if _search_multi_par is not None else None)


def _candidates_compiled(*args):
    return _candidates_nb(*args, 1)


def _candidates_parallel(*args):
    return _candidates_par(*args, THREADS)


candidates = register("routed_candidates", candidates_numpy, _candidates_compiled if _candidates_nb is not None else None,
                      parallel=_candidates_parallel if _candidates_par is not None else None, split="u",
                      min_items=SEARCH_PARALLEL_SLOTS)


def routed_candidates(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good, buys_good,
                      max_hops: int) -> RoutedCandidates:
    """For every good wanted, every buyer's widest route of 2..`max_hops` hops to a seller of it
    (payees: agents offering the good). A buyer with no route at all within `max_hops` hops is
    marked HOP_LIMIT when one more hop would reach a seller, else NO_ROUTE. O(E * H) per good,
    one compiled call (`candidates`) for all goods."""
    return RoutedCandidates(*candidates(u=u, v=v, usable=usable, capacity=capacity, balance_u=balance_u,
                                        sell_qty=sell_qty, buy_qty=buy_qty, sells_good=sells_good,
                                        buys_good=buys_good, max_hops=int(max_hops)))
