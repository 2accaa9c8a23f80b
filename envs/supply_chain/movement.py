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

import ctypes

import numpy as np

from ..compiled import Kernel, ParallelKernel, affine_u128, jit
from ..risk_rules import scalar_clip_to, scalar_maximum, scalar_minimum
from ..streams import MULT, double_of, fill_doubles, generator_of, jump, jump_table, output_of, put_generator, state_view
from .parallel import LIGHT, MIN_AGENTS, kernel, prange
from .protocol import slot_reach
from .pulls import pulls_kernel
from .space import _HALF, _pairs_numpy, grid, reflect


def _near_numpy(agents, sx, sy, scx, scy, starts, counts, nx, ny, radius, in_good, out_good, food, n):
    """The neighbourhood of the day in one query: ([N, 3] role counts, the customer candidates grouped by
    seller: seller a's are `cand[start[a]:start[a + 1]]`, in neighbour order (the ordered close pairs of
    `space._pairs_numpy`, both directions, that are sales)). NumPy twin."""
    a, b, _ = _pairs_numpy(sx, sy, scx, scy, starts, counts, nx, ny, radius)
    i = np.concatenate([agents[a], agents[b]])
    j = np.concatenate([agents[b], agents[a]])
    customer = (in_good[j] == out_good[i]) | ((out_good[i] == food) & (out_good[j] != food))
    role = np.zeros((n, 3))
    for col, hit in enumerate((out_good[j] == in_good[i], customer, out_good[j] == food)):
        role[:, col] = np.bincount(i[hit], minlength=n)
    ci, cj = i[customer], j[customer]
    start = np.zeros(n + 1, np.int64)
    start[1:] = np.cumsum(np.bincount(ci, minlength=n))
    return role, start, cj[np.argsort(ci, kind="stable")]


def _cell_range_py(p, part, scx, scy, starts, counts, nx, ny):  # pragma: no cover
    """The positions [lo, hi) that agent p (position p in cell order) pairs with in `part` of the
    half-neighbourhood: part 0 the agents after it in its own cell, parts 1-4 the cell at offset
    `_HALF[part - 1]` (empty when that cell is off the grid), as in `space._pairs_numpy`."""
    if part == 0:
        c = scx[p] * ny + scy[p]
        return p + 1, starts[c] + counts[c]
    cx = scx[p] + _HALF[part - 1, 0]
    cy = scy[p] + _HALF[part - 1, 1]
    if cx < 0 or cx >= nx or cy < 0 or cy >= ny:
        return 0, 0
    c = cx * ny + cy
    return starts[c], starts[c] + counts[c]


_cell_range = jit(_cell_range_py, inline=True) or _cell_range_py


def _pair_bound_py(counts, nx, ny):  # pragma: no cover - compiled
    """How many pairs the cell ranges of `_cell_range` hold, all agents and parts (the buffers' bound), counted
    per cell: k (k - 1) / 2 within a cell of k agents, k x the agents of each of its half-neighbourhood's cells."""
    total = 0
    for cx in range(nx):
        for cy in range(ny):
            k = counts[cx * ny + cy]
            if k == 0:
                continue
            total += k * (k - 1) // 2
            for h in range(4):
                ox = cx + _HALF[h, 0]
                oy = cy + _HALF[h, 1]
                if ox < 0 or ox >= nx or oy < 0 or oy >= ny:
                    continue
                total += k * counts[ox * ny + oy]
    return total


_pair_bound = jit(_pair_bound_py) or _pair_bound_py


def _pair_roles_py(agents, in_good, out_good, food, n):  # pragma: no cover - compiled
    """(goods code of each position: out good x (G + 1) + in good + 1, codes C, the role table [C * C * 6]
    as floats and as whole numbers): for a close pair (p, q) of codes (cp, cq), row (cp * C + cq) holds
    whether q supplies p's input, p supplies q's, q sells food, p sells food, q buys p's product, p buys
    q's product (the tests of `_near_numpy`, over the goods the two agents have)."""
    m = agents.shape[0]
    g = 0
    for a in range(n):
        g = max(g, out_good[a] + 1, in_good[a] + 1)
    w = g + 1
    nc = g * w
    code = np.empty(m, np.int64)
    for p in range(m):
        code[p] = out_good[agents[p]] * w + in_good[agents[p]] + 1
    tf = np.empty(nc * nc * 6)
    ti = np.empty(nc * nc * 6, np.int64)
    for cp in range(nc):
        oa = cp // w
        ia = cp % w - 1
        for cq in range(nc):
            ob = cq // w
            ib = cq % w - 1
            e = (cp * nc + cq) * 6
            ti[e] = ob == ia
            ti[e + 1] = oa == ib
            ti[e + 2] = ob == food
            ti[e + 3] = oa == food
            ti[e + 4] = ib == oa or (oa == food and ob != food)
            ti[e + 5] = ia == ob or (ob == food and oa != food)
            for j in range(6):
                tf[e + j] = ti[e + j]
    return code, nc, tf, ti


_pair_roles = jit(_pair_roles_py) or _pair_roles_py


