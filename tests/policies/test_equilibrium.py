"""The mean-field equilibrium solver against exhaustive computations on tiny instances, its price
mapping against the env's own price update, its forecasts against the env, and the
MeanFieldPolicy that trades at it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from channelmarket.envs import prices
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import get_scenario
from channelmarket.policies.equilibrium import (
    Forecast, best_response, forecast, schedule_payoff, solve_equilibrium, static_price, storage_grid,
)
from channelmarket.policies.mean_field import MeanFieldPolicy
from channelmarket.policies.rollout import run_episode
from channelmarket.policies.simple import Truthful


def tiny(level, supply, demand, cap, eff, kappa=0.2, beta=0.15, feed_in=10.0, retail=300.0) -> Forecast:
    """T = len(level) one-hour intervals; stores start half full, power 0.6 x capacity."""
    cap = np.asarray(cap, float)
    n = cap.shape[0]
    return Forecast(t0=0, hour=np.arange(len(level), dtype=float), level=np.asarray(level, float),
                    supply=np.asarray(supply, float), demand=np.asarray(demand, float),
                    shock=np.zeros(len(level), dtype=np.int64), storage=np.arange(n), capacity=cap,
                    power=0.6 * cap, efficiency=np.asarray(eff, float), soc0=cap / 2, step_hours=1.0,
                    feed_in=feed_in, retail=retail, price_reversion=kappa, price_imbalance_gain=beta)


# ---- an exhaustive solver, written independently of the module ---------------------------------

def bf_price(fc: Forecast, bought: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """The env's price update at rest: 0 = kappa (level - p) + beta p imb  =>  p = kappa level / (kappa - beta imb)."""
    d = fc.demand + bought.sum(axis=1)
    s = fc.supply + sold.sum(axis=1)
    imb = (d - s) / (d + s)
    den = fc.price_reversion - fc.price_imbalance_gain * imb
    p = np.where(den > 0, fc.price_reversion * fc.level / np.where(den > 0, den, 1.0), fc.retail)
    return np.clip(p, fc.feed_in, fc.retail)


