"""Routes: the widest path of at most H hops from every payer to any of a set of payees.

Money flows payer -> ... -> payee; a hop over channel c from node x needs x's side of c. The
search is a multi-source dynamic programme over the directed channel graph (2E directed edges:
edge d < E is u -> v of slot d, paying from balance_u; d >= E is v -> u of slot d - E), one pass
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
    """(src, dst, side, usable) over the 2E directed edges (u -> v first, then v -> u)."""
    src = np.concatenate((u, v)).astype(np.int64)
    dst = np.concatenate((v, u)).astype(np.int64)
    side = np.concatenate((balance_u, capacity - balance_u))
    ok = np.concatenate((usable, usable))
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


def extract_routes(w: Widest, dst, n_slots: int, payers: np.ndarray, max_hops: int,
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
        route[alive, j] = d[alive] % n_slots
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


__all__ = ["directed_edges", "level", "level_numpy", "widest_routes", "extract_routes", "route_width", "Widest", "RoutedCandidates",
           "routed_candidates"]


class RoutedCandidates(NamedTuple):
    """Sellers a buyer reaches over a route of 2..H hops (one widest route per buyer and good)."""

    seller: np.ndarray    # [P] int64
    buyer: np.ndarray     # [P] int64
    route: np.ndarray     # [P, H] int64 channel slots from the buyer to the seller, -1 padded
    width: np.ndarray     # [P] EUR the narrowest paying side along the route
    unrouted: np.ndarray  # [N] int8 reasons.NO_ROUTE / HOP_LIMIT of buyers reaching no seller within H hops, else 0


def routed_candidates(u, v, usable, capacity, balance_u, sell_qty, buy_qty, sells_good, buys_good,
                      max_hops: int) -> RoutedCandidates:
    """For every good wanted, every buyer's widest route of 2..`max_hops` hops to a seller of it
    (payees: agents offering the good). A buyer with no route at all within `max_hops` hops is
    marked HOP_LIMIT when one more hop would reach a seller, else NO_ROUTE. O(E * H) per good."""
    n, e = sell_qty.shape[0], u.shape[0]
    src, dst, side, ok = directed_edges(u, v, capacity, balance_u, usable)
    unrouted = np.zeros(n, dtype=np.int8)
    wants = buy_qty > 0.0
    parts = []
    for g in np.unique(buys_good[wants & (buys_good >= 0)]).tolist():   # goods are few
        payee = (sell_qty > 0.0) & (sells_good == g)
        buyers = np.flatnonzero(wants & (buys_good == g) & ~payee)
        if not payee.any():
            unrouted[buyers] = NO_ROUTE
            continue
        w = widest_routes(src, dst, side, ok, payee, max_hops, extra_levels=1, multi_hop=True)
        none = w.width[max_hops][buyers] <= 0.0
        unrouted[buyers[none]] = np.where(w.width[max_hops + 1][buyers[none]] > 0.0, HOP_LIMIT, NO_ROUTE)
        b = buyers[w.last_width[buyers] > 0.0]
        route, end, hops = extract_routes(w, dst, e, b, max_hops)
        keep = (hops >= 2) & payee[end]
        route, b, end = route[keep], b[keep], end[keep]
        parts.append((end, b, route, route_width(route, b, u, v, capacity, balance_u)))
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return RoutedCandidates(z, z, np.zeros((0, max_hops), dtype=np.int64), np.zeros(0), unrouted)
    s, b, r, wd = (np.concatenate(x) for x in zip(*parts))
    return RoutedCandidates(s, b, r, wd, unrouted)
