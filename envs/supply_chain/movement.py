"""Movement in three phases (paper 3.2.2, Movement; Appendix S1), vectorized over agents.

1. Business prospect: over the agent's neighbourhood (agents within `radius`), is there a
   supplier of its input (Farmers need none), a customer of its product, a seller of food
   (Sellers feed themselves)? The prospect s is the mean of min(suppliers / 2, 1),
   min(customers / 2, 1) and min(food sellers, 1) (two partners on each side of the loop make a
   neighbourhood safe; our numbers, the paper gives none). Partners that do not do business count
   as absent: suppliers while the agent idles for want of input, customers while two batches of its
   product are unsold, food sellers while it is hungry (vital < 0.6) without food.
2. Stay or move: a satisfied agent stays. It is satisfied when s >= 0.7 + 0.3 r, so the higher
   its risk factor r the more it asks of a neighbourhood, and even then a risk-taker moves on
   with probability `restless` x r (it "counts on the next opportunity").
3. Direction and speed: the resultant of vectors toward other agents weighted by the transaction
   history with them (1 + transactions, for its customers and its suppliers), plus a unit pull
   toward the nearest of 8 randomly drawn producers of every good it lacks nearby (agents know
   where the others are; the paper
   leaves the weights out, these are ours), blended with yesterday's heading by `inertia`; a zero
   resultant keeps the heading, or picks a random one. Speed: `max_speed` x (1 - s / 2) x (0.5 + r),
   at most `max_speed`.

A learned agent's `move` action replaces phase 2 and the speed: it moves when move > 0, at
move x max_speed, in the same direction.
"""

from __future__ import annotations

import numpy as np

from ..compiled import Kernel, jit
from .space import _HALF, _pairs_numpy, grid, reflect


def _roles_loop(i, j, in_good, out_good, food, n):
    """Per neighbour pair (i, j): is j a customer of i (buys i's product: the next kind in the loop,
    or anyone but a Seller for food); per agent the counts of suppliers, customers and food sellers
    among its neighbours. Loops, compiled."""
    counts = np.zeros((n, 3))
    customer = np.empty(i.shape[0], np.bool_)
    for p in range(i.shape[0]):
        a = i[p]
        b = j[p]
        cus = in_good[b] == out_good[a] or (out_good[a] == food and out_good[b] != food)
        customer[p] = cus
        if out_good[b] == in_good[a]:
            counts[a, 0] += 1.0
        if cus:
            counts[a, 1] += 1.0
        if out_good[b] == food:
            counts[a, 2] += 1.0
    return counts, customer


roles_kernel = Kernel("supply_chain_roles", _roles_loop, jit(_roles_loop))


def neighbour_roles(st, i: np.ndarray, j: np.ndarray, food: int) -> tuple[np.ndarray, np.ndarray]:
    """([N, 3] counts of suppliers, customers, food sellers near, [P] bool: j is a customer of i)."""
    return roles_kernel(i=i, j=j, in_good=st.in_good, out_good=st.out_good, food=int(food), n=st.n)


def _near_numpy(agents, sx, sy, scx, scy, starts, counts, nx, ny, radius, in_good, out_good, food, n):
    """The neighbourhood of the day in one query: ([N, 3] role counts, customer candidates (seller, customer)
    in neighbour order: `neighbour_roles` over `space.neighbour_pairs`' ordered pairs, filtered). NumPy twin."""
    a, b, _ = _pairs_numpy(sx, sy, scx, scy, starts, counts, nx, ny, radius)
    i = np.concatenate([agents[a], agents[b]])
    j = np.concatenate([agents[b], agents[a]])
    customer = (in_good[j] == out_good[i]) | ((out_good[i] == food) & (out_good[j] != food))
    role = np.zeros((n, 3))
    for col, hit in enumerate((out_good[j] == in_good[i], customer, out_good[j] == food)):
        role[:, col] = np.bincount(i[hit], minlength=n)
    return role, i[customer], j[customer]


