"""Trainers over batched markets: the same training data as separate cores, one core step per step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from channelmarket.training.markets import Markets  # noqa: E402
from channelmarket.training.vec_env import MarketVecEnv  # noqa: E402


@pytest.mark.parametrize("draw", ["spread", "random"])
def test_batched_markets_give_the_same_data_as_separate_cores(draw):
    from channelmarket.envs.scenario import get_scenario

    sc = get_scenario("energy_small", episode_steps=4, shock_rate=0.2)
    kw = dict(n_markets=3, learners="all", background=None, seed=5, learner_draw=draw)
    a, b = Markets(sc, batched=True, **kw), Markets(sc, batched=False, **kw)
    assert a.batched and not b.batched
    a.reset_many(list(a))
    for mk in b:
        b.reset(mk)
    n = sc.n_agents
    rng = np.random.default_rng(0)
    for step in range(10):   # across two episode ends
        act = rng.uniform(-1, 1, (3 * n, 4))
        obs, r, term, trunc, info = a.step_batch(act)
        for mk in b:
            o1, r1, *_ = b.step(mk, act[mk.index * n:(mk.index + 1) * n])
            assert np.array_equal(obs[mk.index * n:(mk.index + 1) * n], o1), (step, mk.index)
            assert np.array_equal(r[mk.index * n:(mk.index + 1) * n], r1)
        ended = [mk for mk in a if mk.core.done]
        if ended:
            a.reset_many(ended)
            for mk in b:
                if mk.core.done:
                    b.reset(mk)
            assert np.array_equal(a.obs, np.concatenate([mk.obs for mk in b]))
    assert a.metrics.pop(4) == pytest.approx(b.metrics.pop(4))


def test_batched_vec_env_matches_separate_cores_and_keeps_the_sb3_contract():
    kw = dict(learners="all", background=None, n_markets=2, seed=3, episode_steps=3)
    va, vb = MarketVecEnv("energy_small", batched=True, **kw), MarketVecEnv("energy_small", batched=False, **kw)
    assert va._mk.batched and not vb._mk.batched and va.num_envs == vb.num_envs == 24
    assert np.array_equal(va.reset(), vb.reset())
    rng = np.random.default_rng(1)
    for step in range(7):
        act = rng.uniform(-1, 1, (24, 4)).astype(np.float32)
        oa, ra, da, ia = va.step(act)
        ob, rb, db, ib = vb.step(act)
        assert np.array_equal(oa, ob) and np.array_equal(ra, rb) and np.array_equal(da, db)
        if da.any():   # episode end: terminal observation and TimeLimit.truncated on every sub-env
            assert all("terminal_observation" in ia[i] and ia[i]["TimeLimit.truncated"] for i in np.flatnonzero(da))
            for i in np.flatnonzero(da):
                assert np.array_equal(ia[i]["terminal_observation"], ib[i]["terminal_observation"])
    va.env_method("inject_shock", "DEMAND_SURGE", 2, indices=[0])
    assert va._mk.core.batch.shock_kind.tolist() == [1, 0]


def test_batched_needs_everyone_learning():
    from channelmarket.envs.scenario import get_scenario

    with pytest.raises(ValueError, match="batched markets need"):
        Markets(get_scenario("energy_small"), n_markets=2, learners="solar", background="truthful", batched=True)
    assert not Markets(get_scenario("energy_small"), n_markets=2, learners="solar", background="truthful").batched


@pytest.mark.slow
@pytest.mark.parametrize("centralized", [False, True])
def test_ippo_trains_on_batched_markets(tmp_path, centralized):
    pytest.importorskip("torch")
    from channelmarket.training.ippo import IPPOTrainer
    from channelmarket.training.ippo_config import IPPOConfig

    cfg = IPPOConfig(scenario="energy_small", n_markets=3, background=None, rollout_steps=8, seed=1,
                     total_steps=72, centralized_critic=centralized)
    tr = IPPOTrainer(cfg, tmp_path)
    assert tr.markets.batched and tr.M == 3 * 12
    losses = tr.update(tr.collect(24))   # energy_small: 24 steps, every market ends once
    assert np.isfinite(losses["policy_loss"]) and tr.global_step == 72 and tr.episodes == 3
