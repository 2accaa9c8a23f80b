"""Plain-NumPy references for the neighbourhood query (tests only; the step runs `movement.neighbourhood`):
every ordered close pair through the grid, the same pairs by brute force, and the role counts."""

from __future__ import annotations

import numpy as np

from channelmarket.envs.supply_chain import space


def neighbour_pairs(xy, alive, radius, width, height):
    """(i, j, dist) of every ordered pair of alive agents closer than `radius`, in neighbour order (the grid's
    unordered pairs, then the same pairs reversed)."""
    if np.count_nonzero(alive) < 2 or radius <= 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    agents, sx, sy, scx, scy, starts, counts, nx, ny = space.grid(xy, alive, radius, width, height)
    a, b, dist = space._pairs_numpy(sx, sy, scx, scy, starts, counts, nx, ny, float(radius))
    a, b = agents[a], agents[b]
    return np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([dist, dist])


def brute_force_pairs(xy, alive, radius):
    """The same pairs by comparing everyone with everyone."""
    idx = np.flatnonzero(alive)
    d = np.linalg.norm(xy[idx, None, :] - xy[None, idx, :], axis=2)
    a, b = np.nonzero((d < radius) & ~np.eye(idx.size, dtype=bool))
    return idx[a], idx[b]


def neighbour_roles(i, j, in_good, out_good, food, n):
    """([N, 3] counts of suppliers, customers and food sellers among each agent's neighbours, [P] bool: j buys
    i's product) over ordered pairs (i, j)."""
    customer = (in_good[j] == out_good[i]) | ((out_good[i] == food) & (out_good[j] != food))
    counts = np.zeros((n, 3))
    for col, hit in enumerate((out_good[j] == in_good[i], customer, out_good[j] == food)):
        counts[:, col] = np.bincount(i[hit], minlength=n)
    return counts, customer