def _near_loop(agents, sx, sy, scx, scy, starts, counts, nx, ny, radius, in_good, out_good, food, n):
    """`_near_numpy` in one pass over the close pairs of the cell list (compiled; `space._pairs_numpy`'s
    order): both directions of every pair counted, the customer candidates of the first direction in
    pair order, then those of the second, each put in its seller's group (the count of customers near
    it is the size of the group). Works in cell order (a cell's agents sit side by side in memory) and
    scatters to agents at the end; a pair's six role tests are one row of a table over the two agents'
    goods (`_pair_roles`), added without branches (counts are whole numbers: any order is exact)."""
    r2 = radius * radius
    m = sx.shape[0]
    code, nc, tf, ti = _pair_roles(agents, in_good, out_good, food, n)
    rs = np.zeros((m, 3))
    total = _pair_bound(counts, nx, ny)   # candidate pairs: a bound on the customer candidates each way
    fa = np.empty(total + 1, np.int64)  # + 1: each pair is written before it is known to be a candidate
    fb = np.empty(total + 1, np.int64)
    ba = np.empty(total + 1, np.int64)
    bb = np.empty(total + 1, np.int64)
    nf = 0
    nb = 0
    for part in range(5):
        for p in range(m):
            lo, hi = _cell_range(p, part, scx, scy, starts, counts, nx, ny)
            px = sx[p]
            py = sy[p]
            cp = code[p] * nc
            sup = 0.0                  # p's own counts, kept here while it meets its pairs of this part
            cus = 0.0
            fds = 0.0
            for q in range(np.uint64(lo), np.uint64(hi)):     # unsigned: no negative-index checks
                dx = px - sx[q]
                dy = py - sy[q]
                if dx * dx + dy * dy >= r2:
                    continue
                e = (cp + code[q]) * 6
                sup += tf[e]
                rs[q, 0] += tf[e + 1]
                fds += tf[e + 2]
                rs[q, 2] += tf[e + 3]
                cus += tf[e + 4]       # q buys p's product
                fa[nf] = p
                fb[nf] = q
                nf += ti[e + 4]
                rs[q, 1] += tf[e + 5]  # p buys q's product
                ba[nb] = q
                bb[nb] = p
                nb += ti[e + 5]
            rs[p, 0] += sup
            rs[p, 1] += cus
            rs[p, 2] += fds
    role = np.zeros((n, 3))
    for p in range(m):
        a = agents[p]
        role[a, 0] = rs[p, 0]
        role[a, 1] = rs[p, 1]
        role[a, 2] = rs[p, 2]
    start, pos = _groups(role, n)
    cand = np.empty(nf + nb, np.int64)
    for k in range(nf):
        s = agents[fa[k]]
        cand[pos[s]] = agents[fb[k]]
        pos[s] += 1
    for k in range(nb):
        s = agents[ba[k]]
        cand[pos[s]] = agents[bb[k]]
        pos[s] += 1
    return role, start, cand


def _group_starts(role, n):
    """(start [N + 1], a copy of start[:N]) of the candidates' seller groups: role[:, 1] counts each
    seller's customers near (whole numbers)."""
    start = np.zeros(n + 1, np.int64)
    for a in range(n):
        start[a + 1] = start[a] + np.int64(role[a, 1])
    return start, start[:n].copy()


def _near_strips(agents, sx, sy, scx, scy, starts, counts, nx, ny, radius, in_good, out_good, food, n):
    """`_near_loop` threaded (the parallel build of `near_kernel`; its serial build is `_near_loop`, which
    does less work on one thread), by strips of whole cell columns: a strip lists its candidates of each part into its own stretch (the lists are
    the stretches in part, then strip order: the serial order) and counts into its own rows, except the
    next strip's first column, which it counts apart (counts are whole numbers: any order is exact)."""
    r2 = radius * radius
    m = sx.shape[0]
    og = np.empty(m, np.int64)
    ig = np.empty(m, np.int64)
    for p in range(m):
        og[p] = out_good[agents[p]]
        ig[p] = in_good[agents[p]]
    # strips of whole columns with about m / strips positions each (positions are in column order)
    strips = min(nx, 16)
    first = np.empty(nx + 1, np.int64)            # the first position of each column
    for cx in range(nx):
        first[cx] = starts[cx * ny]
    first[nx] = m
    s_col = np.empty(strips + 1, np.int64)
    s_col[0] = 0
    cx = 0
    for t in range(1, strips):
        while cx < nx and first[cx] < t * m // strips:
            cx += 1
        s_col[t] = cx
    s_col[strips] = nx
    # candidate pairs of each (part, strip): a bound on its customer candidates each way
    bound = np.zeros((5, strips), np.int64)
    for t in prange(strips):
        for part in range(5):
            tot = 0
            for p in range(first[s_col[t]], first[s_col[t + 1]]):
                lo, hi = _cell_range(p, part, scx, scy, starts, counts, nx, ny)
                tot += hi - lo
            bound[part, t] = tot
    off = np.empty((5, strips), np.int64)
    total = 0
    for part in range(5):
        for t in range(strips):
            off[part, t] = total
            total += bound[part, t]
    fa = np.empty(total, np.int64)
    fb = np.empty(total, np.int64)
    ba = np.empty(total, np.int64)
    bb = np.empty(total, np.int64)
    nf = np.zeros((5, strips), np.int64)
    nb = np.zeros((5, strips), np.int64)
    rs = np.zeros((m, 3))
    e_at = np.empty(strips, np.int64)             # the next strip's first column: counted apart
    e_len = np.empty(strips, np.int64)
    e_off = np.zeros(strips + 1, np.int64)
    for t in range(strips):
        e_at[t] = first[s_col[t + 1]]
        e_len[t] = first[s_col[t + 1] + 1] - e_at[t] if s_col[t + 1] < nx else 0
        e_off[t + 1] = e_off[t] + e_len[t]
    edge = np.zeros((e_off[strips], 3))
    for t in prange(strips):
        lo_t = first[s_col[t]]
        hi_t = first[s_col[t + 1]]
        for part in range(5):
            kf = off[part, t]
            kb = off[part, t]
            for p in range(lo_t, hi_t):
                lo, hi = _cell_range(p, part, scx, scy, starts, counts, nx, ny)
                px = sx[p]
                py = sy[p]
                oa = og[p]
                ia = ig[p]
                for q in range(np.uint64(lo), np.uint64(hi)):     # unsigned: no negative-index checks
                    dx = px - sx[q]
                    dy = py - sy[q]
                    if dx * dx + dy * dy >= r2:
                        continue
                    ob = og[q]
                    ib = ig[q]
                    if ob == ia:
                        rs[p, 0] += 1.0
                    e = np.int64(q) - hi_t + e_off[t]     # q's row in `edge` when q is past this strip
                    if oa == ib:
                        if e < e_off[t]:
                            rs[q, 0] += 1.0
                        else:
                            edge[e, 0] += 1.0
                    if ob == food:
                        rs[p, 2] += 1.0
                    if oa == food:
                        if e < e_off[t]:
                            rs[q, 2] += 1.0
                        else:
                            edge[e, 2] += 1.0
                    if ib == oa or (oa == food and ob != food):     # q buys p's product
                        rs[p, 1] += 1.0
                        fa[kf] = p
                        fb[kf] = q
                        kf += 1
                    if ia == ob or (ob == food and oa != food):     # p buys q's product
                        if e < e_off[t]:
                            rs[q, 1] += 1.0
                        else:
                            edge[e, 1] += 1.0
                        ba[kb] = q
                        bb[kb] = p
                        kb += 1
            nf[part, t] = kf - off[part, t]
            nb[part, t] = kb - off[part, t]
    for t in range(strips):
        for x in range(e_len[t]):
            q = e_at[t] + x
            for col in range(3):
                rs[q, col] += edge[e_off[t] + x, col]
    role = np.zeros((n, 3))
    for p in prange(m):
        a = agents[p]
        role[a, 0] = rs[p, 0]
        role[a, 1] = rs[p, 1]
        role[a, 2] = rs[p, 2]
    # the candidates into their sellers' groups: the first direction's stretches in (part, strip) order,
    # then the second's (the serial order)
    start, pos = _groups(role, n)
    cand = np.empty(start[n], np.int64)
    for part in range(5):
        for t in range(strips):
            for x in range(off[part, t], off[part, t] + nf[part, t]):
                s = agents[fa[x]]
                cand[pos[s]] = agents[fb[x]]
                pos[s] += 1
    for part in range(5):
        for t in range(strips):
            for x in range(off[part, t], off[part, t] + nb[part, t]):
                s = agents[ba[x]]
                cand[pos[s]] = agents[bb[x]]
                pos[s] += 1
    return role, start, cand


