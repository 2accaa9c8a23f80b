"""A tiny training through the CLI: the loop, checkpoint and resume, TensorBoard files, the saved
model loading as a `Policy`, split roles, SAC, and the learned-vs-baseline table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("stable_baselines3")
pytest.importorskip("tensorboard")

from channelmarket.envs import get_scenario
from channelmarket.policies import Policy, make, run_episode
from channelmarket.policies.learned import LearnedPolicy, load
from channelmarket.training.callbacks import list_checkpoints
from channelmarket.training.cli import main as train_main

pytestmark = pytest.mark.slow


def tiny_scenario(tmp_path: Path, steps: int = 16) -> str:
    p = tmp_path / "tiny.yaml"
    get_scenario("energy_small", episode_steps=steps, name="tiny").save(p)
    return str(p)


def common(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    return ["--scenario", tiny_scenario(tmp_path), "--out", str(out), "--progress-bar", "off", "--n-markets", "1",
            "--n-steps", "16", "--batch-size", "48", "--n-epochs", "1", "--seed", "1", *extra]


def scalars(folder: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list] = {}
    for f in sorted(folder.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
    return out


def has_hparams(folder: Path) -> bool:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for f in folder.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(f))
        acc.Reload()
        if "_hparams_/session_start_info" in acc.PluginTagToContent("hparams"):
            return True
    return False


def test_train_checkpoint_resume_tensorboard_and_load(tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert train_main(common(tmp_path, out, "--total-steps", "300", "--checkpoint-every", "100")) == 0
    for name in ("config.yaml", "scenario.yaml", "model.zip", "model.json", "model_vecnormalize.npz", "metrics.json"):
        assert (out / name).exists(), name
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["total_steps"] == 300 and cfg["n_steps"] == 16 and cfg["algo"] == "ppo"
    ckpts = list_checkpoints(out / "checkpoints")
    assert len(ckpts) == 3          # keep_checkpoints = 3 of the 4 written (every 100 + the final one)
    first_steps = ckpts[-1][0]
    assert first_steps >= 300
    state = json.loads((out / "checkpoints" / f"ckpt_{first_steps}_state.json").read_text())
    assert state["num_timesteps"] == first_steps and state["episodes"][0] >= 1

    tags = scalars(out / "tb")
    for tag in ("market/clearing_price", "market/volume", "market/supply_demand_balance", "market/trades",
                "market/failed_payments", "market/active_channels", "market/unserved_energy", "market/shock_share",
                "profit/solar/learner", "profit/solar/baseline", "profit/consumer/learner",
                "cost_per_mwh/consumer/baseline", "rollout/ep_rew_mean", "train/value_loss", "final/ep_rew_mean"):
        assert tag in tags, tag
    assert (out / "tb" / "progress.csv").exists()
    assert has_hparams(out / "tb")

    # resume: continues from the checkpoint's step counter to the new total, in the same folder
    assert train_main(["--out", str(out), "--resume", "--total-steps", "500", "--progress-bar", "off"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["total_steps"] == 500
    steps_after = list_checkpoints(out / "checkpoints")[-1][0]
    assert first_steps < steps_after and steps_after >= 500
    assert max(scalars(out / "tb")["rollout/ep_rew_mean"]) > first_steps

    # without --resume the folder is not overwritten
    assert train_main(common(tmp_path, out, "--total-steps", "100")) == 2

    # the model is a Policy usable with rollouts, deterministic
    pol = load(out / "model.zip")
    assert isinstance(pol, Policy) and isinstance(pol, LearnedPolicy)
    assert load(out).meta["learners"] == ["solar", "wind", "storage", "consumer"]
    sc = get_scenario(tiny_scenario(tmp_path))
    solar = np.flatnonzero(np.repeat(np.arange(4), [sc.n_solar, sc.n_wind, sc.n_storage, sc.n_consumers]) == 0)
    rest = np.setdiff1d(np.arange(sc.n_agents), solar)
    r1 = run_episode(sc, [(pol, solar), (make("risk_factor"), rest)], seed=10_000)
    r2 = run_episode(sc, [(load(out / "model.zip"), solar), (make("risk_factor"), rest)], seed=10_000)
    np.testing.assert_array_equal(r1.totals["profit"], r2.totals["profit"])


def test_split_roles_and_comparison_table(tmp_path: Path):
    from channelmarket.training.evaluate import compare_to_baseline

    out = tmp_path / "split"
    assert train_main(common(tmp_path, out, "--roles", "split", "--role-phase-steps", "96", "--total-steps", "384",
                             "--checkpoint-every", "192")) == 0
    meta = json.loads((out / "model.json").read_text())
    assert [m["role"] for m in meta["members"]] == ["pricing", "bidding"]
    assert meta["members"][1]["kinds"] == ["consumer"]
    assert (out / "model_bidding.zip").exists() and (out / "model_bidding_vecnormalize.npz").exists()
    assert "market/volume" in scalars(out / "tb" / "pricing") and "market/volume" in scalars(out / "tb" / "bidding")
    pol = load(out)
    assert len(pol.members) == 2
    obs = np.zeros((4, 30), dtype=np.float32)
    obs[np.arange(4), np.arange(4)] = 1.0          # one agent of each kind
    assert pol.act(obs).shape == (4, 4)
    # resume continues the alternation
    assert train_main(["--out", str(out), "--resume", "--total-steps", "480", "--progress-bar", "off"]) == 0

    table = compare_to_baseline(out / "model.zip", tiny_scenario(tmp_path), seeds=[10_000, 10_001])
    text = str(table)
    assert "95% CI" in text and "risk_factor" in text
    assert {r.group for r in table.rows} >= {"sellers", "solar", "consumer"}
    row = table.row("consumer", "cost per MWh bought")
    assert row.n == 2 and row.ci_low <= row.diff <= row.ci_high
    assert np.isfinite(row.learned) and np.isfinite(row.baseline)


def test_sac_trains_and_loads(tmp_path: Path):
    cfg = tmp_path / "sac.yaml"
    cfg.write_text(yaml.safe_dump({"algo": "sac", "learning_starts": 48, "gradient_steps": 1, "buffer_size": 2000,
                                   "batch_size": 32, "learners": "sellers"}))
    out = tmp_path / "sac"
    assert train_main(["--config", str(cfg), "--scenario", tiny_scenario(tmp_path), "--out", str(out),
                       "--total-steps", "150", "--progress-bar", "off", "--n-markets", "1"]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["algo"] == "sac" and meta["members"][0]["kinds"] == ["solar", "wind", "storage"]
    pol = load(out / "model.zip")
    a = pol.act(np.zeros((3, 30), dtype=np.float32))
    assert a.shape == (3, 4) and np.all(np.abs(a) <= 1.0)
