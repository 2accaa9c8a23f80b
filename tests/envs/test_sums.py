"""Sums over agents in row order (`envs/sums.py`): the kernels against a row-by-row loop, and the market
summary, the global state and the MAPPO critic's features computed by them (the same bits on every
machine, where a BLAS matrix product's result depends on its thread count)."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs import compiled, sums
from channelmarket.envs.breakdown import BREAKDOWN_FIELDS
from channelmarket.envs.channel_market import ChannelMarketEnv
from channelmarket.envs.core import MarketCore
from channelmarket.envs.global_state import global_state, state_bounds, state_layout
from channelmarket.envs.observations import OBS_NAMES
from channelmarket.training.ppo_ops import global_features

BUILDS = ["twin"] + (["compiled"] if compiled.USE_NUMBA else [])


def rows_in_order(x, group=None, n_groups=1):
    """The reference: every row added to its group's running sum, one row after another."""
    x = np.asarray(x, dtype=np.float64)
    group = np.zeros(x.shape[0], dtype=np.int64) if group is None else group
    out = np.zeros((n_groups, x.shape[1]))
    for i in range(x.shape[0]):
        if group[i] >= 0:
            out[group[i]] = out[group[i]] + x[i]
    return out


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("shape", [(3000, 26), (3000, 1), (5, 2), (0, 4), (4, 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_and_group_sums_add_rows_in_order(build, shape, dtype):
    rng = np.random.default_rng(shape[0] + shape[1])
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 6, shape)).astype(dtype)
    got = sums.column_sums.run(build, x=x)
    assert got.dtype == np.float64
    assert got.tobytes() == rows_in_order(x)[0].tobytes()
    group = rng.integers(-1, 3, shape[0])
    got = sums.group_sums.run(build, x=x, group=group, n_groups=3)
    assert got.tobytes() == rows_in_order(x, group, 3).tobytes()


def test_a_blas_product_is_not_the_row_order():
    """Why the kernels exist: a matrix-vector product adds in BLAS's blocked order, not row by row (and
    spreads large products over threads), so it cannot be the reference the summary promises."""
    x = np.random.default_rng(0).standard_normal((3000, 26)) * 1e3
    assert (np.ones(3000) @ x).tobytes() != rows_in_order(x)[0].tobytes()


def test_the_market_summary_sums_the_breakdown_in_row_order():
    core = MarketCore("energy_default")
    core.reset(3)
    rng = np.random.default_rng(3)
    for _ in range(14):   # into the day: trades, grid purchases, fees
        core.step(rng.uniform(-1, 1, (core.n_agents, core.n_actions)))
    total = rows_in_order(core.last_result.settlement.breakdown)[0]
    s = core.summary()
    for key, field in [("welfare", "profit"), ("grid_bought", "grid_bought"), ("grid_sold", "grid_sold"),
                       ("unserved", "unserved"), ("curtailed", "curtailed"), ("lost_load", "lost_load")]:
        assert s[key] == total[BREAKDOWN_FIELDS.index(field)], key
    assert s["welfare"] != 0.0


def test_the_global_state_is_the_live_agents_means_in_row_order():
    env = ChannelMarketEnv("energy_default", state_mode="global")
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    for _ in range(5):
        env.step({a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents})
    raw = env.unwrapped
    sc, kind, obs = raw.scenario, raw._kind_codes, raw.core.observe()
    assert raw.state().tobytes() == global_state(sc, kind, raw.core.state.active, obs).tobytes()
    active = raw.core.state.active.copy()
    active[::5] = False   # some agents gone: only the live ones count
    got = global_state(sc, kind, active, obs)
    market, own, kinds = state_layout(sc)
    want = [rows_in_order(obs[:, market], np.where(active, 0, -1))[0] / active.sum()]
    group = np.full(kind.shape[0], -1)
    for j, k in enumerate(kinds):
        group[(kind == k) & active] = j
    counts = np.bincount(group[group >= 0], minlength=len(kinds)).astype(np.float64)
    means = rows_in_order(obs[:, own], group, len(kinds)) / np.maximum(counts, 1.0)[:, None]
    want.append(np.concatenate([(counts / kind.shape[0])[:, None], means], axis=1).ravel())
    low, high = state_bounds(sc)
    want = np.clip(np.concatenate(want).astype(np.float32), low, high)
    assert got.tobytes() == want.tobytes()


def test_the_critic_features_are_per_kind_means_in_row_order():
    core = MarketCore("energy_default")
    obs = core.reset(5)
    obs[::7] = 0.0   # inactive agents' rows are zero: they count for no kind
    cols = np.flatnonzero([n.startswith("kind_") for n in OBS_NAMES])
    group = np.where(obs[:, cols].any(axis=1), obs[:, cols].argmax(axis=1), -1)
    counts = np.bincount(group[group >= 0], minlength=len(cols)).astype(np.float64)
    want = (rows_in_order(obs, group, len(cols)) / np.maximum(counts, 1.0)[:, None]).ravel()
    assert global_features(obs).tobytes() == want.tobytes()
