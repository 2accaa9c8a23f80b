"""Learners can use the optional `open_partner` action: with `partner_action` the trainers, VecEnvs,
the Gymnasium view and the saved models are 5 wide; a 4-wide model in a 5-wide market acts with
open_partner 0 (padded, like the baselines); a 5-wide model in a 4-wide market is refused with a
message naming the widths and the scenario field to turn on."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from channelmarket.envs.core import MarketCore
from channelmarket.policies import make, run_episode
from channelmarket.policies.ippo_policy import IPPOPolicy, load_ippo
from channelmarket.policies.widths import check_width, fields_of_width, put_actions
from channelmarket.training.gym_env import SingleAgentMarketEnv
from channelmarket.training.ippo import IPPOConfig, IPPOTrainer, train
from channelmarket.training.vec_env import MarketVecEnv

FIVE = ("ask", "bid", "quantity", "concession", "open_partner")


def tiny(**kw) -> IPPOConfig:
    base = dict(scenario="energy_small", total_steps=48, n_markets=1, rollout_steps=24, learners="all",
                learner_share=0.5, background="truthful", checkpoint_every=24, progress=False, minibatch_size=64,
                partner_action=True, seed=1)
    base.update(kw)
    return IPPOConfig(**base)


# ---- the width helpers --------------------------------------------------------------------------

def test_put_actions_pads_base_width_and_refuses_others():
    out = np.full((4, 5), 7.0)
    put_actions(out, np.array([0, 2]), np.ones((2, 4)))
    assert (out[[0, 2], :4] == 1).all() and (out[[0, 2], 4] == 0).all() and (out[[1, 3]] == 7).all()
    put_actions(out, slice(0, 4), np.full((4, 5), 0.5))
    assert (out == 0.5).all()
    with pytest.raises(ValueError, match="6 columns wide.*takes 5"):
        put_actions(out, slice(0, 1), np.ones((1, 6)))
    with pytest.raises(ValueError, match="3 columns wide"):
        put_actions(out, slice(0, 1), np.ones((1, 3)))
    four = np.zeros((2, 4))
    with pytest.raises(ValueError, match="5 columns wide.*takes 4"):
        put_actions(four, slice(0, 2), np.ones((2, 5)))


def test_check_width_messages():
    four, five = MarketCore("energy_small"), MarketCore("energy_small", partner_action=True)
    check_width(4, four), check_width(5, five), check_width(4, five)   # same width, or base padded
    with pytest.raises(ValueError, match=r"model 'm' acts with 5 action columns \(.*open_partner\) but scenario "
                                         r"'energy_small' takes 4.*partner_action: true.*--partner-action on"):
        check_width(5, four, what="model 'm'")
    assert fields_of_width(5) == FIVE
    for bad in (3, 6, True, 4.0):
        with pytest.raises(ValueError, match="action width"):
            fields_of_width(bad)


# ---- the envs learners step ----------------------------------------------------------------------

def test_vec_env_and_gym_view_are_five_wide_and_asks_open_partner_channels():
    v = MarketVecEnv("energy_small", learner_share=0.5, background="truthful", seed=3, partner_action=True)
    assert v.action_space.shape == (5,) and v.n_actions == 5
    v.reset()
    core = v.markets[0].core
    acts = np.zeros((v.num_envs, 5), dtype=np.float32)
    acts[:, 4] = 1.0                       # every learner asks for a channel to its regular partner
    for _ in range(12):
        _, r, _, _ = v.step(acts)
        assert np.isfinite(r).all()
    st = core.state
    learners = v.controlled
    has = st.partner[learners] >= 0
    assert has.any()
    linked = _linked(core, learners[has], st.partner[learners[has]])
    assert linked.mean() > 0.5             # most learners with a partner got a channel to it
    # flat (N*5,) actions reshape; the 4-wide MarketVecEnv is unchanged
    v.step(acts.ravel())
    assert MarketVecEnv("energy_small", seed=3).action_space.shape == (4,)

    env = SingleAgentMarketEnv("energy_small", kind="consumer", opponents="truthful", partner_action=True,
                               episode_steps=6)
    assert env.action_space.shape == (5,)
    env.reset(seed=0)
    env.step(np.ones(5, dtype=np.float32))     # the 4-wide truthful opponents are padded
    with pytest.raises(ValueError, match=r"shape \(4,\); expected \(5,\).*open_partner"):
        env.step(np.ones(4, dtype=np.float32))
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no checker warning either
        check_env(SingleAgentMarketEnv("energy_small", kind="solar", opponents="truthful", partner_action=True,
                                       episode_steps=6), skip_render_check=True)


def _linked(core, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether agents a[i] and b[i] share an open channel."""
    st = core.state
    u, v, is_open = np.asarray(st.u), np.asarray(st.v), np.asarray(st.open, dtype=bool)
    pairs = set(zip(u[is_open].tolist(), v[is_open].tolist()))
    return np.array([(x, y) in pairs or (y, x) in pairs for x, y in zip(a.tolist(), b.tolist())])


