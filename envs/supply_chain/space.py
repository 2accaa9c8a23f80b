"""The 2D rectangle and its neighbourhood queries: a uniform grid (cell list), vectorized.

Agents live in [0, width] x [0, height]. The close pairs of alive agents (closer than `radius`)
are found through a grid of square cells of side >= radius (`grid`): each agent is compared only
with the agents of its own and the 8 surrounding cells, so the cost grows with the number of
agents times the local density, never with N^2. Each unordered pair is found once (own cell, and
4 of the 8 surrounding cells; `_pairs_numpy`, the order the step's one-pass query
`movement.neighbourhood` keeps); the same positions give the same pairs in the same order.
"""

from __future__ import annotations

import numpy as np

from ..compiled import Kernel, jit

# half of the 8 surrounding cells (the other half is seen from the other side), plus the own cell
_HALF = np.array([(1, -1), (1, 0), (1, 1), (0, 1)], dtype=np.int64)


def grid_shape(width: float, height: float, radius: float, max_cells: int = 1 << 22) -> tuple[int, int, float]:
    """(cells along x, cells along y, cell side): cells of side >= radius, at most `max_cells`."""
    side = max(float(radius), 1e-9)
    nx, ny = max(int(width // side), 1), max(int(height // side), 1)
    while nx * ny > max_cells:
        side *= 2.0
        nx, ny = max(int(width // side), 1), max(int(height // side), 1)
    return nx, ny, max(width / nx, height / ny)


def _expand(first: np.ndarray, lens: np.ndarray, owner: np.ndarray):
    """(owner repeated, first + 0..len-1) for runs of lengths `lens`."""
    total = int(lens.sum())
    a = np.repeat(owner, lens)
    b = np.arange(total) - np.repeat(np.cumsum(lens) - lens - first, lens)
    return a, b


def _pairs_numpy(sx, sy, scx, scy, starts, counts, nx, ny, radius):
    """Unordered close pairs (a < b positions in the cell-sorted order) and their distances."""
    pos = np.arange(sx.shape[0])
    scell = scx * ny + scy
    a_parts = [None] * 5
    b_parts = [None] * 5
    a_parts[0], b_parts[0] = _expand(pos + 1, starts[scell] + counts[scell] - pos - 1, pos)
    for k in range(4):
        ncx, ncy = scx + _HALF[k, 0], scy + _HALF[k, 1]
        inside = (ncx >= 0) & (ncx < nx) & (ncy >= 0) & (ncy < ny)
        nc = np.where(inside, ncx * ny + ncy, 0)
        a_parts[k + 1], b_parts[k + 1] = _expand(starts[nc], np.where(inside, counts[nc], 0), pos)
    a = np.concatenate(a_parts)
    b = np.concatenate(b_parts)
    ddx = sx[a] - sx[b]
    ddy = sy[a] - sy[b]
    d2 = ddx * ddx + ddy * ddy
    keep = d2 < radius * radius
    return a[keep], b[keep], np.sqrt(d2[keep])


def _grid_numpy(xy, alive, nx, ny, side):
    """The alive agents sorted by grid cell (stable): (agents, x, y, cell x, cell y) in that order, and
    per cell its first position and count. NumPy twin of `_grid_loop`."""
    idx = np.flatnonzero(alive)
    px, py = xy[idx, 0], xy[idx, 1]
    cx = np.clip((px / side).astype(np.int64), 0, nx - 1)
    cy = np.clip((py / side).astype(np.int64), 0, ny - 1)
    cell = cx * ny + cy
    order = np.argsort(cell, kind="stable")
    counts = np.bincount(cell, minlength=nx * ny)
    starts = np.cumsum(counts) - counts
    return idx[order], px[order], py[order], cx[order], cy[order], starts, counts


def _grid_loop(xy, alive, nx, ny, side):
    """`_grid_numpy` as a counting sort (compiled): the same cells, the same stable order."""
    n = xy.shape[0]
    m = 0
    for a in range(n):
        if alive[a]:
            m += 1
    cx = np.empty(m, np.int64)
    cy = np.empty(m, np.int64)
    counts = np.zeros(nx * ny, np.int64)
    k = 0
    for a in range(n):
        if alive[a]:
            x = min(max(np.int64(xy[a, 0] / side), 0), nx - 1)
            y = min(max(np.int64(xy[a, 1] / side), 0), ny - 1)
            cx[k] = x
            cy[k] = y
            counts[x * ny + y] += 1
            k += 1
    starts = np.empty(nx * ny, np.int64)
    total = 0
    for c in range(nx * ny):
        starts[c] = total
        total += counts[c]
    pos = starts.copy()
    agents = np.empty(m, np.int64)
    sx = np.empty(m)
    sy = np.empty(m)
    scx = np.empty(m, np.int64)
    scy = np.empty(m, np.int64)
    k = 0
    for a in range(n):
        if alive[a]:
            c = cx[k] * ny + cy[k]
            q = pos[c]
            pos[c] += 1
            agents[q] = a
            sx[q] = xy[a, 0]
            sy[q] = xy[a, 1]
            scx[q] = cx[k]
            scy[q] = cy[k]
            k += 1
    return agents, sx, sy, scx, scy, starts, counts


grid_kernel = Kernel("supply_chain_grid", _grid_numpy, jit(_grid_loop))


def grid(xy: np.ndarray, alive: np.ndarray, radius: float, width: float, height: float):
    """The cell list of the alive agents: (agents, x, y, cell x, cell y sorted by cell, starts, counts,
    nx, ny) for the close-pair queries."""
    nx, ny, side = grid_shape(width, height, radius)
    return grid_kernel(xy=xy, alive=alive, nx=nx, ny=ny, side=float(side)) + (nx, ny)


def reflect(xy: np.ndarray, vel: np.ndarray, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions folded back into the rectangle (walls reflect), velocities flipped where they hit."""
    size = np.array([width, height])
    out = xy.copy()
    v = vel.copy()
    low = out < 0
    out = np.where(low, -out, out)
    high = out > size
    out = np.where(high, 2 * size - out, out)
    v = np.where(low | high, -v, v)
    return np.clip(out, 0.0, size), v


__all__ = ["grid", "grid_kernel", "grid_shape", "reflect"]