def _near_loop(agents, sx, sy, scx, scy, starts, counts, nx, ny, radius, in_good, out_good, food, n):
    """`_near_numpy` in one pass over the close pairs of the cell list (compiled; `space._pairs_loop`'s
    order): both directions of every pair counted, the customer candidates of the first direction in
    pair order, then those of the second. Works in cell order (goods and counts gathered by position,
    so a cell's agents sit side by side in memory) and scatters to agents at the end."""
    r2 = radius * radius
    m = sx.shape[0]
    og = np.empty(m, np.int64)
    ig = np.empty(m, np.int64)
    for p in range(m):
        og[p] = out_good[agents[p]]
        ig[p] = in_good[agents[p]]
    rs = np.zeros((m, 3))
    total = 0                          # candidate pairs: a bound on the customer candidates each way
    for part in range(5):
        for p in range(m):
            if part == 0:
                c = scx[p] * ny + scy[p]
                total += starts[c] + counts[c] - p - 1
            else:
                cx = scx[p] + _HALF[part - 1, 0]
                cy = scy[p] + _HALF[part - 1, 1]
                if cx >= 0 and cx < nx and cy >= 0 and cy < ny:
                    total += counts[cx * ny + cy]
    fa = np.empty(total, np.int64)
    fb = np.empty(total, np.int64)
    ba = np.empty(total, np.int64)
    bb = np.empty(total, np.int64)
    nf = 0
    nb = 0
    for part in range(5):
        for p in range(m):
            if part == 0:
                c = scx[p] * ny + scy[p]
                lo = p + 1
                hi = starts[c] + counts[c]
            else:
                cx = scx[p] + _HALF[part - 1, 0]
                cy = scy[p] + _HALF[part - 1, 1]
                if cx < 0 or cx >= nx or cy < 0 or cy >= ny:
                    continue
                c = cx * ny + cy
                lo = starts[c]
                hi = lo + counts[c]
            px = sx[p]
            py = sy[p]
            oa = og[p]
            ia = ig[p]
            for q in range(lo, hi):
                dx = px - sx[q]
                dy = py - sy[q]
                if dx * dx + dy * dy >= r2:
                    continue
                ob = og[q]
                ib = ig[q]
                if ob == ia:
                    rs[p, 0] += 1.0
                if oa == ib:
                    rs[q, 0] += 1.0
                if ob == food:
                    rs[p, 2] += 1.0
                if oa == food:
                    rs[q, 2] += 1.0
                if ib == oa or (oa == food and ob != food):     # q buys p's product
                    rs[p, 1] += 1.0
                    fa[nf] = p
                    fb[nf] = q
                    nf += 1
                if ia == ob or (ob == food and oa != food):     # p buys q's product
                    rs[q, 1] += 1.0
                    ba[nb] = q
                    bb[nb] = p
                    nb += 1
    role = np.zeros((n, 3))
    for p in range(m):
        a = agents[p]
        role[a, 0] = rs[p, 0]
        role[a, 1] = rs[p, 1]
        role[a, 2] = rs[p, 2]
    ci = np.empty(nf + nb, np.int64)
    cj = np.empty(nf + nb, np.int64)
    for k in range(nf):
        ci[k] = agents[fa[k]]
        cj[k] = agents[fb[k]]
    for k in range(nb):
        ci[nf + k] = agents[ba[k]]
        cj[nf + k] = agents[bb[k]]
    return role, ci, cj


near_kernel = Kernel("supply_chain_neighbourhood", _near_numpy, jit(_near_loop))


def neighbourhood(st, radius: float, width: float, height: float, food: int):
    """The day's neighbourhood query (grid cell list, no pair arrays): ([N, 3] counts of suppliers,
    customers and food sellers near, customer candidates (seller [C], customer [C]) in neighbour order)."""
    n = st.n
    if np.count_nonzero(st.alive) < 2 or radius <= 0:
        z = np.zeros(0, np.int64)
        return np.zeros((n, 3)), z, z
    agents, sx, sy, scx, scy, starts, counts, nx, ny = grid(st.xy, st.alive, radius, width, height)
    return near_kernel(agents=agents, sx=sx, sy=sy, scx=scx, scy=scy, starts=starts, counts=counts, nx=nx, ny=ny,
                       radius=float(radius), in_good=st.in_good, out_good=st.out_good, food=int(food), n=n)