_groups = jit(_group_starts) or _group_starts
near_kernel = ParallelKernel("supply_chain_neighbourhood", _near_numpy, jit(_near_loop), jit(_near_strips, parallel=True),
                             "agents", MIN_AGENTS)


def neighbourhood(st, radius: float, width: float, height: float, food: int):
    """The day's neighbourhood query (grid cell list, no pair arrays): ([N, 3] counts of suppliers,
    customers and food sellers near, the customer candidates grouped by seller (start [N + 1], customer [C]:
    seller a's are `cand[start[a]:start[a + 1]]`, in neighbour order))."""
    n = st.n
    if np.count_nonzero(st.alive) < 2 or radius <= 0:
        return np.zeros((n, 3)), np.zeros(n + 1, np.int64), np.zeros(0, np.int64)
    agents, sx, sy, scx, scy, starts, counts, nx, ny = grid(st.xy, st.alive, radius, width, height)
    return near_kernel(agents=agents, sx=sx, sy=sy, scx=scx, scy=scy, starts=starts, counts=counts, nx=nx, ny=ny,
                       radius=float(radius), in_good=st.in_good, out_good=st.out_good, food=int(food), n=n)


def prospect(st, counts: np.ndarray, food: int, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([N] prospect s in [0, 1], [N, 3] counts of the neighbours that do business)."""
    return prospect_kernel(counts=counts, in_good=st.in_good, out_good=st.out_good, hold=st.hold, busy=st.busy,
                           vital=st.vital, kind=st.kind, batch=batch, food=int(food))


def _prospect_numpy(counts, in_good, out_good, hold, busy, vital, kind, batch, food):
    """`prospect` over arrays (NumPy twin of `_prospect_loop`)."""
    n = in_good.shape[0]
    have = np.minimum(counts / np.array([2.0, 2.0, 1.0]), 1.0)
    # neighbours that do not do business count as absent: idle for want of input, unsold product,
    # hungry without food
    rows = np.arange(n)
    stock_in = np.where(in_good >= 0, hold[rows, np.maximum(in_good, 0)], 1.0)
    product = hold[rows, out_good]
    starved = (busy == 0) & (stock_in < 1.0) & (product < 1.0)
    have[:, 0] = np.where(in_good < 0, 1.0, np.where(starved, 0.0, have[:, 0]))
    have[:, 1] = np.where(product >= 2.0 * batch[kind], 0.0, have[:, 1])
    hungry = (hold[:, food] < 1.0) & (vital < 0.6)
    have[:, 2] = np.where(out_good == food, 1.0, np.where(hungry, 0.0, have[:, 2]))
    counts = np.where(have > 0, counts, 0.0)
    return have.mean(axis=1), counts


def _prospect_loop(counts, in_good, out_good, hold, busy, vital, kind, batch, food):
    """`_prospect_numpy` one agent at a time (compiled, threaded; the shares are halves, so their sum is exact).
    Written as selects (no short-circuit tests: the agents' conditions vary from one to the next, and
    mispredicted branches were most of this pass's time)."""
    n = in_good.shape[0]
    s = np.empty(n)
    out = np.empty((n, 3))
    for a in prange(n):
        c0 = counts[a, 0]
        c1 = counts[a, 1]
        c2 = counts[a, 2]
        h0 = _min2(c0 / 2.0, 1.0)
        h1 = _min2(c1 / 2.0, 1.0)
        h2 = _min2(c2 / 1.0, 1.0)
        ig = in_good[a]
        og = out_good[a]
        has_in = ig >= 0
        held_in = hold[a, ig if has_in else 0]
        stock_in = held_in if has_in else 1.0
        product = hold[a, og]
        starved = (busy[a] == 0) & (stock_in < 1.0) & (product < 1.0)
        hungry = (hold[a, food] < 1.0) & (vital[a] < 0.6)
        h0 = (0.0 if starved else h0) if has_in else 1.0
        h1 = 0.0 if product >= 2.0 * batch[kind[a]] else h1
        h2 = 1.0 if og == food else (0.0 if hungry else h2)
        out[a, 0] = c0 if h0 > 0 else 0.0
        out[a, 1] = c1 if h1 > 0 else 0.0
        out[a, 2] = c2 if h2 > 0 else 0.0
        s[a] = (h0 + h1 + h2) / 3
    return s, out


def satisfied(s: np.ndarray, r: np.ndarray, restless: float, draws: np.ndarray) -> np.ndarray:
    """Phase 2: stays where it is."""
    return (s >= 0.7 + 0.3 * r) & (draws >= restless * r)


def rule_speed(s: np.ndarray, r: np.ndarray, max_speed: float) -> np.ndarray:
    return np.minimum(max_speed * (1.0 - 0.5 * s) * (0.5 + r), max_speed)


def speeds(s: np.ndarray, r: np.ndarray, draws: np.ndarray, restless: float, max_speed: float) -> np.ndarray:
    """[N] the rule's speed of the day: 0 for the satisfied (phase 2), `rule_speed` for the others."""
    return speed_kernel(s=s, r=r, draws=draws, restless=float(restless), max_speed=float(max_speed))


def _speed_numpy(s, r, draws, restless, max_speed):
    """`speeds` over arrays (NumPy twin of `_speed_loop`)."""
    return np.where(satisfied(s, r, restless, draws), 0.0, rule_speed(s, r, max_speed))


def _speed_loop(s, r, draws, restless, max_speed):
    """`_speed_numpy` one agent at a time (compiled, threaded), the same float operations."""
    n = s.shape[0]
    out = np.empty(n)
    for a in prange(n):
        stays = (s[a] >= 0.7 + 0.3 * r[a]) and (draws[a] >= restless * r[a])
        out[a] = 0.0 if stays else _min2(max_speed * (1.0 - 0.5 * s[a]) * (0.5 + r[a]), max_speed)
    return out


def _speed_live_numpy(s, r, state, restless, max_speed):
    """`_speed_live_loop` with NumPy: a generator at `state` draws the speeds' doubles, `turn` is its state
    after them, and `state` is left past the angles' block."""
    n = s.shape[0]
    gen = generator_of(state)
    draws = gen.random(n)
    turn = state.copy()
    put_generator(turn, gen)
    gen.random(n)
    put_generator(state, gen)
    return _speed_numpy(s, r, draws, restless, max_speed), turn


def _speed_live_loop(s, r, state, restless, max_speed):
    """`speeds` with its draws (`rng.random(N)`) taken from a PCG64's live `state` ([state lo, hi, increment
    lo, hi], `streams.state_view`), which is left N doubles further on, where `rng.uniform(0, 2 pi, N)` (the
    headings' random angles) leaves it. Returns (speeds, turn: the state before those angles; `direction`
    computes the few it needs from it). No block of doubles drawn in NumPy, no generator state round trip."""
    n = s.shape[0]
    draws = np.empty(n)
    ih, il = state[3], state[2]
    sh, sl = fill_doubles(state[1], state[0], ih, il, draws)
    turn = np.empty(4, np.uint64)
    turn[0] = sl
    turn[1] = sh
    turn[2] = il
    turn[3] = ih
    sh, sl = _advance(sh, sl, ih, il, n)
    state[0] = sl
    state[1] = sh
    out = np.empty(n)
    for a in range(n):
        stays = (s[a] >= 0.7 + 0.3 * r[a]) and (draws[a] >= restless * r[a])
        out[a] = 0.0 if stays else _min2(max_speed * (1.0 - 0.5 * s[a]) * (0.5 + r[a]), max_speed)
    return out, turn


def _advance_py(sh, sl, ih, il, d):  # pragma: no cover - compiled
    """The PCG64 state (hi, lo) `d` >= 0 steps on (increment (ih, il)): `streams.jump`."""
    return jump(sh, sl, jump_table(ih, il, 0), 0, d)


def _angle_of(turn, a):
    """The random angle `rng.uniform(0, 2 pi, N)[a]` would give, from the state `turn` before those draws."""
    th, tl = _advance(turn[1], turn[0], turn[3], turn[2], a + 1)
    return 2.0 * np.pi * double_of(th, tl)


def _direction_loop(xy, heading, pull, goal, lacks, angle, turn):
    """Headings [N, 2] (loops; compiled by numba, the same code as its twin): the history pulls (`pull`,
    `history_pulls`) plus a unit pull toward a producer of each good it lacks nearby, normalized."""
    n = xy.shape[0]
    res = pull.copy()
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
        norm = np.sqrt(res[a, 0] * res[a, 0] + res[a, 1] * res[a, 1])
        if norm > 1e-9:
            out[a, 0] = res[a, 0] / norm
            out[a, 1] = res[a, 1] / norm
        else:
            h = np.sqrt(heading[a, 0] * heading[a, 0] + heading[a, 1] * heading[a, 1])
            if h > 0:
                out[a, 0] = heading[a, 0] / h
                out[a, 1] = heading[a, 1] / h
            else:
                ang = _angle(turn, a) if turn.shape[0] == 4 else angle[a]
                out[a, 0] = np.cos(ang)
                out[a, 1] = np.sin(ang)
    return out


direction_kernel = Kernel("supply_chain_direction", _direction_loop, jit(_direction_loop))


def _lacks_numpy(counts, in_good, out_good, alive, food, n_goods):
    """What each agent lacks nearby, grouped by good: ([N, 3] bool lacks, producers (alive agents by good,
    ascending), their starts [G + 1], (agent, role) pairs lacking each good (by good, then agent, then role),
    their starts [G + 1]). NumPy twin of `_lacks_loop`."""
    n = in_good.shape[0]
    wanted = np.stack([in_good, np.where(out_good == food, -1, out_good + 1), np.full(n, food)], axis=1)
    wanted[:, 1] = np.where(wanted[:, 1] >= n_goods, -1, wanted[:, 1])
    lacks = (counts == 0) & (wanted >= 0) & (wanted != out_good[:, None]) & alive[:, None]
    prod, who, role = [], [], []
    p_start, w_start = [0], [0]
    for g in range(n_goods):
        prod.append(np.flatnonzero(alive & (out_good == g)))
        w, r = np.nonzero(lacks & (wanted == g))
        who.append(w)
        role.append(r)
        p_start.append(p_start[-1] + prod[-1].size)
        w_start.append(w_start[-1] + w.size)
    return (lacks, np.concatenate(prod).astype(np.int64), np.array(p_start, np.int64),
            np.concatenate(who).astype(np.int64), np.concatenate(role).astype(np.int64), np.array(w_start, np.int64))


def _lacks_loop(counts, in_good, out_good, alive, food, n_goods):
    """`_lacks_numpy` with loops (compiled), the same groups in the same order."""
    n = in_good.shape[0]
    lacks = np.zeros((n, 3), np.bool_)
    wanted = np.empty((n, 3), np.int64)
    p_start = np.zeros(n_goods + 1, np.int64)
    w_start = np.zeros(n_goods + 1, np.int64)
    for a in range(n):
        og = out_good[a]
        nxt = -1 if og == food else og + 1
        if nxt >= n_goods:
            nxt = -1
        wanted[a, 0] = in_good[a]
        wanted[a, 1] = nxt
        wanted[a, 2] = food
        if alive[a]:
            p_start[og + 1] += 1
            for k in range(3):
                w = wanted[a, k]
                if counts[a, k] == 0 and w >= 0 and w != og:
                    lacks[a, k] = True
                    w_start[w + 1] += 1
    for g in range(n_goods):
        p_start[g + 1] += p_start[g]
        w_start[g + 1] += w_start[g]
    prod = np.empty(p_start[n_goods], np.int64)
    who = np.empty(w_start[n_goods], np.int64)
    role = np.empty(w_start[n_goods], np.int64)
    pp = p_start[:n_goods].copy()
    wp = w_start[:n_goods].copy()
    for a in range(n):
        if alive[a]:
            g = out_good[a]
            prod[pp[g]] = a
            pp[g] += 1
            for k in range(3):
                if lacks[a, k]:
                    w = wanted[a, k]
                    who[wp[w]] = a
                    role[wp[w]] = k
                    wp[w] += 1
    return lacks, prod, p_start, who, role, w_start


lacks_kernel = Kernel("supply_chain_lacks", _lacks_numpy, jit(_lacks_loop))


def goals(st, counts: np.ndarray, food: int, rng: np.random.Generator, radius: float, sample: int = 8):
    """([N, 3, 2] goal points (set only where it lacks), [N, 3] bool lacks): for each role it lacks nearby
    (supplier of its input, customer of its product, seller of food), the nearest of `sample` alive
    producers of that good drawn at random (agents know where others are, not who is best; with few
    producers, the nearest), preferring those outside its neighbourhood. The draws are `rng.integers(0, producers,
    (agents lacking, sample))` per good in turn; for a PCG64 `rng` they are taken inside one compiled
    pass (`goals_kernel`: the same numbers, the generator left where those calls leave it)."""
    n = st.n
    lacks, prod, p_start, who_all, role_all, w_start = lacks_kernel(
        counts=counts, in_good=st.in_good, out_good=st.out_good, alive=st.alive, food=int(food),
        n_goods=int(st.hold.shape[1]))
    goal = np.empty((n, 3, 2))          # written where it lacks (only those are read: `direction`)
    bg = rng.bit_generator
    live = state_view(rng)
    buf = _buffer_view(bg) if live is not None else None
    if buf is not None:                  # the live state and 32-bit buffer: no bg.state round trip
        words = np.array([live[1], live[0], live[3], live[2], buf[0], buf[1]], np.uint64)
        goals_kernel(xy=st.xy, who=who_all, role=role_all, w_start=w_start, prod=prod, p_start=p_start, words=words,
                     radius=float(radius), goal=goal, lacks=lacks, sample=int(sample))
        live[0], live[1] = words[1], words[0]
        buf[0], buf[1] = words[4], words[5]
    elif type(bg) is np.random.PCG64:
        state = bg.state
        words = _words_of(state)
        goals_kernel(xy=st.xy, who=who_all, role=role_all, w_start=w_start, prod=prod, p_start=p_start, words=words,
                     radius=float(radius), goal=goal, lacks=lacks, sample=int(sample))
        bg.state = _state_of(words, state)
    else:
        _goals_per_good(st.xy, who_all, role_all, w_start, prod, p_start, rng, float(radius), goal, lacks, sample)
    return goal, lacks


def _goals_per_good(xy, who, role, w_start, prod, p_start, rng, radius, goal, lacks, sample):
    """`goal` and `lacks` in place, per good in turn (vectorized over the agents lacking it): its draws
    `rng.integers(0, producers, (agents, sample))`, then `goal_kernel`; no producer alive: not lacking."""
    for g in range(w_start.shape[0] - 1):
        w, r = who[w_start[g]:w_start[g + 1]], role[w_start[g]:w_start[g + 1]]
        if w.size == 0:
            continue
        producers = prod[p_start[g]:p_start[g + 1]]
        if producers.size == 0:
            lacks[w, r] = False
            continue
        goal_kernel(xy=xy, who=w, role=r, producers=producers, draws=rng.integers(0, producers.size, (w.size, sample)),
                    radius=radius, goal=goal)


_MASK64 = (1 << 64) - 1
_BUFFER_WORDS = ctypes.c_uint32 * 2
_BUFFERS: dict = {}          # id(bit generator) -> (bit generator, its buffer view or None)
_LAYOUT: list = []           # [whether NumPy's pcg64_state holds has_uint32, uinteger after the state pointer]


def _buffer_at(bg) -> np.ndarray:
    addr = bg.ctypes.state_address + ctypes.sizeof(ctypes.c_void_p)
    return np.frombuffer(_BUFFER_WORDS.from_address(addr), dtype=np.uint32)


def _buffer_view(bg) -> "np.ndarray | None":
    """A PCG64's buffered 32-bit half as a live uint32 view [has_uint32, uinteger] of NumPy's C struct
    (`pcg64_state`: the state pointer, then int has_uint32, uint32 uinteger), beside `streams.state_view`;
    None when that layout does not check out (a probe generator with a half buffered, and this one's
    `bit_generator.state`). Cached per bit generator like `state_view` (the cache holds it alive)."""
    if not _LAYOUT:
        probe = np.random.Generator(np.random.PCG64(12345))
        probe.integers(0, 10)                           # a 32-bit draw: the other half buffered
        ps = probe.bit_generator.state
        _LAYOUT.append(ps["has_uint32"] == 1 and _buffer_at(probe.bit_generator).tolist() == [1, ps["uinteger"]])
    if not _LAYOUT[0]:
        return None
    hit = _BUFFERS.get(id(bg))
    if hit is not None and hit[0] is bg:
        return hit[1]
    if len(_BUFFERS) >= 4096:
        _BUFFERS.clear()
    view = _buffer_at(bg)
    st = bg.state
    if view.tolist() != [int(st["has_uint32"]), int(st["uinteger"])]:
        view = None
    _BUFFERS[id(bg)] = (bg, view)
    return view


def _words_of(state: dict) -> np.ndarray:
    """A PCG64 `bit_generator.state` as uint64 [state hi, lo, increment hi, lo, has_uint32, uinteger]."""
    s, inc = state["state"]["state"], state["state"]["inc"]
    return np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, state["has_uint32"], state["uinteger"]],
                    np.uint64)


