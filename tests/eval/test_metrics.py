"""Episode metrics on hand-made arrays with known answers, and the recorder on the env."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from channelmarket.envs.core import MarketCore
from channelmarket.envs.settlement import BREAKDOWN_FIELDS
from channelmarket.eval.metrics import (
    allocative_efficiency, channel_utilization, episode_metrics, gini,
    open_channel_utilization, payment_failure_rate, price_deviation, price_volatility, profit_by_group,
    profit_by_kind, shock_response, shock_spans,
)
from channelmarket.eval.welfare import optimal_welfare, realized_welfare
from channelmarket.eval.recorder import STEP_ARRAYS, EpisodeRecord, EpisodeRecorder
from channelmarket.policies.rollout import run_episode
from channelmarket.policies.simple import Truthful, ZeroIntelligence

nan = float("nan")


def test_profit_by_group_and_kind():
    out = profit_by_group(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 0, 2]), ["a", "b", "c", "d"])
    assert out == {"a": {"sum": 4.0, "mean": 2.0, "agents": 2}, "b": {"sum": 2.0, "mean": 2.0, "agents": 1},
                   "c": {"sum": 4.0, "mean": 4.0, "agents": 1}}
    kinds = profit_by_kind(np.array([10.0, -2.0, 5.0]), np.array([3, 2, 3]))
    assert kinds == {"storage": {"sum": -2.0, "mean": -2.0, "agents": 1},
                     "consumer": {"sum": 15.0, "mean": 7.5, "agents": 2}}


def test_allocative_efficiency():
    assert allocative_efficiency([1, 2, 3], [2, 2, 2]) == 1.0
    assert allocative_efficiency([1, 1], [4, 0]) == 0.5           # a ratio of sums, not a mean of ratios
    assert np.isnan(allocative_efficiency([1, 1], [0, 0]))
    assert np.isnan(allocative_efficiency([1, 1], [3, nan]))


def test_price_volatility():
    assert price_volatility([100, 110, 99]) == pytest.approx(abs(np.log(1.1) - np.log(0.9)) / 2)
    assert price_volatility([50, 50, 50, 50]) == 0.0
    # doubling then halving: returns +ln2, -ln2, std ln2
    assert price_volatility([10, 20, 10]) == pytest.approx(np.log(2))
    assert np.isnan(price_volatility([100]))
    assert np.isnan(price_volatility([100, 0, 100]))


def test_price_deviation():
    d = price_deviation([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    assert d["rmse"] == pytest.approx(np.sqrt(5 / 3)) and d["mae"] == pytest.approx(1.0)
    d = price_deviation([1.0, nan, 5.0], [2.0, 1.0, 1.0])
    assert d["rmse"] == pytest.approx(np.sqrt(17 / 2)) and d["mae"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="shape"):
        price_deviation([1.0, 2.0], [1.0])


def test_shock_response_peak_and_recovery():
    price = np.array([100.0] * 8 + [130, 140, 120] + [110, 104, 101, 100])
    shock = np.array([0] * 8 + [1] * 3 + [0] * 4)
    assert shock_spans(shock) == [(8, 11, 1)]
    r = shock_response(price, shock)
    assert r.n_shocks == 1 and r.peak_deviation == 40.0 and r.peak_relative == pytest.approx(0.4)
    assert r.recovery_steps == 1.0 and r.recovered_share == 1.0          # 104 is within 5% of 100
    assert shock_response(price, shock, rel_band=0.01).recovery_steps == 2.0
    assert shock_response(price, shock, rel_band=0.2).recovery_steps == 0.0   # back by the shock's end
    # a noisy baseline: mean 100, std 10; a band of 2 std is 20 EUR/MWh
    noisy = np.array([90.0, 110.0] * 4 + [150, 150, 150] + [125, 118, 100, 100])
    assert shock_response(noisy, shock, std_band=2.0).recovery_steps == 1.0
    assert shock_response(noisy, shock).recovery_steps == 2.0


def test_shock_response_edge_cases():
    r = shock_response(np.full(6, 50.0), np.zeros(6, dtype=int))
    assert r.n_shocks == 0 and np.isnan(r.peak_deviation) and np.isnan(r.recovery_steps)
    # a shock from step 0 has no baseline
    r = shock_response(np.array([80.0, 90.0, 50.0]), np.array([2, 2, 0]))
    assert r.n_shocks == 1 and np.isnan(r.peak_deviation)
    # never recovers
    r = shock_response(np.array([50.0, 50.0, 80.0, 80.0, 80.0]), np.array([0, 0, 3, 0, 0]))
    assert r.peak_deviation == 30.0 and np.isnan(r.recovery_steps) and r.recovered_share == 0.0
    # two shocks of different kinds back to back are two shocks; averages over them
    price = np.array([100.0, 100.0, 120.0, 70.0, 100.0, 100.0])
    shock = np.array([0, 0, 1, 2, 0, 0])
    r = shock_response(price, shock, pre_window=2)
    assert r.n_shocks == 2
    assert r.shocks[0]["peak_deviation"] == 20.0 and r.shocks[0]["recovery_steps"] == 1.0  # 70 is out, 100 in
    assert r.shocks[1]["baseline"] == pytest.approx(110.0) and r.shocks[1]["peak_deviation"] == 40.0
    assert r.peak_deviation == 30.0


def test_failure_rate_utilization_gini():
    assert payment_failure_rate([1, 0, 2], [4, 0, 4]) == pytest.approx(3 / 8)
    assert np.isnan(payment_failure_rate([0, 0], [0, 0]))
    assert open_channel_utilization(np.array([0.1, 0.5, 0.9]), np.array([True, False, True])) == pytest.approx(0.5)
    assert np.isnan(open_channel_utilization(np.array([0.1]), np.array([False])))
    assert channel_utilization([0.2, nan, 0.4]) == pytest.approx(0.3)
    assert gini([3, 3, 3, 3]) == 0.0
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([0, 1]) == pytest.approx(0.5)
    assert gini([-1, 1]) == pytest.approx(0.5)
    assert gini([0, 0]) == 0.0
    rng = np.random.default_rng(0)
    x = rng.normal(10, 20, 37)  # some negative
    pairwise = sum(abs(a - b) for a, b in itertools.product(x, x)) / (2 * x.size ** 2 * np.abs(x).mean())
    assert gini(x) == pytest.approx(pairwise, rel=1e-12)
    assert 0.0 <= gini(x) <= 1.0


def synthetic_record() -> EpisodeRecord:
    t = 4
    steps = {k: np.zeros(t) for k in STEP_ARRAYS}
    steps.update(t=np.arange(t), price=np.array([50.0, 60.0, 60.0, 50.0]), shock=np.array([0, 0, 1, 0]),
                 volume=np.array([1.0, 2.0, 0.0, 1.0]), attempted=np.array([2, 2, 0, 4]), failed=np.array([1, 0, 0, 1]),
                 unserved=np.array([0.0, 0.5, 0.5, 0.0]), curtailed=np.array([1.0, 0.0, 0.0, 0.0]),
                 needed=np.array([2.0, 2.0, 2.0, 2.0]), utilization=np.array([0.1, 0.2, 0.3, 0.4]),
                 reward_welfare=np.array([10.0, 10.0, 10.0, 10.0]), realized_welfare=np.array([10.0, 12.0, 8.0, 10.0]),
                 optimal_welfare=np.array([20.0, 20.0, 20.0, 20.0]))
    profit = np.array([30.0, 10.0, 0.0, 0.0])
    totals = {k: np.zeros(4) for k in BREAKDOWN_FIELDS}
    totals["profit"] = profit
    return EpisodeRecord(steps, totals, kind=np.array([0, 0, 2, 3]), policy_index=np.array([0, 1, 1, 1]),
                         policy_names=["learned", "truthful"])


def test_episode_metrics_on_a_synthetic_record():
    m = episode_metrics(synthetic_record(), equilibrium_price=np.array([50.0, 50.0, 50.0, 50.0]), pre_window=2)
    assert m["efficiency"] == pytest.approx(40 / 80)
    assert m["welfare"] == 40.0 and m["p2p_volume"] == 4.0
    assert m["unserved"] == 1.0 and m["curtailed"] == 1.0 and m["unserved_share"] == pytest.approx(1 / 8)
    assert m["payment_failure_rate"] == pytest.approx(2 / 8)
    assert m["channel_utilization"] == pytest.approx(0.25)
    assert m["eq_price_rmse"] == pytest.approx(np.sqrt(200 / 4)) and m["eq_price_mae"] == pytest.approx(5.0)
    assert m["price_volatility"] == pytest.approx(np.std(np.log([60 / 50, 1.0, 50 / 60])))
    assert m["n_shocks"] == 1 and m["shock_peak_deviation"] == pytest.approx(5.0)  # baseline 55 over 2 steps
    assert m["profit_gini"] == pytest.approx(gini([30, 10, 0, 0]))
    assert m["profit_by_kind"]["solar"] == {"sum": 40.0, "mean": 20.0, "agents": 2}
    assert m["profit_by_policy"]["truthful"]["sum"] == 10.0
    assert np.isnan(episode_metrics(synthetic_record())["eq_price_rmse"])


def test_recorder_agrees_with_the_env():
    sc = dict(shock_schedule=[{"step": 5, "kind": "SUPPLY_SHORTAGE", "duration": 3}])
    core = MarketCore("energy_small", **sc)
    rec = EpisodeRecorder(core, optimum=True)
    res = run_episode(core, ZeroIntelligence(), seed=2, callback=rec)
    r = rec.result()
    assert r.n_steps == 24
    np.testing.assert_array_equal(r.steps["shock"], [0] * 5 + [4] * 3 + [0] * 16)   # the interval's own shock
    np.testing.assert_allclose(r.totals["profit"], res.totals["profit"])
    np.testing.assert_allclose(r.steps["price"], res.steps["clearing_price"])
    np.testing.assert_array_equal(r.steps["failed"], res.steps["failed_payments"])
    assert np.all(r.steps["attempted"] >= res.steps["trades"])
    assert r.steps["reward_welfare"].sum() == pytest.approx(res.welfare)
    assert np.all(r.steps["realized_welfare"] <= r.steps["optimal_welfare"] + 1e-6)
    m = episode_metrics(rec.result(res))
    assert 0 < m["efficiency"] <= 1 and m["n_shocks"] == 1
    assert m["profit_by_policy"]["zero_intelligence"]["sum"] == pytest.approx(res.welfare)
    # driving the core through rec.step records the same numbers
    core2 = MarketCore("energy_small", **sc)
    core2.reset(seed=2)
    rec2 = EpisodeRecorder(core2, optimum=False)
    pol = ZeroIntelligence()
    pol.bind(core2, np.arange(core2.n_agents), seed=np.random.SeedSequence([2, 0x5EED, 0]))
    while not core2.done:
        rec2.step(pol.act(core2.observe()))
    r2 = rec2.result()
    np.testing.assert_allclose(r2.steps["realized_welfare"], r.steps["realized_welfare"])
    assert np.isnan(r2.steps["optimal_welfare"]).all() and np.isnan(episode_metrics(r2)["efficiency"])


def test_recorder_step_values_match_the_optimum_module():
    core = MarketCore("energy_small")
    core.reset(seed=4)
    rec = EpisodeRecorder(core, optimum=True, storage_value="reward")
    pol = Truthful()
    pol.bind(core, np.arange(core.n_agents))
    expect_real, expect_opt = [], []
    for _ in range(3):
        prev = core.state
        rec.step(pol.act(core.observe()))
        expect_real.append(realized_welfare(core, "reward"))
        expect_opt.append(optimal_welfare(core, prev, storage_value="reward").welfare)
    r = rec.result()
    np.testing.assert_allclose(r.steps["realized_welfare"], expect_real)
    np.testing.assert_allclose(r.steps["optimal_welfare"], expect_opt)
    np.testing.assert_allclose(r.steps["reward_welfare"], expect_real)   # "reward": the sum of rewards


def test_per_good_metrics_in_a_market_with_certificates():
    from channelmarket.envs import MarketCore
    from channelmarket.eval.metrics import episode_metrics
    from channelmarket.eval.recorder import EpisodeRecorder

    core = MarketCore("energy_rec", episode_steps=24)
    core.reset(seed=0)
    rec = EpisodeRecorder(core)
    rng = np.random.default_rng(0)
    while not core.done:
        rec.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    r = rec.result()
    assert r.goods == ("rec",) and r.steps["rec_volume"].shape == (24,)
    m = episode_metrics(r)
    assert m["rec_volume"] > 0 and 0 <= m["rec_price_mean"] <= core.scenario.rec_penalty
    single = MarketCore("energy_small")
    single.reset(seed=0)
    rec1 = EpisodeRecorder(single)
    rec1.step(np.zeros((single.n_agents, 4)))
    assert rec1.result().goods == () and not any(k.startswith("rec_") for k in episode_metrics(rec1.result()))
