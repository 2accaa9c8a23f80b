"""The training base both trainers share: markets/learners/background (`training.markets`), the
metrics writer (`training.metrics`), policy specs (`training.policy_specs`) and the one config."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.scenario import get_scenario
from channelmarket.envs.settlement import BREAKDOWN_FIELDS
from channelmarket.envs.state import KIND_ALIASES, KIND_NAMES
from channelmarket.policies.base import Policy
from channelmarket.training import policy_specs
from channelmarket.training.config import IPPO_FIELD_MAP, SB3_ONLY, IPPOSettings, TrainConfig, ippo_config
from channelmarket.training.markets import Markets, draw_agents, scenario_kinds
from channelmarket.training.metrics import MarketMetrics, agent_groups

SMALL = "energy_small"


def _info(n: int, volume: float, trades: float = 0.0) -> dict:
    summary = {k: 0.0 for k in ("ref_price", "volume", "supply", "demand", "trades", "negotiations", "failed_payments",
                                "partial_payments", "active_channels", "unserved", "curtailed", "grid_bought",
                                "grid_sold", "welfare", "clearing_price")}
    summary.update(volume=volume, trades=trades, clearing_price=80.0, shock="NONE")
    return {"summary": summary, "breakdown": np.zeros((n, len(BREAKDOWN_FIELDS)))}


def test_missing_values_are_left_out_not_nan():
    """Regression: the SB3 adapter wrote market/clearing_price = NaN for a window without volume,
    the IPPO trainer left the tag out; both now leave it out (and nothing is ever NaN)."""
    kind = scenario_kinds(get_scenario(SMALL))
    m = MarketMetrics()
    m.record(_info(kind.size, volume=0.0), agent_groups(kind, np.zeros(kind.size, bool)))
    out = m.pop(96)
    assert "market/clearing_price" not in out
    assert all(math.isfinite(v) for v in out.values())
    assert not any(k.endswith("/learner") for k in out)          # no learner in the window: no tag
    assert all(f"profit/{k}/baseline" in out for k in KIND_NAMES if (kind == KIND_NAMES.index(k)).any())
    assert m.pop(96) == {}


def test_per_kind_tags_follow_the_kind_registry():
    kind = scenario_kinds(get_scenario(SMALL))
    m = MarketMetrics()
    info = _info(kind.size, volume=2.0, trades=3.0)
    info["breakdown"][:, BREAKDOWN_FIELDS.index("bought")] = 1.0
    info["breakdown"][:, BREAKDOWN_FIELDS.index("sold")] = 1.0
    m.record(info, agent_groups(kind, np.ones(kind.size, bool)))
    out = m.pop(96)
    assert out["market/clearing_price"] == 80.0
    for k in KIND_NAMES:
        if not (kind == KIND_NAMES.index(k)).any():
            continue
        assert (f"cost_per_mwh/{k}/learner" in out) == (k in KIND_ALIASES["buyers"])
        assert (f"revenue_per_mwh/{k}/learner" in out) == (k in KIND_ALIASES["sellers"])


def test_both_routes_write_the_same_tags():
    """MarketVecEnv (SB3) and the IPPO markets record through one MarketMetrics: same tag set."""
    pytest.importorskip("stable_baselines3")
    from channelmarket.training.vec_env import MarketVecEnv

    sc = get_scenario(SMALL)
    v = MarketVecEnv(sc, learners="all", learner_share=0.5, background="truthful", n_markets=1, seed=0)
    v.reset()
    mk = Markets(sc, learners="all", learner_share=0.5, background="truthful", seed=0, learner_draw="random")
    for market in mk:
        mk.reset(market)
    for _ in range(5):
        v.step(np.zeros((v.num_envs, 4), dtype=np.float32))
        mk.step(mk[0], np.zeros((mk[0].learn_idx.size, 4)))
    a, b = v.pop_metrics(), mk.metrics.pop(sc.episode_steps)
    ratios = ("cost_per_mwh/", "revenue_per_mwh/", "market/clearing_price")   # present when their data is
    assert {k for k in a if not k.startswith(ratios)} == {k for k in b if not k.startswith(ratios)}
    assert all(math.isfinite(x) for x in (*a.values(), *b.values()))


@settings(max_examples=25, deadline=None)
@given(share=st.floats(0.05, 1.0), seed=st.integers(0, 2**32 - 1))
def test_random_draw_takes_a_fixed_count_of_each_kind(share, seed):
    kind = scenario_kinds(get_scenario(SMALL))
    eligible = np.isin(kind, [0, 1])
    mask = draw_agents(kind, eligible, share, np.random.default_rng(seed))
    assert not (mask & ~eligible).any()
    for k in (0, 1):
        count = int((kind == k).sum())
        assert int((mask & (kind == k)).sum()) == max(int(np.rint(share * count)), 1 if count else 0)


def test_markets_seed_and_number_episodes():
    sc = get_scenario(SMALL)
    a = Markets(sc, n_markets=2, learners="sellers", learner_share=0.5, background="truthful", seed=3,
                learner_draw="random")
    b = Markets(sc, n_markets=2, learners="sellers", learner_share=0.5, background="truthful", seed=3,
                learner_draw="random")
    for x in (a, b):
        for mk in x:
            x.reset(mk)
    assert [mk.episode for mk in a] == [1, 1]
    assert np.array_equal(a[0].learn_idx, b[0].learn_idx) and np.array_equal(a[0].obs, b[0].obs)
    assert not np.array_equal(a[0].obs, a[1].obs)                 # markets differ
    spread = Markets(sc, learners="sellers", learner_share=0.5, background="truthful", seed=3)
    spread.reset(spread[0])
    first = spread[0].learn_idx.copy()
    spread.reset(spread[0])
    assert np.array_equal(first, spread[0].learn_idx)             # "spread": the same agents every episode
    with pytest.raises(ValueError, match="background is None.*learner_share=0.5.*learners all, learner_share 1"):
        m = Markets(sc, learners="sellers", learner_share=0.5, background="none", learner_draw="random")
        m.reset(m[0])
    with pytest.raises(ValueError, match="learner_draw"):
        Markets(sc, learner_draw="sometimes")


def test_policy_specs_resolve_names_none_and_models(tmp_path):
    assert policy_specs.resolve("none") is None and policy_specs.resolve(None) is None
    assert isinstance(policy_specs.resolve("truthful"), Policy)
    with pytest.raises(ValueError, match="unknown background policy"):
        policy_specs.check_spec("nonesuch", "config.background")
    assert not policy_specs.is_model_path(tmp_path)              # a folder without a model
    (tmp_path / "ippo_model.pt").write_bytes(b"x")
    assert policy_specs.is_model_path(tmp_path)
    policy_specs.check_spec(str(tmp_path))


# ---- the one config ------------------------------------------------------------------------------

def test_every_train_field_is_mapped_for_ippo_and_every_ippo_field_is_set():
    """Regression: `to_ippo_config` dropped fields silently (reward_scale, the IPPO-only knobs)."""
    pytest.importorskip("torch")
    from channelmarket.training.ippo_config import IPPOConfig

    assert set(IPPO_FIELD_MAP) == {f.name for f in dataclasses.fields(TrainConfig)}
    settings_ = IPPOSettings(torch_threads=0, log_every=5100, update_samples=7, anneal_lr=False, clip_vloss=False,
                             target_kl=0.05, activation="relu", clip_reward=3.0)
    cfg = TrainConfig(algo="ippo", total_steps=51_000, learners="all", learner_share=0.5, ippo=settings_,
                      learning_rate=1e-3, n_steps=12, batch_size=64, n_epochs=2, clip_range=0.1, net_arch=[8])
    icfg, per_market = ippo_config(cfg)
    assert per_market == 51 and icfg.total_steps == 1000 and icfg.log_every == 100
    assert (icfg.torch_threads, icfg.update_samples, icfg.anneal_lr, icfg.clip_vloss, icfg.target_kl,
            icfg.activation, icfg.clip_reward) == (0, 7, False, False, 0.05, "relu", 3.0)
    assert (icfg.lr, icfg.rollout_steps, icfg.minibatch_size, icfg.epochs, icfg.clip_coef, icfg.hidden_sizes) == \
        (1e-3, 12, 64, 2, 0.1, (8,))
    assert not icfg.centralized_critic and ippo_config(cfg.replace(algo="mappo"))[0].centralized_critic
    for name in SB3_ONLY:
        assert IPPO_FIELD_MAP[name] is None
    with pytest.raises(ValueError, match="reward_scale.*SB3 algorithms only"):
        TrainConfig(algo="ippo", reward_scale="eur")
    with pytest.raises(ValueError, match="ippo.activation is used by algo ippo/mappo only"):
        TrainConfig(algo="ppo", ippo={"activation": "relu"})
    assert IPPOConfig(**{f.name: getattr(icfg, f.name) for f in dataclasses.fields(IPPOConfig)}) == icfg


def test_ippo_block_yaml_round_trip_and_old_configs(tmp_path):
    cfg = TrainConfig(algo="mappo", ippo={"torch_threads": 2, "target_kl": 0.1})
    p = tmp_path / "c.yaml"
    cfg.save(p)
    assert "ippo:" in p.read_text()
    again = TrainConfig.load(p)
    assert again == cfg and isinstance(again.ippo, IPPOSettings) and again.ippo.torch_threads == 2
    with pytest.raises(ValueError, match="ippo.torch_thread"):
        TrainConfig.from_dict({"algo": "ippo", "ippo": {"torch_thread": 1}})
    # a config.yaml written before the ippo block existed still loads
    old = {k: v for k, v in TrainConfig(algo="ippo").to_dict().items() if k != "ippo"}
    assert TrainConfig.from_dict(old).ippo == IPPOSettings()
    # an IPPOConfig's yaml (written by training.ippo.train) gets a one-line hint
    with pytest.raises(ValueError, match="IPPOConfig"):
        TrainConfig.from_dict({"lr": 1e-3, "rollout_steps": 96})
