"""Movement in three phases (paper 3.2.2, Movement; Appendix S1), vectorized over agents.

1. Business prospect: over the agent's neighbourhood (agents within `radius`), is there a
   supplier of its input (Farmers need none), a customer of its product, a seller of food
   (Sellers feed themselves)? The prospect s is the mean of min(suppliers / 2, 1),
   min(customers / 2, 1) and min(food sellers, 1) (two partners on each side of the loop make a
   neighbourhood safe; our numbers, the paper gives none).
2. Stay or move: a satisfied agent stays. It is satisfied when s >= 0.7 + 0.3 r, so the higher
   its risk factor r the more it asks of a neighbourhood, and even then a risk-taker moves on
   with probability `restless` x r (it "counts on the next opportunity").
3. Direction and speed: the resultant of vectors toward other agents weighted by the transaction
   history with them (1 + transactions, for its customers and its suppliers), plus a unit pull
   toward the centroid of every kind it lacks nearby (agents know where the others are; the paper
   leaves the weights out, these are ours), blended with yesterday's heading by `inertia`; a zero
   resultant keeps the heading, or picks a random one. Speed: `max_speed` x (1 - s / 2) x (0.5 + r),
   at most `max_speed`.

A learned agent's `move` action replaces phase 2 and the speed: it moves when move > 0, at
move x max_speed, in the same direction.
"""

from __future__ import annotations

import numpy as np

from .space import reflect


def prospect(st, i: np.ndarray, j: np.ndarray, food: int, n_goods: int) -> tuple[np.ndarray, np.ndarray]:
    """([N] prospect s in [0, 1], [N, 3] neighbour counts: suppliers, customers, food sellers)."""
    n = st.n
    sup = (st.out_good[j] == st.in_good[i])
    cus = (st.in_good[j] == st.out_good[i]) | (st.out_good[i] == food)
    fsell = st.out_good[j] == food
    counts = np.stack([np.bincount(i, weights=sup, minlength=n), np.bincount(i, weights=cus, minlength=n),
                       np.bincount(i, weights=fsell, minlength=n)], axis=1)
    have = np.minimum(counts / np.array([2.0, 2.0, 1.0]), 1.0)
    have[:, 0] = np.where(st.in_good < 0, 1.0, have[:, 0])
    have[:, 2] = np.where(st.out_good == food, 1.0, have[:, 2])
    return have.mean(axis=1), counts


def satisfied(s: np.ndarray, r: np.ndarray, restless: float, draws: np.ndarray) -> np.ndarray:
    """Phase 2: stays where it is."""
    return (s >= 0.7 + 0.3 * r) & (draws >= restless * r)


def rule_speed(s: np.ndarray, r: np.ndarray, max_speed: float) -> np.ndarray:
    return np.minimum(max_speed * (1.0 - 0.5 * s) * (0.5 + r), max_speed)


def direction(st, slot_i: np.ndarray, slot_j: np.ndarray, slot_w: np.ndarray, counts: np.ndarray,
              rng_angle: np.ndarray) -> np.ndarray:
    """[N, 2] unit heading: history-weighted resultant toward partners, pulls toward lacking kinds'
    centroids, blended with the old heading (inertia applied by the caller)."""
    n = st.n
    xy = st.xy
    res = np.zeros((n, 2))
    if slot_i.size:
        d = xy[slot_j] - xy[slot_i]
        norm = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        w = slot_w / norm
        # customers pull sellers, sellers pull customers (both directions of a relation)
        for k in range(2):
            res[:, k] += np.bincount(slot_i, weights=w * d[:, k], minlength=n)
            res[:, k] -= np.bincount(slot_j, weights=w * d[:, k], minlength=n)
    # lacking kinds: a unit pull toward the centroid of the alive producers of that good
    alive = st.alive
    g_n = np.bincount(st.out_good[alive], minlength=st.hold.shape[1]).astype(np.float64)
    cen = np.stack([np.bincount(st.out_good[alive], weights=xy[alive, k], minlength=st.hold.shape[1])
                    for k in range(2)], axis=1) / np.maximum(g_n, 1.0)[:, None]
    food = st.hold.shape[1] - 1
    for col, good in ((0, st.in_good), (2, np.full(n, food))):
        lack = (counts[:, col] == 0) & (good >= 0) & (st.out_good != good) & (g_n[np.maximum(good, 0)] > 0)
        d = cen[np.maximum(good, 0)] - xy
        norm = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        res += np.where(lack[:, None], d / norm[:, None], 0.0)
    lack_c = (counts[:, 1] == 0)
    cust = np.where(st.out_good == food, -1, st.out_good + 1)   # the kind that buys its product
    ok = lack_c & (cust >= 0) & (cust < st.hold.shape[1])
    ok &= g_n[np.clip(cust, 0, st.hold.shape[1] - 1)] > 0
    d = cen[np.clip(cust, 0, st.hold.shape[1] - 1)] - xy
    norm = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
    res += np.where(ok[:, None], d / norm[:, None], 0.0)
    norm = np.linalg.norm(res, axis=1)
    rand = np.stack([np.cos(rng_angle), np.sin(rng_angle)], axis=1)
    old_norm = np.linalg.norm(st.heading, axis=1)
    fallback = np.where((old_norm > 0)[:, None], st.heading / np.maximum(old_norm, 1e-12)[:, None], rand)
    return np.where((norm > 1e-9)[:, None], res / np.maximum(norm, 1e-12)[:, None], fallback)


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


__all__ = ["prospect", "satisfied", "rule_speed", "direction", "move"]