def _state_of(words: np.ndarray, state: dict) -> dict:
    """`state` (a PCG64 `bit_generator.state`) with the state and 32-bit buffer of `words` (`_words_of`)."""
    w = [int(x) for x in words]
    state["state"]["state"] = (w[0] << 64) | w[1]
    state["has_uint32"], state["uinteger"] = w[4], w[5]
    return state


def _nearer_loop(xy, a, p, radius, best, best_d):
    """(best, best_d) after producer `p`: `p` and its distance from agent `a` if it lies outside the
    radius and nearer than `best_d` (the goal points' nearest drawn producer, one candidate)."""
    dx = xy[p, 0] - xy[a, 0]
    dy = xy[p, 1] - xy[a, 1]
    d = np.sqrt(dx * dx + dy * dy)
    if d >= radius and d < best_d:
        return p, d
    return best, best_d


_nearer = jit(_nearer_loop, inline=True) or _nearer_loop


def _goals_numpy(xy, who, role, w_start, prod, p_start, words, radius, goal, lacks, sample):
    """The goal points of every good in turn (`_goals_per_good`), drawn from the PCG64 generator of `words`
    (`_words_of`, updated in place); `goal` and `lacks` in place. NumPy twin of `_goals_loop`."""
    bg = np.random.PCG64()
    bg.state = _state_of(words, bg.state | {"state": {"state": 0, "inc": (int(words[2]) << 64) | int(words[3])}})
    _goals_per_good(xy, who, role, w_start, prod, p_start, np.random.Generator(bg), radius, goal, lacks, sample)
    words[:] = _words_of(bg.state)


