"""Observations: one fixed-size float32 row per agent, the same layout for every kind.

Own state, channel liquidity, mean-field aggregates, time of day and the active shock; never
another agent's private state. Prices are divided by the retail tariff, energies by the agent's
own scale (rating x step length for generators and consumers, power x step length for storage).
"""

from __future__ import annotations

import numpy as np

from .shocks import N_SHOCKS
from .kinds import KINDS, observed_kinds
from .state import AgentParams, MarketState, Profile

# (name, low, high); the observation space is Box(low, high) with these per-field bounds.
# The kind one-hot comes first, one column per standard kind (`kinds.KINDS`, registry order);
# optional kinds (electric vehicles) get their column appended at the end, in scenarios that
# have them (`obs_fields`), so the standard layout stays the same whatever kinds exist.
_STANDARD_KINDS = tuple(s.name for s in KINDS if not s.optional)
OBS_FIELDS: tuple[tuple[str, float, float], ...] = tuple((f"kind_{k}", 0.0, 1.0) for k in _STANDARD_KINDS) + (
    ("industrial", 0.0, 1.0),
    ("sellable", 0.0, 10.0),          # energy it could sell now / own scale
    ("needed", 0.0, 10.0),            # energy it needs (or could absorb) now / own scale
    ("state_of_charge", 0.0, 1.0),    # storage fill level
    ("reserve", 0.0, 1.0),            # / retail tariff
    ("limit", 0.0, 1.0),              # / retail tariff
    ("ref_price", 0.0, 1.0),          # mean-field reference price / retail
    ("clearing_price", 0.0, 1.0),     # last VWAP / retail
    ("price_change", -1.0, 1.0),      # last change of the reference price / retail
    ("price_level", 0.0, 1.0),        # time-of-day level / retail
    ("imbalance", -1.0, 1.0),         # (D - S) / (D + S) of the last step
    ("traded_share", 0.0, 1.0),       # volume / min(supply, demand) of the last step
    ("last_sold", 0.0, 10.0),         # own peer-to-peer sales last step / own scale
    ("last_bought", 0.0, 10.0),       # own peer-to-peer purchases last step / own scale
    ("last_profit", -10.0, 10.0),     # own last reward / (retail x own scale), clipped
    ("channels", 0.0, 10.0),          # open channels / scenario mean degree, clipped
    ("outbound", 0.0, 10.0),          # EUR it can pay over its channels / (mean degree x mean capacity)
    ("inbound", 0.0, 10.0),           # EUR it can receive likewise
    ("hour_sin", -1.0, 1.0),
    ("hour_cos", -1.0, 1.0),
    ("episode_progress", 0.0, 1.0),
    ("shock_demand_surge", 0.0, 1.0),
    ("shock_demand_drop", 0.0, 1.0),
    ("shock_supply_surplus", 0.0, 1.0),
    ("shock_supply_shortage", 0.0, 1.0),
    ("shock_remaining", 0.0, 1.0),    # steps left / episode steps
)
OBS_NAMES = tuple(f[0] for f in OBS_FIELDS)
OBS_LOW = np.array([f[1] for f in OBS_FIELDS], dtype=np.float32)
OBS_HIGH = np.array([f[2] for f in OBS_FIELDS], dtype=np.float32)
N_OBS = len(OBS_FIELDS)
OBS_INDEX = {name: i for i, name in enumerate(OBS_NAMES)}
assert N_SHOCKS - 1 == 4


def obs_fields(sc) -> tuple[tuple[str, float, float], ...]:
    """(name, low, high) of every observation column of scenario `sc`: `OBS_FIELDS`, then a
    one-hot column per optional kind the scenario has, then `GOOD_FIELDS` per further good it
    trades (`rec_ref_price`, ...; zero for agents that neither sell nor buy that good)."""
    extra = observed_kinds(sc)[len(_STANDARD_KINDS):]
    goods = tuple((f"{g}_{name}", lo, hi) for g in sc.goods[1:] for name, lo, hi in GOOD_FIELDS)
    return OBS_FIELDS + tuple((f"kind_{k}", 0.0, 1.0) for k in extra) + goods