def test_ippo_five_wide_saves_loads_and_refuses_a_four_wide_market(tmp_path):
    m = train(tiny(), tmp_path)
    assert m["global_step"] == 48
    model = torch.load(tmp_path / "ippo_model.pt", weights_only=True)
    assert model["act_dim"] == 5 and model["action_fields"] == list(FIVE)
    pol = load_ippo(tmp_path / "ippo_model.pt")
    assert pol.act_dim == 5
    res = run_episode(MarketCore("energy_small", partner_action=True),
                      {"consumer": pol, "all": make("risk_factor")}, seed=4, max_steps=4)
    assert res.n_steps == 4 and np.isfinite(res.rewards).all()
    core = MarketCore("energy_small", partner_action=True)
    core.reset(seed=0)
    pol.bind(core, np.arange(core.n_agents))
    assert pol.act(core.observe()).shape == (core.n_agents, 5)
    four = MarketCore("energy_small")
    with pytest.raises(ValueError, match="acts with 5 action columns.*takes 4.*partner_action: true"):
        pol.bind(four, np.arange(four.n_agents))
    with pytest.raises(ValueError, match="acts with 5 action columns.*partner_action: true"):
        run_episode(four, {"all": pol}, seed=0, max_steps=1)
    # resuming the run without partner_action is refused with the widths, before anything is loaded
    with pytest.raises(ValueError, match="actor acts with 5 action columns.*takes 4"):
        IPPOTrainer(tiny(partner_action=False), tmp_path, resume=True)


def test_four_wide_ippo_model_acts_in_a_partner_market_with_open_partner_zero(tmp_path):
    train(tiny(partner_action=False, total_steps=24, checkpoint_every=0), tmp_path)
    pol = load_ippo(tmp_path)
    assert pol.act_dim == 4
    # padded with open_partner 0 (nobody asks): the same market as without the column, bit for bit
    five = run_episode(MarketCore("energy_small", partner_action=True), {"all": pol}, seed=2, max_steps=6)
    four = run_episode(MarketCore("energy_small"), {"all": pol}, seed=2, max_steps=6)
    np.testing.assert_array_equal(five.rewards, four.rewards)
    bad = dict(torch.load(tmp_path / "ippo_model.pt", weights_only=True), act_dim=6)
    with pytest.raises(ValueError, match="action width 6"):
        IPPOPolicy(bad)


# ---- SB3: the pickle-free zip loader, model.json ----------------------------------------------------

def test_sb3_five_wide_zip_round_trip_and_manifest(tmp_path):
    from stable_baselines3 import PPO

    from channelmarket.policies.learned import LearnedPolicy, load, write_meta
    from channelmarket.policies.sb3_zip import build_policy

    venv = MarketVecEnv("energy_small", learner_share=0.5, background="truthful", seed=0, partner_action=True)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, seed=0, device="cpu")
    model.save(tmp_path / "model.zip")
    policy, algo = build_policy(tmp_path / "model.zip")
    assert algo == "ppo" and policy.action_space.shape == (5,)
    obs = venv.reset()
    ref, _ = model.policy.predict(obs, deterministic=True)
    got, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(ref, got)          # same network, rebuilt without unpickling
    core = MarketCore("energy_small", partner_action=True)
    schema = core.obs_schema
    write_meta(tmp_path / "model.zip", {"algo": "ppo", "act_dim": 5, "members": [{"file": "model.zip"}]},
               schema=schema)
    pol = load(tmp_path)
    assert isinstance(pol, LearnedPolicy) and pol.act_dim == 5
    core.reset(seed=1)
    pol.bind(core, np.arange(core.n_agents))
    assert pol.act(core.observe()).shape == (core.n_agents, 5)
    with pytest.raises(ValueError, match="acts with 5 action columns.*partner_action: true"):
        pol.bind(MarketCore("energy_small"), np.arange(10))
    meta = json.loads((tmp_path / "model.json").read_text())
    write_meta(tmp_path / "model.zip", dict(meta, act_dim=4))
    with pytest.raises(ValueError, match="act_dim = 4 but members\\[0\\] network acts with 5"):
        load(tmp_path)


def test_train_config_partner_action_flag(tmp_path):
    from channelmarket.training.cli import build_parser, resolve_config
    from channelmarket.training.config import TrainConfig, ippo_config, training_scenario

    cfg, _ = resolve_config(build_parser().parse_args(["--scenario", "energy_small", "--partner-action", "on"]))
    assert cfg.partner_action is True and training_scenario(cfg).partner_action is True
    assert ippo_config(cfg.replace(algo="ippo"))[0].partner_action is True
    assert training_scenario(TrainConfig(scenario="energy_small")).partner_action is False
    with pytest.raises(ValueError, match="config.partner_action = 'yes'"):
        TrainConfig(partner_action="yes")
    with pytest.raises(ValueError, match="IPPOConfig.partner_action = 1"):
        IPPOConfig(partner_action=1)


def test_rllib_export_width_is_checked(tmp_path):
    import io

    from channelmarket.eval.rllib_policy import EXPORT_FORMAT, RLlibPolicy

    core = MarketCore("energy_small", partner_action=True)
    rng = np.random.default_rng(0)
    arrays = {"m/w": rng.normal(size=(10, core.obs_dim)).astype(np.float32), "m/b": np.zeros(10, np.float32)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / "rllib_policy.npz").write_bytes(buf.getvalue())
    meta = {"format": EXPORT_FORMAT, "version": 1, "weights": "rllib_policy.npz", "act_dim": 5,
            "obs_schema": core.obs_schema.to_dict(), "routing": {"solar": "m"},
            "modules": {"m": {"layers": [{"weight": "m/w", "bias": "m/b", "activation": None}]}}}
    (tmp_path / "rllib_policy.json").write_text(json.dumps(meta))
    pol = RLlibPolicy(tmp_path)
    obs = core.reset(seed=0)
    pol.bind(core, np.arange(core.n_agents), seed=0)
    assert pol.act(obs).shape == (core.n_agents, 5)
    with pytest.raises(ValueError, match="acts with 5 action columns.*partner_action: true"):
        pol.bind(MarketCore("energy_small"), np.arange(3))
    (tmp_path / "rllib_policy.json").write_text(json.dumps(dict(meta, act_dim=7)))
    with pytest.raises(ValueError, match="action width 7"):
        RLlibPolicy(tmp_path)