_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_PCG_HI, _PCG_LO = np.uint64(MULT >> 64), np.uint64(MULT & _MASK64)
_advance = jit(_advance_py) if affine_u128 is not None else None
_angle = jit(_angle_of, inline=True) or _angle_of


def _next32_py(sh, sl, ih, il, has, buf):  # pragma: no cover - compiled (inlined)
    """NumPy's PCG64 `next_uint32`: the buffered upper half of the last output, else a step and the lower
    half of its output (the upper half buffered). Returns (value, state hi, lo, has, buffer)."""
    if has:
        return buf, sh, sl, False, buf
    sh, sl = affine_u128(sh, sl, _PCG_HI, _PCG_LO, ih, il)
    out = output_of(sh, sl)
    return out & _M32, sh, sl, True, out >> _S32


_next32 = jit(_next32_py, inline=True) if affine_u128 is not None else None


def _goals_loop(xy, who, role, w_start, prod, p_start, words, radius, goal, lacks, sample):
    """`_goals_numpy` in one pass (compiled): each draw NumPy's bounded integer (`rng.integers`: Lemire's
    method on `next_uint32`; nothing drawn for one producer), then the nearest as `_goal_loop`."""
    sh, sl, ih, il = words[0], words[1], words[2], words[3]
    has = words[4] != 0
    buf = words[5]
    for g in range(w_start.shape[0] - 1):
        p0 = p_start[g]
        npr = p_start[g + 1] - p0
        if w_start[g + 1] == w_start[g]:
            continue
        if npr == 0:
            for k in range(w_start[g], w_start[g + 1]):
                lacks[who[k], role[k]] = False
            continue
        ex = np.uint64(npr)                              # the bound + 1, under 2^32
        thr = (_M32 - (ex - np.uint64(1))) % ex          # Lemire's rejection threshold (2^32 mod ex)
        for k in range(w_start[g], w_start[g + 1]):
            a = who[k]
            best = -1
            best_d = np.inf
            for j in range(sample):
                d = np.uint64(0)
                if npr > 1:
                    u, sh, sl, has, buf = _next32(sh, sl, ih, il, has, buf)
                    m = u * ex
                    left = m & _M32
                    if left < ex:
                        while left < thr:
                            u, sh, sl, has, buf = _next32(sh, sl, ih, il, has, buf)
                            m = u * ex
                            left = m & _M32
                    d = m >> _S32
                p = prod[p0 + np.int64(d)]
                if j == 0:
                    best = p
                best, best_d = _nearer(xy, a, p, radius, best, best_d)
            goal[a, role[k], 0] = xy[best, 0]
            goal[a, role[k], 1] = xy[best, 1]
    words[0], words[1] = sh, sl
    words[4] = np.uint64(1) if has else np.uint64(0)
    words[5] = buf


