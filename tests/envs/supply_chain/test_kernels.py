"""The supply chain's compiled loops give the same economy as their plain twins (same code, run
by Python), and the step runs with numba switched off."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.supply_chain import SupplyChainCore, movement, production, protocol, space
from channelmarket.envs.supply_chain import core as core_module

KERNELS = (space.close_pairs, protocol.refresh_kernel, protocol.setup_kernel, movement.roles_kernel,
           movement.direction_kernel, protocol.sale_kernel, protocol.decay_kernel,
           movement.nearest_kernel, space.grid_kernel, movement.near_kernel, protocol.offers_kernel,
           movement.lacks_kernel, movement.prospect_kernel, movement.move_kernel, core_module.observe_kernel,
           production.produce_kernel, production.live_kernel,
           core_module.mean_price_kernel, movement.goal_kernel)
# kernels whose compiled form gives its twin's numbers bit for bit (same float operations in the same order)
EXACT = (space.grid_kernel, movement.near_kernel, protocol.offers_kernel, protocol.sale_kernel, protocol.decay_kernel,
         movement.nearest_kernel, movement.lacks_kernel, movement.prospect_kernel, movement.move_kernel,
         core_module.observe_kernel, production.produce_kernel, production.live_kernel,
         core_module.mean_price_kernel, movement.goal_kernel)


def trajectory(days=15, learned=False, name="supply_chain_small", seed=5):
    """Every state array after `days` (built-in agents; `learned`: every 3rd agent on random actions,
    some moving by the rule)."""
    core = SupplyChainCore(name, days=days)
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    mask = np.zeros(core.n_agents, bool)
    mask[::3] = True
    obs = []
    while not core.done:
        obs.append(core.observe())
        if learned:
            a = rng.uniform(-1.2, 1.2, (core.n_agents, 5))
            a[rng.random(core.n_agents) < 0.3, 4] = np.nan
            core.step(a, mask)
        else:
            core.step()
    out = core.state_dict()["arrays"]
    out["trades"] = np.concatenate([np.asarray(x, float) for x in core.last_trades])
    out["offers"] = np.concatenate([np.asarray(x, float) for x in core.last_offers])
    out["observations"] = np.stack(obs)
    return out


def test_compiled_equals_twin(monkeypatch):
    """Every compiled kernel switched to its twin at once: the same economy to the last bit (regression:
    the heading's `x ** 2` ran C pow in the twin, x * x compiled, and the trajectories drifted apart;
    CHANNELMARKET_NUMBA=0 now gives the compiled trajectory)."""
    if any(k.compiled is None for k in KERNELS):
        pytest.skip("numba is off")
    compiled = trajectory(days=60, name="maser_exp1", seed=1)
    for k in KERNELS:
        monkeypatch.setattr(k, "impl", k.twin)
    twin = trajectory(days=60, name="maser_exp1", seed=1)
    for name, v in compiled.items():
        np.testing.assert_array_equal(twin[name], v, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 60))
def test_sale_kernel_equals_its_numpy_twin_bit_for_bit(seed, m):
    """The compiled sale (loops) gives exactly the NumPy twin's sales: same offers, same packages."""
    k = protocol.sale_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    n = 12
    si = np.sort(rng.integers(0, n, m))
    kw = dict(accepted=rng.random(m) < 0.7, si=si, sj=rng.integers(0, n, m),
              price=rng.choice([1.0, 1.5, 2.25, 3.0], m) * rng.uniform(0.9, 1.1, m).round(2),
              need=rng.integers(0, 12, m).astype(float), unit_pkg=rng.choice([2.0, 4.0], m),
              packages=rng.integers(0, 5, n).astype(float), money=rng.uniform(0.0, 40.0, n))
    a1, g1 = k.run("twin", **kw)
    a2, g2 = k.run("compiled", **kw)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(g1, g2)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_points_decay_kernel_equals_its_numpy_twin_bit_for_bit(seed):
    """The compiled slot loop runs the same `risk_rules.decay_rule` on scalars: the same points."""
    k = protocol.decay_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    n, kk = 7, 3
    e = n * kk
    n_tr = rng.integers(0, 4, e).astype(float)
    kw = dict(points=np.where(rng.random(e) < 0.3, 0.0, rng.uniform(0, 50, e)), n_tr=n_tr,
              value_sum=n_tr * rng.uniform(0, 20, e), t_first=rng.integers(0, 5, e).astype(float),
              t_last=rng.integers(5, 30, e).astype(float), r=rng.random(n), traded=rng.random(e) < 0.3,
              f_open=np.flatnonzero(rng.random(e) < 0.7), kk=kk, rate=0.1)
    twin = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in kw.items()}
    k.run("twin", **twin)
    k.run("compiled", **kw)
    np.testing.assert_array_equal(twin["points"], kw["points"])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 20))