def prospect(st, counts: np.ndarray, food: int, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([N] prospect s in [0, 1], [N, 3] counts of the neighbours that do business)."""
    n = st.n
    have = np.minimum(counts / np.array([2.0, 2.0, 1.0]), 1.0)
    # neighbours that do not do business count as absent: idle for want of input, unsold product,
    # hungry without food
    rows = np.arange(n)
    stock_in = np.where(st.in_good >= 0, st.hold[rows, np.maximum(st.in_good, 0)], 1.0)
    product = st.hold[rows, st.out_good]
    starved = (st.busy == 0) & (stock_in < 1.0) & (product < 1.0)
    have[:, 0] = np.where(st.in_good < 0, 1.0, np.where(starved, 0.0, have[:, 0]))
    have[:, 1] = np.where(product >= 2.0 * batch[st.kind], 0.0, have[:, 1])
    hungry = (st.hold[:, food] < 1.0) & (st.vital < 0.6)
    have[:, 2] = np.where(st.out_good == food, 1.0, np.where(hungry, 0.0, have[:, 2]))
    counts = np.where(have > 0, counts, 0.0)
    return have.mean(axis=1), counts


def satisfied(s: np.ndarray, r: np.ndarray, restless: float, draws: np.ndarray) -> np.ndarray:
    """Phase 2: stays where it is."""
    return (s >= 0.7 + 0.3 * r) & (draws >= restless * r)


def rule_speed(s: np.ndarray, r: np.ndarray, max_speed: float) -> np.ndarray:
    return np.minimum(max_speed * (1.0 - 0.5 * s) * (0.5 + r), max_speed)


def _direction_loop(xy, heading, partner, n_tr, goal, lacks, angle):
    """Headings [N, 2] (loops; compiled by numba, the same code as its twin)."""
    n, k = partner.shape
    res = np.zeros((n, 2))
    for a in range(n):                        # history: customers pull sellers and sellers customers
        for s in range(k):
            b = partner[a, s]
            if b < 0:
                continue
            dx = xy[b, 0] - xy[a, 0]
            dy = xy[b, 1] - xy[a, 1]
            norm = max(np.sqrt(dx * dx + dy * dy), 1e-9)
            w = (1.0 + n_tr[a, s]) / norm
            res[a, 0] += w * dx
            res[a, 1] += w * dy
            res[b, 0] -= w * dx
            res[b, 1] -= w * dy
    out = np.empty((n, 2))
    for a in range(n):
        for role in range(3):                 # a unit pull toward a producer of what it lacks nearby
            if not lacks[a, role]:
                continue
            dx = goal[a, role, 0] - xy[a, 0]
            dy = goal[a, role, 1] - xy[a, 1]
            norm = max(np.sqrt(dx * dx + dy * dy), 1e-9)
            res[a, 0] += dx / norm
            res[a, 1] += dy / norm
        norm = np.sqrt(res[a, 0] ** 2 + res[a, 1] ** 2)
        if norm > 1e-9:
            out[a, 0] = res[a, 0] / norm
            out[a, 1] = res[a, 1] / norm
        else:
            h = np.sqrt(heading[a, 0] ** 2 + heading[a, 1] ** 2)
            if h > 0:
                out[a, 0] = heading[a, 0] / h
                out[a, 1] = heading[a, 1] / h
            else:
                out[a, 0] = np.cos(angle[a])
                out[a, 1] = np.sin(angle[a])
    return out


direction_kernel = Kernel("supply_chain_direction", _direction_loop, jit(_direction_loop))


def goals(st, counts: np.ndarray, food: int, rng: np.random.Generator, radius: float, sample: int = 8):
    """([N, 3, 2] goal points, [N, 3] bool lacks): for each role it lacks nearby (supplier of its
    input, customer of its product, seller of food), the nearest of `sample` alive producers of that
    good drawn at random (agents know where others are, not who is best; with few producers, the
    nearest), preferring those outside its neighbourhood."""
    n = st.n
    wanted = np.stack([st.in_good, np.where(st.out_good == food, -1, st.out_good + 1), np.full(n, food)], axis=1)
    wanted[:, 1] = np.where(wanted[:, 1] >= st.hold.shape[1], -1, wanted[:, 1])
    lacks = (counts == 0) & (wanted >= 0) & (wanted != st.out_good[:, None]) & st.alive[:, None]
    goal = np.zeros((n, 3, 2))
    for g in range(st.hold.shape[1]):          # per good (4), vectorized over the agents lacking it
        producers = np.flatnonzero(st.alive & (st.out_good == g))
        who, role = np.nonzero(lacks & (wanted == g))
        if who.size == 0:
            continue
        if producers.size == 0:
            lacks[who, role] = False
            continue
        pick = producers[rng.integers(0, producers.size, (who.size, sample))]
        goal[who, role] = st.xy[nearest_kernel(xy=st.xy, who=who, pick=pick, radius=float(radius))]
    return goal, lacks


def _nearest_numpy(xy, who, pick, radius):
    """[W] for each agent `who[w]`, the nearest of its drawn producers `pick[w]` outside its radius
    (the ones in range did not do business); all in range: the first drawn. NumPy twin."""
    d = np.linalg.norm(xy[pick] - xy[who][:, None, :], axis=2)
    d = np.where(d < radius, np.inf, d)
    d[np.isinf(d).all(axis=1)] = 0.0
    return pick[np.arange(who.size), np.argmin(d, axis=1)]


def _nearest_loop(xy, who, pick, radius):
    """`_nearest_numpy` one agent at a time (compiled): the same distances, the same first minimum."""
    w, s = pick.shape
    out = np.empty(w, dtype=np.int64)
    for k in range(w):
        a = who[k]
        best, best_d = 0, np.inf
        for j in range(s):
            dx = xy[pick[k, j], 0] - xy[a, 0]
            dy = xy[pick[k, j], 1] - xy[a, 1]
            d = np.sqrt(dx * dx + dy * dy)
            if d >= radius and d < best_d:
                best, best_d = j, d
        out[k] = pick[k, best]
    return out


nearest_kernel = Kernel("supply_chain_nearest_goal", _nearest_numpy, jit(_nearest_loop))


def direction(st, counts: np.ndarray, rng_angle: np.ndarray, rng: np.random.Generator, radius: float) -> np.ndarray:
    """[N, 2] unit heading: the resultant of history-weighted pulls toward partners and unit pulls
    toward producers of what it lacks nearby; zero resultant: the old heading, or random."""
    goal, lacks = goals(st, counts, st.hold.shape[1] - 1, rng, radius)
    return direction_kernel(xy=st.xy, heading=st.heading, partner=st.partner, n_tr=st.n_tr, goal=goal,
                            lacks=lacks, angle=rng_angle)


def move(st, target: np.ndarray, speed: np.ndarray, inertia: float, width: float, height: float) -> None:
    """Phase 3 in place: heading blended with the old one, position advanced, walls reflect."""
    h = inertia * st.heading + (1.0 - inertia) * target
    norm = np.linalg.norm(h, axis=1)
    h = np.where((norm > 1e-9)[:, None], h / np.maximum(norm, 1e-12)[:, None], target)
    speed = np.where(st.alive, speed, 0.0)
    new, h = reflect(st.xy + h * speed[:, None], h, width, height)
    moved = np.linalg.norm(new - st.xy, axis=1)
    st.path += moved
    st.speed = moved
    st.xy = new
    st.heading = np.where((speed > 0)[:, None], h, st.heading)


__all__ = ["neighbourhood", "near_kernel", "neighbour_roles", "prospect", "satisfied", "rule_speed", "direction", "move", "nearest_kernel"]