# Per further good (certificates): prices / the good's upper price bound, stock and obligation /
# (own energy scale x episode steps), clipped.
GOOD_FIELDS = (("ref_price", 0.0, 1.0), ("clearing_price", 0.0, 1.0), ("held", 0.0, 10.0), ("owed", 0.0, 10.0))


def good_rows(sc, agents: AgentParams, state: MarketState, scale: np.ndarray, buf: np.ndarray) -> None:
    """Write the further goods' columns (the last 4 x (G - 1) rows of `buf`)."""
    from .goods import scenario_goods

    goods = scenario_goods(sc)
    row = buf.shape[0] - len(GOOD_FIELDS) * (len(goods) - 1)
    inv = 1.0 / (np.maximum(scale, 1e-12) * sc.episode_steps)
    for g in range(1, len(goods)):
        sells, buys, _, _ = goods[g].roles(sc, agents)
        own = sells | buys
        hi = goods[g].price_bounds(sc)[1]
        vals = (state.ref_price[g] / hi, state.clearing_price[g] / hi, state.holdings[:, g] * inv,
                state.owed[:, g] * inv)
        for (name, lo, top), val in zip(GOOD_FIELDS, vals):
            buf[row] = np.where(own, np.clip(val, lo, top), 0.0)
            row += 1


def obs_bounds(sc) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 arrays of `sc`'s observation space."""
    f = obs_fields(sc)
    return np.array([x[1] for x in f], dtype=np.float32), np.array([x[2] for x in f], dtype=np.float32)


def kind_columns(sc) -> np.ndarray:
    """Observation column of each kind code's one-hot (-1: the kind has none in `sc`)."""
    names = [x[0] for x in obs_fields(sc)]
    return np.array([names.index(f"kind_{s.name}") if f"kind_{s.name}" in names else -1 for s in KINDS],
                    dtype=np.int64)


def agent_scale(sc, agents: AgentParams) -> np.ndarray:
    """MWh per step that normalises an agent's energies."""
    dt = sc.step_hours
    return np.where(agents.is_storage, agents.power * dt, agents.capacity * dt)


def static_columns(sc, agents: AgentParams) -> np.ndarray:
    """The rows, in the [O, N] layout `observe` fills, that never change in an episode
    (kind, profile, reserve, limit), within the space's bounds for every valid scenario."""
    n = agents.n
    out = np.zeros((len(obs_fields(sc)), n), dtype=np.float32)
    col = kind_columns(sc)[agents.kind.astype(np.int64)]
    out[col[col >= 0], np.flatnonzero(col >= 0)] = 1.0
    out[OBS_INDEX["industrial"]] = agents.profile == Profile.INDUSTRIAL
    # clipped like every other field: a generator whose marginal cost exceeds the retail tariff
    # (reserve > retail) shows 1.0, and trades peer-to-peer as little as one at the tariff (bids stop there)
    with np.errstate(over="ignore"):  # a tariff near zero: the quotient overflows to inf, clipped to 1
        for name, price in (("reserve", agents.reserve), ("limit", agents.limit)):
            i = OBS_INDEX[name]
            np.clip(price / sc.retail_tariff, OBS_LOW[i], OBS_HIGH[i], out=out[i], casting="unsafe")
    return out


# rows of the per-agent fields `kernels.observation_rows` computes, in its order (the observation itself:
# `batch.observe`, one market being the M = 1 case)
_AGENT_ROWS = np.array([OBS_INDEX[k] for k in ("sellable", "needed", "state_of_charge", "last_sold", "last_bought",
                                               "last_profit", "channels", "outbound", "inbound")], dtype=np.int64)


def observed_good(agents: AgentParams) -> np.ndarray:
    """Index of the good whose prices an agent observes: the one it sells, else the one it buys."""
    return np.maximum(np.maximum(agents.sells_good, agents.buys_good), 0).astype(np.int64)