goals_kernel = Kernel("supply_chain_goals", _goals_numpy, jit(_goals_loop) if affine_u128 is not None else None)


def _nearest_numpy(xy, who, pick, radius):
    """[W] for each agent `who[w]`, the nearest of its drawn producers `pick[w]` outside its radius
    (the ones in range did not do business); all in range: the first drawn. NumPy twin."""
    d = np.linalg.norm(xy[pick] - xy[who][:, None, :], axis=2)
    d = np.where(d < radius, np.inf, d)
    d[np.isinf(d).all(axis=1)] = 0.0
    return pick[np.arange(who.size), np.argmin(d, axis=1)]


def _goal_numpy(xy, who, role, producers, draws, radius, goal):
    """`goal[who, role]` set in place to the nearest of the drawn producers `producers[draws]` (as
    `_nearest_numpy`). NumPy twin of `_goal_loop`."""
    goal[who, role] = xy[_nearest_numpy(xy, who, producers[draws], radius)]


def _goal_loop(xy, who, role, producers, draws, radius, goal):
    """`_goal_numpy` one agent at a time (compiled): the draw, the nearest and the goal point in one pass,
    with `_nearest_numpy`'s distances and first minimum."""
    w, s = draws.shape
    for k in range(w):
        a = who[k]
        best, best_d = producers[draws[k, 0]], np.inf
        for j in range(s):
            best, best_d = _nearer(xy, a, producers[draws[k, j]], radius, best, best_d)
        goal[a, role[k], 0] = xy[best, 0]
        goal[a, role[k], 1] = xy[best, 1]