def bf_paths(fc: Forecast, i: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Every feasible schedule of store i on the grid: (bought [P, T], sold [P, T])."""
    cap, eff, pdt = fc.capacity[i], fc.efficiency[i], fc.power[i] * fc.step_hours
    h = cap / (levels - 1)
    k0 = int(round(fc.soc0[i] / h))
    bought, sold = [], []
    for seq in itertools.product(range(-(levels - 1), levels), repeat=fc.n_steps):
        k, b, s, ok = k0, [], [], True
        for a in seq:
            e_in, e_out = (a * h / eff, 0.0) if a > 0 else (0.0, -a * h * eff)
            if not 0 <= k + a <= levels - 1 or e_in > pdt + 1e-12 or e_out > pdt + 1e-12:
                ok = False
                break
            b.append(e_in)
            s.append(e_out)
            k += a
        if ok:
            bought.append(b)
            sold.append(s)
    return np.array(bought), np.array(sold)


def bf_pure_equilibria(fc: Forecast, levels: int):
    """Every profile of grid schedules in which each store's schedule is a best response to the
    prices the profile itself makes."""
    paths = [bf_paths(fc, i, levels) for i in range(fc.storage.shape[0])]
    found = []
    for idx in itertools.product(*[range(len(b)) for b, _ in paths]):
        bought = np.stack([paths[i][0][j] for i, j in enumerate(idx)], axis=1)
        sold = np.stack([paths[i][1][j] for i, j in enumerate(idx)], axis=1)
        p = bf_price(fc, bought, sold)
        if all(((s - b) @ p)[j] >= ((s - b) @ p).max() - 1e-9 for (b, s), j in zip(paths, idx)):
            found.append((p, bought, sold))
    return found


def bf_exploitability(fc: Forecast, levels: int, price, bought, sold) -> tuple[float, float]:
    """(sum over stores of best enumerated payoff - payoff of the given schedule, sum of best payoffs)."""
    gap = best_total = 0.0
    for i in range(fc.storage.shape[0]):
        b, s = bf_paths(fc, i, levels)
        best = float(((s - b) @ price).max())
        gap += best - float((sold[:, i] - bought[:, i]) @ price)
        best_total += abs(best)
    return gap, best_total


# ---- the price mapping -----------------------------------------------------------------------------

def test_static_price_is_the_rest_point_of_the_env_price_update():
    sc = get_scenario("energy_default", price_volatility=0.0)
    rng = np.random.default_rng(0)
    level = 70.0
    for imb in (-0.8, -0.3, 0.0, 0.2, 0.5, 0.9):
        ref = np.array([level])
        for _ in range(400):  # nothing traded: no VWAP pull; no noise
            ref = prices.next_ref_price(sc, ref, level, ref, np.zeros(1), np.array([imb]), rng)
        mapped = static_price(np.array([level]), np.array([imb]), sc.price_reversion, sc.price_imbalance_gain,
                              sc.feed_in_tariff, sc.retail_tariff)
        assert mapped[0] == pytest.approx(ref[0], rel=1e-9), imb
    # a market that wants more than is offered is dearer than one in balance, which is dearer than a glut
    p = static_price(np.full(3, 70.0), np.array([0.3, 0.0, -0.3]), 0.2, 0.15, 30.0, 150.0)
    assert p[0] > p[1] > p[2]
    assert p[1] == pytest.approx(70.0)


# ---- best response -------------------------------------------------------------------------------

@pytest.mark.parametrize("levels", [3, 4])
def test_dp_best_response_equals_enumeration(levels):
    rng = np.random.default_rng(levels)
    fc = tiny(level=[60] * 4, supply=[4] * 4, demand=[4] * 4, cap=[2.0, 3.0], eff=[0.9, 1.0])
    grid = storage_grid(fc.capacity, fc.power, fc.efficiency, fc.soc0, fc.step_hours, levels)
    paths = [bf_paths(fc, i, levels) for i in range(2)]
    for _ in range(8):
        price = rng.uniform(20, 120, 4)
        br = best_response(grid, price)
        for i, (b, s) in enumerate(paths):
            best = ((s - b) @ price).max()
            assert br.value[i] == pytest.approx(best, abs=1e-9)
        # the schedule it returns earns that value and is one of the feasible schedules
        assert schedule_payoff(price, br.bought, br.sold, br.soc[-1]) == pytest.approx(br.value, abs=1e-9)
        for i, (b, s) in enumerate(paths):
            assert np.min(np.abs(b - br.bought[:, i]).sum(1) + np.abs(s - br.sold[:, i]).sum(1)) < 1e-9


def test_both_dp_layouts_agree(monkeypatch):
    import channelmarket.policies.equilibrium as eqm

    rng = np.random.default_rng(1)
    n = 7
    cap = rng.uniform(2, 8, n)
    grid = storage_grid(cap, 0.5 * cap, rng.uniform(0.9, 0.97, n), rng.uniform(0, 1, n) * cap, 0.25, 21)
    price = rng.uniform(30, 150, 48)
    small = best_response(grid, price)
    monkeypatch.setattr(eqm, "DP_SMALL", 0)
    large = best_response(grid, price)
    np.testing.assert_array_equal(small.bought, large.bought)
    np.testing.assert_array_equal(small.sold, large.sold)
    np.testing.assert_allclose(small.value, large.value, rtol=1e-12)


# ---- equilibria against exhaustive search -----------------------------------------------------------

PURE = [  # two stores; exactly one pure equilibrium, and best-responding to the no-storage prices is not it
    dict(level=[81, 63, 48, 83], supply=[4.1, 3.2, 3.9, 5.6], demand=[5.7, 3.4, 4.3, 3.3], cap=[2.8, 2.0], eff=[0.9, 1.0]),
    dict(level=[88, 66, 42, 51], supply=[2.4, 3.3, 4.7, 4.4], demand=[4.6, 3.8, 2.4, 3.2], cap=[2.5, 2.5], eff=[0.9, 1.0]),
]


@pytest.mark.parametrize("case", PURE)
def test_fictitious_play_finds_the_unique_pure_equilibrium(case):
    fc = tiny(**case)
    found = bf_pure_equilibria(fc, 3)
    assert len(found) == 1
    p, bought, sold = found[0]
    res = solve_equilibrium(fc, soc_levels=3, tol=1e-6, max_iter=5000)
    assert res.converged and res.iterations > 2 and res.residuals[-1] <= 1e-6
    assert res.residuals[0] > 1e-3          # the first best response was not an equilibrium
    np.testing.assert_allclose(res.price, p, atol=0.01)
    np.testing.assert_allclose(res.bought, bought, atol=1e-3)
    np.testing.assert_allclose(res.sold, sold, atol=1e-3)


def test_mixed_equilibrium_one_store_against_exhaustive_and_indifference():
    # one store (3.8 MWh, half full, 3 levels: it moves 1.9 MWh a step); prices without it are low at
    # t0, t1 and high at t2, t3. It must charge 1.9 MWh before selling twice, and whichever of t0, t1 it
    # picks, its purchase raises that price above the other: no pure equilibrium. In the mixed one the
    # purchase splits c0 + c1 = 1.9 so that p0 = p1, then it sells 1.9 at t2 and t3.
    fc = tiny(level=[66, 77, 100, 97], supply=[3.8, 5.0, 4.0, 4.1], demand=[5.1, 3.7, 4.9, 4.8], cap=[3.8], eff=[1.0])
    assert bf_pure_equilibria(fc, 3) == []
    res = solve_equilibrium(fc, soc_levels=3, tol=1e-7, max_iter=20000)
    assert res.converged
    gap, best = bf_exploitability(fc, 3, res.price, res.bought, res.sold)
    assert 0 <= gap <= 1e-6 * best
    # the indifference split by bisection on the exhaustive price function
    lo, hi = 0.0, 1.9
    for _ in range(100):
        c0 = 0.5 * (lo + hi)
        p = bf_price(fc, np.array([[c0], [1.9 - c0], [0.0], [0.0]]), np.array([[0.0], [0.0], [1.9], [1.9]]))
        lo, hi = (c0, hi) if p[0] < p[1] else (lo, c0)
    np.testing.assert_allclose(res.price, p, atol=0.02)
    np.testing.assert_allclose(res.bought[:, 0], [c0, 1.9 - c0, 0, 0], atol=2e-3)


def test_mixed_equilibrium_two_stores_is_unexploitable_by_enumeration():
    fc = tiny(level=[65, 90, 41, 62], supply=[2.3, 4.6, 3.1, 4.8], demand=[5.8, 2.5, 5.5, 2.2], cap=[2.1, 2.3],
              eff=[1.0, 1.0])
    assert bf_pure_equilibria(fc, 3) == []
    res = solve_equilibrium(fc, soc_levels=3, tol=1e-6, max_iter=20000)
    assert res.converged
    gap, best = bf_exploitability(fc, 3, res.price, res.bought, res.sold)
    assert 0 <= gap <= 2e-6 * best
    # ... whereas the best response to the no-storage prices leaves a lot on the table at its own prices
    br = best_response(storage_grid(fc.capacity, fc.power, fc.efficiency, fc.soc0, 1.0, 3), res.no_storage_price)
    p_br = bf_price(fc, br.bought, br.sold)
    gap0, best0 = bf_exploitability(fc, 3, p_br, br.bought, br.sold)
    assert gap0 > 0.01 * best0 and gap0 > 1000 * gap


def test_convergence_report_and_bad_step():
    fc = tiny(level=[66, 77, 100, 97], supply=[3.8, 5.0, 4.0, 4.1], demand=[5.1, 3.7, 4.9, 4.8], cap=[3.8], eff=[1.0])
    res = solve_equilibrium(fc, soc_levels=3, tol=1e-9, max_iter=50, step="harmonic")
    assert not res.converged and res.iterations == 50
    assert res.residuals.shape == (50,) and res.price_changes.shape == (50,)
    assert res.residuals[-1] < res.residuals[0]
    with pytest.raises(ValueError, match="step"):
        solve_equilibrium(fc, step=0.0)


# ---- the env -----------------------------------------------------------------------------------

def test_forecast_matches_the_env_and_leaves_the_core_alone():
    fc = forecast("energy_small", seed=3)
    core = MarketCore("energy_small")
    core.reset(seed=3)
    pol = Truthful()
    pol.bind(core, np.arange(core.n_agents))
    gen = (core.agents.sells_good >= 0) & ~core.agents.is_storage
    cons = core.agents.is_consumer
    supply, demand = [], []
    mid = None
    while not core.done:
        if core.state.t == 5:
            mid = forecast(core)                       # the rest of this episode, from a copy
        core.step(pol.act(core.observe()))
        supply.append(core.last_result.sellable[gen].sum())
        demand.append(core.last_result.needed[cons].sum())
    np.testing.assert_allclose(fc.supply, supply, rtol=1e-12)
    np.testing.assert_allclose(fc.demand, demand, rtol=1e-12)
    assert mid.t0 == 5 and mid.n_steps == 19
    np.testing.assert_allclose(mid.supply, supply[5:], rtol=1e-12)   # the core ran on undisturbed
    np.testing.assert_allclose(fc.soc0, 0.5 * core.agents.capacity[core.agents.is_storage])


def test_equilibrium_of_energy_small():
    sc = get_scenario("energy_small")
    res = solve_equilibrium(forecast(sc, seed=0))
    assert res.converged and res.residuals[-1] <= 1e-3
    assert np.all((res.price >= sc.feed_in_tariff) & (res.price <= sc.retail_tariff))
    core = MarketCore(sc)
    core.reset(seed=0)
    st = core.agents.is_storage
    cap, pdt = core.agents.capacity[st], core.agents.power[st] * sc.step_hours
    assert np.all(res.soc >= -1e-9) and np.all(res.soc <= cap + 1e-9)
    assert np.all(res.bought <= pdt + 1e-9) and np.all(res.sold <= pdt + 1e-9)
    # arbitrage: the stores earn at the equilibrium prices, and their trading flattens the price path
    assert (res.price[:, None] * res.storage_schedule).sum() > 0
    assert np.ptp(res.price) < np.ptp(res.no_storage_price)


def test_mean_field_policy_trades_at_the_equilibrium_path():
    eq = solve_equilibrium(forecast("energy_small", seed=1))
    core = MarketCore("energy_small")
    pol = MeanFieldPolicy(eq)
    sold, bought, vwap, volume = [], [], [], []

    def on_step(c, prev):
        bd = c.breakdown()
        sold.append(bd["sold"][c.agents.is_storage])
        bought.append(bd["bought"][c.agents.is_storage])
        vwap.append(c.state.clearing_price[0])
        volume.append(c.state.volume[0])

    run_episode(core, pol, seed=1, callback=on_step)
    traded = np.asarray(volume) > 0
    assert traded.sum() >= 10
    np.testing.assert_allclose(np.asarray(vwap)[traded], eq.price[traded], rtol=1e-9)
    sched = eq.storage_schedule
    sold, bought = np.asarray(sold), np.asarray(bought)
    assert np.all(sold[sched <= 1e-9] == 0) and np.all(bought[sched >= -1e-9] == 0)
    assert np.all(sold <= np.maximum(sched, 0) + 1e-9) and np.all(bought <= np.maximum(-sched, 0) + 1e-9)
    # solving at bind gives the same path as solving beforehand (forecast from the fresh core)
    pol2 = MeanFieldPolicy()
    core.reset(seed=1)
    pol2.bind(core, np.arange(core.n_agents))
    np.testing.assert_allclose(pol2.eq.price, eq.price)
