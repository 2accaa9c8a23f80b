"""Centralized-critic state: a flat market state whose size does not grow with the number of agents.

`env.state()` (state_mode "global") is, in this order:
- the market columns of the observation (prices, time, shock: the same for every agent), averaged
  over the agents still in the episode;
- per observed kind (registry order, `kinds.observed_kinds`): the share of all agents that are of
  that kind and still in the episode, then the mean over them of every per-agent observation
  column (own state, liquidity, last trades; the kind one-hot is left out). A kind with no agent
  left has zeros (clipped into the column's bounds).

Its size is fixed by the scenario's kinds and goods, so a critic trained at 100 agents reads the
state of 10,000. Bounds follow from the observation's: a mean stays inside its column's bounds.
`state_fields(sc)` names every entry ("market.ref_price", "solar.share", "solar.sellable", ...).
"""

from __future__ import annotations

import numpy as np

from .kinds import KIND_NAMES, observed_kinds
from .observations import obs_fields
from .sums import group_sums

# Observation columns that are the same for every agent (market-wide), by name; further goods'
# prices (`rec_ref_price`, ...) are market-wide too.
MARKET_COLUMNS = ("ref_price", "clearing_price", "price_change", "price_level", "imbalance", "traded_share",
                  "hour_sin", "hour_cos", "episode_progress", "shock_demand_surge", "shock_demand_drop",
                  "shock_supply_surplus", "shock_supply_shortage", "shock_remaining")
STATE_MODES = ("global", "full")


def _is_market(name: str) -> bool:
    return name in MARKET_COLUMNS or name.endswith("_ref_price") or name.endswith("_clearing_price")


def state_layout(sc) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(market column indices, per-agent column indices, kind codes of the per-kind blocks) of `sc`."""
    names = [f[0] for f in obs_fields(sc)]
    market = np.array([i for i, n in enumerate(names) if _is_market(n)], dtype=np.int64)
    own = np.array([i for i, n in enumerate(names) if not _is_market(n) and not n.startswith("kind_")],
                   dtype=np.int64)
    kinds = tuple(KIND_NAMES.index(k) for k in observed_kinds(sc))
    return market, own, kinds


def state_fields(sc) -> tuple[str, ...]:
    """Name of every entry of the global state of `sc`."""
    names = [f[0] for f in obs_fields(sc)]
    market, own, kinds = state_layout(sc)
    out = [f"market.{names[i]}" for i in market]
    for k in kinds:
        out += [f"{KIND_NAMES[k]}.share"] + [f"{KIND_NAMES[k]}.{names[i]}" for i in own]
    return tuple(out)


def state_bounds(sc) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 of the global state of `sc`."""
    f = obs_fields(sc)
    lo = np.array([x[1] for x in f], dtype=np.float32)
    hi = np.array([x[2] for x in f], dtype=np.float32)
    market, own, kinds = state_layout(sc)
    blo = np.concatenate([[0.0], lo[own]]).astype(np.float32)
    bhi = np.concatenate([[1.0], hi[own]]).astype(np.float32)
    return (np.concatenate([lo[market]] + [blo] * len(kinds)).astype(np.float32),
            np.concatenate([hi[market]] + [bhi] * len(kinds)).astype(np.float32))


def global_state(sc, kind: np.ndarray, active: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """[S] float32 global state from the [N, O] observations, [N] kind codes and [N] active mask."""
    market, own, kinds = state_layout(sc)
    n = max(int(kind.shape[0]), 1)
    low, high = state_bounds(sc)
    live = np.where(active, 0, -1)
    alive = max(float(np.count_nonzero(active)), 1.0)
    # sums in row order (envs/sums.py: a matrix product's BLAS threads would make them machine-dependent)
    parts = [group_sums(x=obs[:, market], group=live, n_groups=1)[0] / alive]
    # one row per observed kind: the means of its live agents' own columns
    slot = np.full(len(KIND_NAMES), -1, dtype=np.int64)   # kind code -> its block, -1: not observed
    slot[list(kinds)] = np.arange(len(kinds))
    group = np.where(active, slot[kind], -1)
    counts = np.bincount(group[group >= 0], minlength=len(kinds)).astype(np.float64)
    means = group_sums(x=obs[:, own], group=group, n_groups=len(kinds)) / np.maximum(counts, 1.0)[:, None]
    blocks = np.concatenate([(counts / n)[:, None], means], axis=1)
    parts.append(blocks.ravel())
    s = np.concatenate(parts).astype(np.float32)
    return np.clip(s, low, high)  # float32 rounding of a mean can step a hair outside; empty kinds -> bounds


__all__ = ["MARKET_COLUMNS", "STATE_MODES", "state_layout", "state_fields", "state_bounds", "global_state"]
