"""MarketVecEnv: the SB3 VecEnv contract, agent selection, seeding, metrics, and equality with
`run_episode` (the adapter drives the market exactly as a rollout would)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from channelmarket.envs import MarketCore, get_scenario
from channelmarket.policies import make, run_episode
from channelmarket.policies.simple import Truthful
from channelmarket.training.vec_env import (MarketVecEnv, episode_seed, parse_kinds, scenario_kinds, scenario_learners,
                                            select_agents)

SMALL = "energy_small"


def small(steps: int = 8, **kw):
    kw.setdefault("background", "truthful")
    return MarketVecEnv(SMALL, episode_steps=steps, seed=kw.pop("seed", 0), **kw)


def test_parse_kinds_and_selection():
    assert parse_kinds("all") == ("solar", "wind", "storage", "consumer", "ev")
    assert parse_kinds("consumer,solar") == ("solar", "consumer")
    assert parse_kinds("sellers") == ("solar", "wind", "storage", "ev")
    assert scenario_learners(get_scenario("energy_small"), "sellers") == ("solar", "wind", "storage")
    assert scenario_learners(get_scenario("energy_ev"), "sellers") == ("solar", "wind", "storage", "ev")
    with pytest.raises(ValueError, match="hydro"):
        parse_kinds("hydro")
    kind = scenario_kinds(get_scenario("energy_default"))
    half = select_agents(kind, "all", 0.5)
    for k in range(4):   # every kind split in half, at least one agent each
        n_k = (kind == k).sum()
        assert (kind[half] == k).sum() == (n_k + 1) // 2
    assert select_agents(kind, "solar", 1.0).tolist() == np.flatnonzero(kind == 0).tolist()


def test_spaces_num_envs_and_reset():
    v = small(learners="solar,consumer", learner_share=1.0, n_markets=3)
    kind = scenario_kinds(v.scenario)
    per = int(np.isin(kind, [0, 3]).sum())
    assert v.num_envs == 3 * per and v.agents_per_market == per
    obs = v.reset()
    assert obs.shape == (v.num_envs, 30) and obs.dtype == np.float32
    assert v.observation_space.contains(obs[0]) and v.action_space.shape == (4,)
    assert set(v.sub_env_kind().tolist()) == {0, 3}
    # kind one-hot of the observation matches the controlled agents' kinds
    assert (obs[:, :4].argmax(axis=1) == v.sub_env_kind()).all()


def test_auto_reset_terminal_observation_and_truncation():
    v = small(steps=5, learners="all", n_markets=2)
    v.reset()
    acts = np.zeros((v.num_envs, 4), dtype=np.float32)
    for t in range(5):
        obs, rew, done, infos = v.step(acts)
        assert rew.dtype == np.float32 and done.dtype == bool and len(infos) == v.num_envs
        if t < 4:
            assert not done.any()
            assert all(i == {} for i in infos)
    assert done.all()
    for i in infos:
        assert i["TimeLimit.truncated"] is True
        assert i["terminal_observation"].shape == (30,)
        assert i["terminal_observation"][24] == pytest.approx(1.0)   # episode_progress at the end
    assert np.allclose(obs[:, 24], 0.0)                               # the new episode's first obs
    assert v.episodes_done == 2


def test_shared_infos_are_guarded():
    v = small(learners="all")
    v.reset()
    acts = np.zeros((v.num_envs, 4), dtype=np.float32)
    _, _, _, infos = v.step(acts)
    infos[0]["oops"] = 1                  # a consumer writing into the shared dicts
    with pytest.warns(RuntimeWarning, match="shared"):
        _, _, _, infos = v.step(acts)
    assert infos[0] == {}


def test_same_seed_same_data_and_seed_method():
    def trace(v, n=12):
        v.reset()
        rng = np.random.default_rng(1)
        out = []
        for _ in range(n):
            o, r, d, _ = v.step(rng.uniform(-1, 1, (v.num_envs, 4)).astype(np.float32))
            out.append((o.copy(), r.copy()))
        return out

    a = trace(small(learners="all", learner_share=0.5, background="risk_factor", n_markets=2, seed=3))
    b = trace(small(learners="all", learner_share=0.5, background="risk_factor", n_markets=2, seed=3))
    c = small(learners="all", learner_share=0.5, background="risk_factor", n_markets=2, seed=99)
    c.seed(3)   # SB3's way: the next reset uses it
    c_tr = trace(c)
    for (oa, ra), (ob, rb), (oc, rc) in zip(a, b, c_tr):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(oa, oc)
    # the two markets run different episodes
    half = a[0][0].shape[0] // 2
    assert not np.array_equal(a[0][0][:half], a[0][0][half:])


def test_matches_run_episode():
    """Controlled agents acting truthfully through the adapter == everyone truthful in run_episode."""
    steps = 8
    v = small(steps=steps, learners="all", learner_share=0.5, background="truthful", reward_scale="eur", seed=5)
    v.reset()
    mirror = MarketCore(v.scenario)       # same seed -> same market; computes the controlled agents' actions
    mirror.reset(seed=episode_seed(5, 0, 0))
    pol = Truthful()
    pol.bind(mirror, v.controlled)
    rewards = []
    for _ in range(steps):
        a = pol.act(mirror.observe()[v.controlled])
        full = np.zeros((mirror.n_agents, 4))
        full[v.controlled] = a
        rest = np.setdiff1d(np.arange(mirror.n_agents), v.controlled)
        drv = Truthful()
        drv.bind(mirror, rest)
        full[rest] = drv.act(mirror.observe()[rest])
        mirror.step(full)
        _, r, _, _ = v.step(a.astype(np.float32))
        rewards.append(r)
    res = run_episode(MarketCore(v.scenario), make("truthful"), seed=episode_seed(5, 0, 0))
    np.testing.assert_allclose(np.sum(rewards, axis=0), res.totals["profit"][v.controlled], rtol=1e-5, atol=1e-3)


def test_get_attr_env_method_and_metrics():
    v = small(steps=6, learners="all", n_markets=2)
    v.reset()
    assert v.get_attr("render_mode") == [None] * v.num_envs
    assert v.get_attr("scenario", indices=[0])[0].name == SMALL
    assert v.get_attr("n_agents", indices=[0, v.num_envs - 1]) == [12, 12]
    v.env_method("inject_shock", "DEMAND_SURGE", 3, indices=[0])
    # market 0 only; its background policies see the shock at once
    assert (v.markets[0].obs[:, 25] == 1.0).all() and (v.markets[1].obs[:, 25] == 0.0).all()
    assert v.env_is_wrapped(object) == [False] * v.num_envs
    for _ in range(4):
        v.step(np.zeros((v.num_envs, 4), dtype=np.float32))
    m = v.pop_metrics()
    for tag in ("market/clearing_price", "market/volume", "market/supply_demand_balance", "market/trades",
                "market/failed_payments", "market/active_channels", "market/unserved_energy", "market/shock_share",
                "profit/solar/learner", "profit/consumer/learner"):
        assert tag in m, tag
    assert 0.0 < m["market/shock_share"] <= 1.0
    assert v.pop_metrics() == {}          # reset by the pop


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_markets"):
        small(n_markets=0)
    with pytest.raises(ValueError, match="reward_scale"):
        small(reward_scale="usd")
    with pytest.raises(ValueError, match="overlaps"):
        small(learners="solar", learner_share=1.0, partners=[("truthful", np.array([0]))])


def test_partners_drive_their_agents():
    kind = scenario_kinds(get_scenario(SMALL))
    cons = np.flatnonzero(kind == 3)
    v = small(learners="solar", learner_share=1.0, partners=[("random", cons)], background="truthful")
    names = [type(p).__name__ for p, _ in v.markets[0].drivers]
    assert names == ["RandomPolicy", "Truthful"]
    v.reset()
    v.step(np.zeros((v.num_envs, 4), dtype=np.float32))


def test_same_seed_same_model():
    """PPO over the adapter is reproducible: same seed, same weights after training."""
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    def run():
        v = VecNormalize(VecMonitor(small(steps=8, learners="all", learner_share=0.5, background="risk_factor")))
        m = sb3.PPO("MlpPolicy", v, n_steps=8, batch_size=28, n_epochs=2, seed=11, device="cpu")
        m.learn(96)
        return np.concatenate([p.detach().numpy().ravel() for p in m.policy.parameters()]), v.obs_rms.mean.copy()

    (pa, ma), (pb, mb) = run(), run()
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(ma, mb)


def test_per_good_tags_in_a_market_with_certificates():
    v = MarketVecEnv(get_scenario("energy_small", goods=("energy", "rec"), rec_quota=0.8), learners="all",
                     background=None, seed=0)
    v.reset()
    for _ in range(24):
        v.step(np.zeros((v.num_envs, 4), dtype=np.float32))
    m = v.pop_metrics()
    assert {"market/rec_volume", "market/rec_ref_price"} <= set(m) and m["market/rec_volume"] >= 0
    plain = small()
    plain.reset()
    plain.step(np.zeros((plain.num_envs, 4), dtype=np.float32))
    assert not any(k.startswith("market/rec_") for k in plain.pop_metrics())
