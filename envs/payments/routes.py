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

from ..compiled import jit, register
from .reasons import HOP_LIMIT, NO_ROUTE


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


@jit
def _pack_nb(u, v, capacity, balance_u, usable):  # pragma: no cover - compiled
    """(u, v, u's side, v's side, slot, count) of the usable channels, in slot order, listed
    without a branch: what every level reads, in a third less memory than the slot arrays
    (the levels are bound by memory traffic at 10k agents, not arithmetic)."""
    e_n = u.shape[0]
    pu = np.empty(e_n, dtype=np.int32)
    pv = np.empty(e_n, dtype=np.int32)
    pbu = np.empty(e_n)
    pbv = np.empty(e_n)
    pch = np.empty(e_n, dtype=np.int32)
    m = 0
    for ch in range(e_n):
        bu = balance_u[ch]
        pu[m] = u[ch]
        pv[m] = v[ch]
        pbu[m] = bu
        pbv[m] = capacity[ch] - bu
        pch[m] = ch
        m += usable[ch]
    return pu, pv, pbu, pbv, pch, m


@jit
def _relax_nb(pu, pv, pbu, pbv, pch, m, prev, best, via):  # pragma: no cover - compiled
    """One level over the packed usable channels (`_pack_nb`), both directions, in directed-edge
    order (2c: u -> v paying from u's side, 2c + 1: v -> u): best[x] = max(best[x], min(side,
    prev[y])) over the edges x -> y, `via` the first edge that raised it. The one relaxation pass
    every compiled level shares. No test is needed for the rest: a payee's best is already inf,
    so edges out of payees never win, and an empty (or NaN) side gives 0 (or NaN), which never
    beats a width."""
    for i in range(m):
        a = pu[i]
        b = pv[i]
        p = prev[b]
        sd = pbu[i]
        c = p if p < sd else sd
        if c > best[a]:
            best[a] = c
            via[a] = 2 * np.int64(pch[i])
        p = prev[a]
        sd = pbv[i]
        c = p if p < sd else sd
        if c > best[b]:
            best[b] = c
            via[b] = 2 * np.int64(pch[i]) + 1


@jit
def _walk_nb(u, v, capacity, balance_u, payee, buyers, first_via, via, max_hops):  # pragma: no cover - compiled
    """(route [B, H], end [B], width [B]) of each buyer's route: its first edge `first_via`, then
    level H-1's, H-2's, ... edges; kept only when it has >= 2 hops and ends at a payee."""
    m = buyers.shape[0]
    h = max_hops
    route = np.full((m, h), -1, dtype=np.int64)
    end = np.empty(m, dtype=np.int64)
    rw = np.zeros(m)
    for i in range(m):
        b = buyers[i]
        node = b
        d = first_via[b]
        hops = 0
        wmin = np.inf
        for j in range(h):
            if j > 0:
                d = via[h - j, node]
            if d < 0:
                break
            ch = d >> 1
            route[i, j] = ch
            if d & 1 == 0:
                sd = balance_u[ch]
                node = v[ch]
            else:
                sd = capacity[ch] - balance_u[ch]
                node = u[ch]
            if sd < wmin:
                wmin = sd
            hops += 1
        end[i] = node
        if hops >= 2 and payee[node]:
            rw[i] = wmin
        else:
            for j in range(h):
                route[i, j] = -1
    return route, end, rw


@jit
def _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops):  # pragma: no cover - compiled
    """The search for max_hops < 2 (no routed alternative can exist): levels 1..H+1 over all edges,
    the reasons from levels H and H + 1."""
    n = payee.shape[0]
    levels = max_hops + 1
    width = np.zeros((levels + 1, n))
    via = np.full((levels + 1, n), -1, dtype=np.int64)
    for i in range(n):
        if payee[i]:
            width[0, i] = np.inf
    pu, pv, pbu, pbv, pch, m_ch = _pack_nb(u, v, capacity, balance_u, usable)
    for k in range(1, levels + 1):
        width[k, :] = width[k - 1, :]
        via[k, :] = via[k - 1, :]
        _relax_nb(pu, pv, pbu, pbv, pch, m_ch, width[k - 1], width[k], via[k])
    m = buyers.shape[0]
    unrouted = np.zeros(m, dtype=np.int8)
    for i in range(m):
        b = buyers[i]
        if width[max_hops, b] <= 0.0:
            unrouted[i] = HOP_LIMIT if width[max_hops + 1, b] > 0.0 else NO_ROUTE
    route, end, rw = _walk_nb(u, v, capacity, balance_u, payee, buyers, via[max_hops], via, max_hops)
    return route, end, rw, unrouted