goal_kernel = Kernel("supply_chain_goal_points", _goal_numpy, jit(_goal_loop))


def history_pulls(st, reach: "np.ndarray | None" = None) -> np.ndarray:
    """[N, 2] the history pulls of the open customer slots at the current positions (`pulls`): customers
    pull sellers and sellers customers, weighted 1 + transactions. `reach`: `protocol.slot_reach` (computed
    when None). `protocol.refresh_slots` returns the same numbers for the slots it leaves."""
    if reach is None:
        reach = slot_reach(st.partner)
    return pulls_kernel(xy=st.xy, partner=st.partner, reach=reach, n_tr=st.n_tr)


def _pulls_and_goals(st, counts: np.ndarray, rng: np.random.Generator, radius: float,
                     reach: "np.ndarray | None", pull: "np.ndarray | None") -> tuple:
    """(history pulls, goal points, lacks): what the heading is the resultant of."""
    if pull is None:
        pull = history_pulls(st, reach)
    goal, lacks = goals(st, counts, st.hold.shape[1] - 1, rng, radius)
    return pull, goal, lacks


def direction(st, counts: np.ndarray, rng_angle: np.ndarray, rng: np.random.Generator, radius: float,
              reach: "np.ndarray | None" = None, pull: "np.ndarray | None" = None,
              turn: "np.ndarray | None" = None) -> np.ndarray:
    """[N, 2] unit heading: the resultant of history-weighted pulls toward partners and unit pulls
    toward producers of what it lacks nearby; zero resultant: the old heading, or random. `pull`: the
    history pulls (from `refresh_slots`, at today's positions; `history_pulls(st, reach)` when None). `turn`:
    the live generator state before the angles (`speeds_live`; then `rng_angle` is not read)."""
    pull, goal, lacks = _pulls_and_goals(st, counts, rng, radius, reach, pull)
    return direction_kernel(xy=st.xy, heading=st.heading, pull=pull, goal=goal, lacks=lacks, angle=rng_angle,
                            turn=_NO_TURN if turn is None else turn)


