"""SB3 PPO resume is exact: stopped at a checkpoint and resumed, a run reaches the same parameters
bit for bit as an uninterrupted one, keeps its progress.csv rows, and skips a damaged newest
checkpoint (falling back to the previous one, saying so)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

from channelmarket.envs import get_scenario
from channelmarket.training.checkpoints import list_checkpoints
from channelmarket.training.config import TrainConfig
from channelmarket.training.sb3_train import train

pytestmark = pytest.mark.slow

ROLLOUT = 7 * 16   # energy_small, share 0.5: 7 learners x n_steps 16 (one episode of 16 steps)


def config(tmp_path: Path, total: int, **kw) -> TrainConfig:
    sc = tmp_path / "tiny.yaml"
    if not sc.exists():
        get_scenario("energy_small", episode_steps=16, name="tiny", shock_rate=0.05).save(sc)
    base = dict(scenario=str(sc), n_markets=1, n_steps=16, batch_size=48, n_epochs=2, seed=3, progress_bar=False,
                checkpoint_every=ROLLOUT, keep_checkpoints=3, total_steps=total)
    base.update(kw)
    return TrainConfig(**base)


def params(run: Path) -> dict:
    with zipfile.ZipFile(run / "model.zip") as z:
        return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)


def max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def rows(run: Path) -> list[dict]:
    with open(run / "tb" / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("a")
    train(config(tmp, 5 * ROLLOUT), tmp / "run")
    return tmp / "run"


def test_stop_and_resume_is_bit_identical(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    train(config(tmp_path, 2 * ROLLOUT), out)
    train(config(tmp_path, 5 * ROLLOUT), out, resume=True)
    assert "resuming" in capsys.readouterr().out
    assert max_diff(params(uninterrupted), params(out)) == 0.0
    # progress.csv kept the rows before the resume and continued it
    steps = [int(r["time/total_timesteps"]) for r in rows(out) if r.get("time/total_timesteps")]
    assert steps[:2] == [ROLLOUT, 2 * ROLLOUT] and steps[-1] == 5 * ROLLOUT
    want = {int(r["time/total_timesteps"]): r["train/loss"] for r in rows(uninterrupted) if r.get("train/loss") and r.get("time/total_timesteps")}
    got = {int(r["time/total_timesteps"]): r["train/loss"] for r in rows(out) if r.get("train/loss") and r.get("time/total_timesteps")}
    assert got == want


def test_damaged_newest_checkpoint_falls_back_to_previous(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    train(config(tmp_path, 3 * ROLLOUT), out)
    found = list_checkpoints(out / "checkpoints")
    assert [s for s, _ in found] == [ROLLOUT, 2 * ROLLOUT, 3 * ROLLOUT]
    newest = out / "checkpoints" / f"ckpt_{3 * ROLLOUT}_model.pt"
    newest.write_bytes(newest.read_bytes()[:100])                      # a torn write
    (out / "checkpoints" / f"ckpt_{2 * ROLLOUT}_state.npz").write_bytes(b"")  # a 0-byte file
    with pytest.warns(RuntimeWarning, match="skipped damaged checkpoint"):
        train(config(tmp_path, 5 * ROLLOUT), out, resume=True)
    text = capsys.readouterr().out
    assert f"resuming from ckpt_{ROLLOUT}" in text and f"ckpt_{3 * ROLLOUT}" in text
    assert max_diff(params(uninterrupted), params(out)) == 0.0


def test_resume_with_another_action_width_is_refused_and_keeps_the_run(tmp_path):
    """`--resume --partner-action on` over a 4-wide run: a ValueError naming the tensor and the widths,
    raised before anything is loaded (it was torch's size-mismatch RuntimeError), and the run's
    config.yaml and scenario.yaml stay as they were, so a plain --resume still continues it."""
    out = tmp_path / "run"
    train(config(tmp_path, ROLLOUT), out)
    before = [(out / f).read_bytes() for f in ("config.yaml", "scenario.yaml")]
    with pytest.raises(ValueError, match=r"does not fit this config's model: .*\(4,?.*\) there, \(5,?.*\) here "
                                         r"\(this config acts with 5 action columns\).*partner_action"):
        train(config(tmp_path, 2 * ROLLOUT, partner_action=True), out, resume=True)
    assert [(out / f).read_bytes() for f in ("config.yaml", "scenario.yaml")] == before
    train(config(tmp_path, 2 * ROLLOUT), out, resume=True)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")][-1] == 2 * ROLLOUT


def test_checkpoint_files_hold_no_pickle(tmp_path):
    out = tmp_path / "run"
    train(config(tmp_path, 2 * ROLLOUT), out)
    ck = out / "checkpoints"
    for f in ck.glob("*_model.pt"):
        torch.load(f, weights_only=True)
    for f in ck.glob("*.npz"):
        with np.load(f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    for f in ck.glob("*.json"):
        json.loads(f.read_text())
    assert not list(out.rglob("*.pkl"))


def test_split_roles_resume_is_bit_identical(tmp_path):
    kw = dict(roles="split", role_phase_steps=16 * 4, checkpoint_every=16 * 4)
    full, cut = tmp_path / "full", tmp_path / "cut"
    train(config(tmp_path, 16 * 4 * 4, **kw), full)
    train(config(tmp_path, 16 * 4 * 2, **kw), cut)
    train(config(tmp_path, 16 * 4 * 4, **kw), cut, resume=True)
    assert max_diff(params(full), params(cut)) == 0.0
    with zipfile.ZipFile(full / "model_bidding.zip") as a, zipfile.ZipFile(cut / "model_bidding.zip") as b:
        pa = torch.load(io.BytesIO(a.read("policy.pth")), weights_only=True)
        pb = torch.load(io.BytesIO(b.read("policy.pth")), weights_only=True)
    assert max_diff(pa, pb) == 0.0


def test_mid_episode_checkpoint_resumes_on_fresh_episodes_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    kw = dict(n_steps=12, checkpoint_every=7 * 12)     # rollouts of 12 steps in episodes of 16
    train(config(tmp_path, 7 * 12 * 2, **kw), out)
    train(config(tmp_path, 7 * 12 * 4, **kw), out, resume=True)
    text = capsys.readouterr().out
    assert "mid-episode" in text and "not bit-identical" in text
    assert (out / "model.zip").exists()