@jit
def _search_multi_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops):  # pragma: no cover - compiled
    """The search for max_hops >= 2 in H + (1) passes of `_relax_nb` over the packed usable
    channels (`_pack_nb`; a directed edge list with per-edge tests cost more than the passes):
    levels 1..H-1 over all nodes, then the multi-hop last pass (edges not into a payee, widths
    from 0) over all nodes. That pass also answers level H: a buyer reaches a payee within H
    hops iff its level H-1 or its last pass is > 0 (an edge straight into a payee makes level
    1 > 0). Level H + 1 (hop limit or no route) only when some buyer reaches no payee: a
    neighbour of such a buyer has level H-1 = 0, so its level H > 0 iff its last pass is > 0."""
    n = payee.shape[0]
    h = max_hops
    width = np.zeros((h, n))
    via = np.full((h, n), -1, dtype=np.int64)
    for i in range(n):
        if payee[i]:
            width[0, i] = np.inf
    pu, pv, pbu, pbv, pch, m_ch = _pack_nb(u, v, capacity, balance_u, usable)
    for k in range(1, h):
        width[k, :] = width[k - 1, :]
        via[k, :] = via[k - 1, :]
        _relax_nb(pu, pv, pbu, pbv, pch, m_ch, width[k - 1], width[k], via[k])
    prev = width[h - 1]
    into = np.where(payee, 0.0, prev)     # the last pass: edges into a payee never count
    last_w = np.where(payee, np.inf, 0.0)
    last_v = np.full(n, -1, dtype=np.int64)
    _relax_nb(pu, pv, pbu, pbv, pch, m_ch, into, last_w, last_v)
    stuck = np.zeros(n, dtype=np.bool_)
    any_stuck = False
    for b in buyers:
        if not (prev[b] > 0.0 or last_w[b] > 0.0):
            stuck[b] = True
            any_stuck = True
    hop_limit = np.zeros(n, dtype=np.bool_)
    if any_stuck:
        for i in range(m_ch):
            a = pu[i]
            b = pv[i]
            if stuck[a] & (last_w[b] > 0.0) & (pbu[i] > 0.0):
                hop_limit[a] = True
            if stuck[b] & (last_w[a] > 0.0) & (pbv[i] > 0.0):
                hop_limit[b] = True
    m = buyers.shape[0]
    unrouted = np.zeros(m, dtype=np.int8)
    for i in range(m):
        b = buyers[i]
        if stuck[b]:
            unrouted[i] = HOP_LIMIT if hop_limit[b] else NO_ROUTE
    route, end, rw = _walk_nb(u, v, capacity, balance_u, payee, buyers, last_v, via, max_hops)
    return route, end, rw, unrouted


def _search_compiled(u, v, capacity, balance_u, usable, payee, buyers, max_hops):
    """The compiled search (`_search_multi_nb` when routes can have 2 hops or more)."""
    buyers = np.ascontiguousarray(buyers, dtype=np.int64)
    if max_hops < 2:
        return _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops)
    return _search_multi_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops)


search = register("route_search", search_numpy, _search_compiled if _search_multi_nb is not None else None)


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


@jit
def _candidates_nb(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good, buys_good,
                   max_hops):  # pragma: no cover - compiled
    n = sell_qty.shape[0]
    unrouted = np.zeros(n, dtype=np.int8)
    g_max = -1
    for i in range(n):
        if buy_qty[i] > 0.0 and buys_good[i] > g_max:
            g_max = buys_good[i]
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
    for g in range(g_max + 1):
        if not wanted[g]:
            continue
        any_payee = False
        for i in range(n):
            payee[i] = sell_qty[i] > 0.0 and sells_good[i] == g
            any_payee = any_payee or payee[i]
        m = 0
        for i in range(n):
            if buy_qty[i] > 0.0 and buys_good[i] == g and not payee[i]:
                m += 1
        buyers = np.empty(m, dtype=np.int64)
        m = 0
        for i in range(n):
            if buy_qty[i] > 0.0 and buys_good[i] == g and not payee[i]:
                buyers[m] = i
                m += 1
        if not any_payee:
            for i in range(m):
                unrouted[buyers[i]] = NO_ROUTE
            continue
        if max_hops >= 2:
            route, end, width, why = _search_multi_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops)
        else:
            route, end, width, why = _search_short_nb(u, v, capacity, balance_u, usable, payee, buyers, max_hops)
        for i in range(m):
            unrouted[buyers[i]] = why[i]
            if route[i, 0] >= 0:
                o_s[k] = end[i]
                o_b[k] = buyers[i]
                o_r[k] = route[i]
                o_w[k] = width[i]
                k += 1
    return o_s[:k].copy(), o_b[:k].copy(), o_r[:k].copy(), o_w[:k].copy(), unrouted


candidates = register("routed_candidates", candidates_numpy, _candidates_nb)


def routed_candidates(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good, buys_good,
                      max_hops: int) -> RoutedCandidates:
    """For every good wanted, every buyer's widest route of 2..`max_hops` hops to a seller of it
    (payees: agents offering the good). A buyer with no route at all within `max_hops` hops is
    marked HOP_LIMIT when one more hop would reach a seller, else NO_ROUTE. O(E * H) per good,
    one compiled call (`candidates`) for all goods."""
    return RoutedCandidates(*candidates(u=u, v=v, usable=usable, capacity=capacity, balance_u=balance_u,
                                        sell_qty=sell_qty, buy_qty=buy_qty, sells_good=sells_good,
                                        buys_good=buys_good, max_hops=int(max_hops)))