def steer_and_move(st, counts: np.ndarray, rng_angle: np.ndarray, rng: np.random.Generator, radius: float,
                   reach: "np.ndarray | None", pull: "np.ndarray | None", turn: "np.ndarray | None",
                   speed: np.ndarray, inertia: float, width: float, height: float) -> None:
    """`direction` then `move` (phase 3) in place, the headings passed inside one compiled call."""
    pull, goal, lacks = _pulls_and_goals(st, counts, rng, radius, reach, pull)
    st.xy, st.heading, st.speed = steer_kernel(
        xy=st.xy, heading=st.heading, path=st.path, alive=st.alive, pull=pull, goal=goal, lacks=lacks, angle=rng_angle,
        turn=_NO_TURN if turn is None else turn, speed=speed, inertia=float(inertia),
        size=np.array([width, height], np.float64))


def _steer_numpy(xy, heading, path, alive, pull, goal, lacks, angle, turn, speed, inertia, size):
    """`_direction_loop` then `_move_numpy` (the twin of `_steer_loop`)."""
    target = _direction_loop(xy, heading, pull, goal, lacks, angle, turn)
    return _move_numpy(xy, heading, path, alive, target, speed, inertia, size)


def _steer_loop(xy, heading, path, alive, pull, goal, lacks, angle, turn, speed, inertia, size):
    """The compiled heading (`direction_kernel`) and move (`move_kernel`, serial) in one call."""
    target = _direction_nb(xy, heading, pull, goal, lacks, angle, turn)
    return _move_nb(xy, heading, path, alive, target, speed, inertia, size)


def move(st, target: np.ndarray, speed: np.ndarray, inertia: float, width: float, height: float) -> None:
    """Phase 3 in place: heading blended with the old one, position advanced, walls reflect."""
    st.xy, st.heading, st.speed = move_kernel(xy=st.xy, heading=st.heading, path=st.path, alive=st.alive,
                                              target=target, speed=speed, inertia=float(inertia),
                                              size=np.array([width, height], np.float64))


def _move_numpy(xy, heading, path, alive, target, speed, inertia, size):
    """(new xy, new heading, distance moved); `path` grows in place. NumPy twin of `_move_loop`."""
    h = inertia * heading + (1.0 - inertia) * target
    norm = np.linalg.norm(h, axis=1)
    h = np.where((norm > 1e-9)[:, None], h / np.maximum(norm, 1e-12)[:, None], target)
    speed = np.where(alive, speed, 0.0)
    new, h = reflect(xy + h * speed[:, None], h, size[0], size[1])
    moved = np.linalg.norm(new - xy, axis=1)
    path += moved
    return new, np.where((speed > 0)[:, None], h, heading), moved


def _move_loop(xy, heading, path, alive, target, speed, inertia, size):
    """`_move_numpy` one agent at a time (compiled, threaded), the same float operations."""
    n = xy.shape[0]
    new = np.empty((n, 2))
    head = np.empty((n, 2))
    moved = np.empty(n)
    keep = 1.0 - inertia
    for a in prange(n):
        h0 = inertia * heading[a, 0] + keep * target[a, 0]
        h1 = inertia * heading[a, 1] + keep * target[a, 1]
        norm = np.sqrt(h0 * h0 + h1 * h1)
        if norm > 1e-9:
            d = _max2(norm, 1e-12)
            h0 = h0 / d
            h1 = h1 / d
        else:
            h0 = target[a, 0]
            h1 = target[a, 1]
        sp = speed[a] if alive[a] else 0.0
        for c in range(2):
            hc = h0 if c == 0 else h1
            p = xy[a, c] + hc * sp
            low = p < 0
            if low:
                p = -p
            high = p > size[c]
            if high:
                p = 2 * size[c] - p
            if low or high:
                hc = -hc
            new[a, c] = _clip_to2(p, 0.0, size[c])
            head[a, c] = hc if sp > 0 else heading[a, c]
        dx = new[a, 0] - xy[a, 0]
        dy = new[a, 1] - xy[a, 1]
        moved[a] = np.sqrt(dx * dx + dy * dy)
        path[a] += moved[a]
    return new, head, moved


_min2, _max2, _clip_to2 = (jit(f) or f for f in (scalar_minimum, scalar_maximum, scalar_clip_to))
prospect_kernel = kernel("supply_chain_prospect", _prospect_numpy, _prospect_loop, split="in_good", min_items=LIGHT)
move_kernel = kernel("supply_chain_move", _move_numpy, _move_loop, split="xy", min_items=LIGHT)
speed_kernel = kernel("supply_chain_speed", _speed_numpy, _speed_loop, split="s", min_items=LIGHT)
_direction_nb, _move_nb = direction_kernel.compiled, move_kernel.compiled
steer_kernel = Kernel("supply_chain_steer", _steer_numpy, jit(_steer_loop) if _move_nb is not None else None)
speed_live_kernel = Kernel("supply_chain_speed_live", _speed_live_numpy,
                           jit(_speed_live_loop) if affine_u128 is not None else None)
_NO_TURN = np.zeros(0, np.uint64)


def speeds_live(s: np.ndarray, r: np.ndarray, state: np.ndarray, restless: float,
                max_speed: float) -> tuple[np.ndarray, np.ndarray]:
    """(`speeds` with the day's draws `rng.random(N)` taken from the live PCG64 `state`
    (`streams.state_view`), turn): the generator is left where the angles `rng.uniform(0, 2 pi, N)` leave
    it; `turn`, the state before them, goes to `direction`."""
    return speed_live_kernel(s=s, r=r, state=state, restless=float(restless), max_speed=float(max_speed))


__all__ = ["neighbourhood", "near_kernel", "history_pulls", "lacks_kernel", "prospect_kernel", "move_kernel",
           "prospect",
           "speeds_live", "speed_live_kernel", "steer_and_move", "steer_kernel", "satisfied", "rule_speed", "speeds",
           "speed_kernel", "direction", "move", "goal_kernel", "goals_kernel"]
