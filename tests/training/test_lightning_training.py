"""The trainers and the evaluation run on the sound Lightning market (issue 10): a tiny SB3 PPO run
through the CLI, a tiny IPPO run, the learned-vs-baseline table and `channelmarket eval` on a small
`energy_lightning` (value of lost load, spend-sized channels, routing, energy accounts), with
shocks so unserved energy is priced; observations stay in their box and rewards stay finite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")

from channelmarket.envs import get_scenario  # noqa: E402
from channelmarket.envs.core import MarketCore  # noqa: E402
from channelmarket.envs.scenario import SOUND_MARKET  # noqa: E402
from channelmarket.eval.cli import main as eval_main  # noqa: E402
from channelmarket.policies.learned import load  # noqa: E402
from channelmarket.training.cli import main as train_main  # noqa: E402
from channelmarket.training.evaluate import compare_to_baseline  # noqa: E402
from channelmarket.training.ippo import IPPOConfig, train as ippo_train  # noqa: E402

pytestmark = pytest.mark.slow


def small_lightning(tmp_path: Path) -> str:
    """energy_lightning at 24 agents and 16 steps, with a demand surge every episode (lost load)."""
    p = tmp_path / "lightning_small.yaml"
    sc = get_scenario("energy_lightning", n_agents=24, episode_steps=16, name="lightning_small",
                      shock_schedule=((4, "DEMAND_SURGE", 6),))
    assert all(getattr(sc, k) == v for k, v in SOUND_MARKET.items())
    sc.save(p)
    return str(p)


def test_observations_and_rewards_stay_bounded_on_the_sound_market(tmp_path):
    core = MarketCore(small_lightning(tmp_path))
    rng = np.random.default_rng(0)
    for seed in range(2):
        obs = core.reset(seed=seed)
        for _ in range(core.scenario.episode_steps):
            assert np.all((obs >= core.obs_low) & (obs <= core.obs_high))
            obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
            assert np.isfinite(rew).all()
    assert core.summary()["lost_load"] >= 0.0


def test_ppo_trains_and_the_table_is_measured_on_the_sound_market(tmp_path):
    sc, out = small_lightning(tmp_path), tmp_path / "ppo"
    assert train_main(["--scenario", sc, "--out", str(out), "--progress-bar", "off", "--n-markets", "1",
                       "--n-steps", "16", "--batch-size", "48", "--n-epochs", "1", "--seed", "1",
                       "--total-steps", "192", "--checkpoint-every", "96"]) == 0
    table = compare_to_baseline(out / "model.zip", sc, seeds=[10_000, 10_001])
    assert {r.group for r in table.rows} >= {"sellers", "consumer"}
    for r in table.rows:
        assert r.n == 2 and np.isfinite(r.diff) and r.ci_low <= r.diff <= r.ci_high


def test_ippo_trains_and_channelmarket_eval_runs_it_on_the_sound_market(tmp_path):
    sc = small_lightning(tmp_path)
    cfg = IPPOConfig(scenario=sc, total_steps=64, n_markets=2, rollout_steps=16, learners="all",
                     background="risk_factor", checkpoint_every=0, progress=False, minibatch_size=128)
    ippo_train(cfg, tmp_path / "ippo")
    model = next((tmp_path / "ippo").glob("ippo_model.pt"))
    pol = load(model)
    assert pol.act(np.zeros((3, MarketCore(sc).obs_dim), np.float32)).shape == (3, 4)
    out = tmp_path / "eval"
    assert eval_main(["--scenario", sc, "--seeds", "0-1", "--no-progress", "--workers", "1", "--policies",
                      f"{model},risk_factor", "--optimum", "on", "--no-plots", "--no-parquet", "--trust-model",
                      "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["populations"]) == 2
    assert (out / "report.md").read_text().strip()