def test_nearest_goal_kernel_equals_its_numpy_twin(seed, w):
    k = movement.nearest_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10, (15, 2)).round(1)     # ties and agents in range happen
    kw = dict(xy=xy, who=rng.integers(0, 15, w), pick=rng.integers(0, 15, (w, 6)), radius=3.0)
    np.testing.assert_array_equal(k.run("twin", **kw), k.run("compiled", **kw))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 20))
def test_goal_points_kernel_equals_its_numpy_twin(seed, w):
    """The fused draw / nearest / goal write gives the twin's goal points (ties, all in range, repeats)."""
    k = movement.goal_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10, (15, 2)).round(1)
    producers = rng.permutation(15)[:rng.integers(1, 15)]
    kw = dict(xy=xy, who=rng.integers(0, 15, w), role=rng.integers(0, 3, w), producers=producers,
              draws=rng.integers(0, producers.size, (w, 6)), radius=3.0, goal=rng.uniform(0, 10, (15, 3, 2)))
    twin = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in kw.items()}
    k.run("twin", **twin)
    k.run("compiled", **kw)
    np.testing.assert_array_equal(twin["goal"], kw["goal"])


@pytest.mark.parametrize("learned", [False, True])
def test_exact_kernels_give_their_twins_trajectory_bit_for_bit(monkeypatch, learned):
    """Offers / answers / sale, the neighbourhood query and the grid: the compiled pass and its NumPy twin
    give the same economy to the last bit, built-in and learned agents (regression: the fused kernels
    must not drift from the rules' array form)."""
    if any(k.compiled is None for k in EXACT):
        pytest.skip("numba is off")
    compiled = trajectory(days=40, learned=learned, name="maser_exp4", seed=2)
    for k in EXACT:
        monkeypatch.setattr(k, "impl", k.twin)
    twin = trajectory(days=40, learned=learned, name="maser_exp4", seed=2)
    for name, v in compiled.items():
        np.testing.assert_array_equal(twin[name], v, err_msg=name)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.floats(0.5, 30.0))
def test_grid_and_neighbourhood_kernels_equal_their_twins(seed, n, radius):
    """The cell list (counting sort) and the one-pass neighbourhood (role counts, customer candidates in
    neighbour order) equal their NumPy twins, and the candidates are `neighbour_pairs` filtered."""
    if space.grid_kernel.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    w, h = 60.0, 40.0
    xy = rng.uniform(0, 1, (n, 2)) * [w, h]
    xy[: n // 4] = xy[: n // 4].round()              # agents on cell borders and on top of each other
    alive = rng.random(n) < 0.8
    nx, ny, side = space.grid_shape(w, h, radius)
    kw = dict(xy=xy, alive=alive, nx=nx, ny=ny, side=float(side))
    for a, b in zip(space.grid_kernel.run("twin", **kw), space.grid_kernel.run("compiled", **kw)):
        np.testing.assert_array_equal(a, b)
    agents, sx, sy, scx, scy, starts, counts, nx, ny = space.grid(xy, alive, radius, w, h)
    in_good = np.array([-1, 0, 1, 2])[np.arange(n) % 4]
    out_good = np.arange(n) % 4
    kw = dict(agents=agents, sx=sx, sy=sy, scx=scx, scy=scy, starts=starts, counts=counts, nx=nx, ny=ny,
              radius=float(radius), in_good=in_good, out_good=out_good, food=3, n=n)
    twin = movement.near_kernel.run("twin", **kw)
    for a, b in zip(twin, movement.near_kernel.run("compiled", **kw)):
        np.testing.assert_array_equal(a, b)
    i, j, _ = space.neighbour_pairs(xy, alive, radius, w, h)
    counts_old, customer = movement.roles_kernel.run("twin", i=i, j=j, in_good=in_good, out_good=out_good, food=3,
                                                      n=n)
    np.testing.assert_array_equal(twin[0], counts_old)
    np.testing.assert_array_equal(twin[1], i[customer])
    np.testing.assert_array_equal(twin[2], j[customer])
