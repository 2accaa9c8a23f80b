"""IPPO/MAPPO checkpoints: no pickles, sealed by a manifest, and a resumed run that reaches the
uninterrupted run's parameters bit for bit (learning-rate annealing on, markets mid-episode)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorboard")

from channelmarket.training.checkpoints import verify  # noqa: E402
from channelmarket.training.ippo import (  # noqa: E402
    IPPOConfig,
    IPPOTrainer,
    latest_checkpoint,
    list_checkpoints,
    load_ippo,
    train,
)


def tiny(**kw) -> IPPOConfig:
    # rollouts of 20 steps against 96-step episodes: every checkpoint falls mid-episode
    base = dict(scenario="energy_small", total_steps=200, n_markets=2, rollout_steps=20, learners="sellers",
                learner_share=0.5, background="risk_factor", checkpoint_every=80, progress=False,
                minibatch_size=128, epochs=2)
    base.update(kw)
    return IPPOConfig(**base)


def final_tensors(run: Path) -> dict:
    man = latest_checkpoint(run)
    return torch.load(str(man).replace(".manifest.json", ".pt"), weights_only=True)


def assert_same_params(a: Path, b: Path) -> None:
    ta, tb = final_tensors(a), final_tensors(b)
    for part in ("actor", "critic"):
        for k in ta[part]:
            assert torch.equal(ta[part][k], tb[part][k]), (part, k, (ta[part][k] - tb[part][k]).abs().max())
    for k, st in ta["optimizer"]["state"].items():
        for name, v in st.items():
            assert torch.equal(v, tb["optimizer"]["state"][k][name]), (k, name)
    ma = torch.load(a / "ippo_model.pt", weights_only=True)
    mb = torch.load(b / "ippo_model.pt", weights_only=True)
    assert ma["obs_rms"] == mb["obs_rms"] and ma["global_step"] == mb["global_step"]


def loss_steps(run: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run), size_guidance={"scalars": 0})
    ea.Reload()
    return {t: [e.step for e in ea.Scalars(t)] for t in ea.Tags()["scalars"] if not t.startswith("charts/agent_steps_per")
            and not t.startswith("charts/market_steps_per")}


@pytest.mark.parametrize("centralized", [False, True], ids=["ippo", "mappo"])
def test_stop_and_resume_is_bit_exact_with_annealing(tmp_path, centralized):
    """Regression (issue 8, item 5): stopping at a checkpoint mid-episode and resuming with the same
    total reaches the uninterrupted run's actor, critic, optimizer and normalisers bit for bit, with
    the default learning-rate annealing; TensorBoard keeps every pre-resume point, once."""
    cfg = tiny(centralized_critic=centralized)
    assert cfg.anneal_lr
    train(cfg, tmp_path / "a")
    m = train(cfg, tmp_path / "b", stop_at=80)
    assert m["stopped"] and m["global_step"] == 80 and not (tmp_path / "b" / "ippo_model.pt").exists()
    m = train(cfg, tmp_path / "b", resume=True)
    assert m["resumed_from"].endswith("ckpt_80.manifest.json") and m["global_step"] == 200
    assert_same_params(tmp_path / "a", tmp_path / "b")
    sa, sb = loss_steps(tmp_path / "a"), loss_steps(tmp_path / "b")
    assert sa == sb and sa["losses/policy_loss"] == [40, 80, 120, 160, 200]


def test_checkpoint_files_hold_no_pickle(tmp_path):
    train(tiny(total_steps=80), tmp_path)
    man = latest_checkpoint(tmp_path)
    ck, why = verify(man)
    assert ck is not None, why
    assert sorted(ck.files) == ["ckpt_80.json", "ckpt_80.npz", "ckpt_80.pt"]
    doc = json.loads(ck.path("ckpt_80.json").read_text())
    assert doc["global_step"] == 80 and doc["markets"] is not None
    with np.load(ck.path("ckpt_80.npz"), allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    tensors = torch.load(ck.path("ckpt_80.pt"), weights_only=True)
    assert set(tensors) == {"actor", "critic", "optimizer", "torch_rng"}
    model = torch.load(tmp_path / "ippo_model.pt", weights_only=True)   # the model too
    assert model["format"] == "channelmarket.ippo"


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path):
    """A newest checkpoint damaged by a crash (truncated file) is skipped with a warning; the run
    resumes from the one before and still ends where the uninterrupted run does."""
    cfg = tiny(keep_checkpoints=0)
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b", stop_at=160)
    pt = tmp_path / "b" / "checkpoints" / "ckpt_160.pt"
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=r"skipped damaged checkpoint\(s\) ckpt_160.*resuming from ckpt_80"):
        m = train(cfg, tmp_path / "b", resume=True)
    assert m["resumed_from"].endswith("ckpt_80.manifest.json")
    assert_same_params(tmp_path / "a", tmp_path / "b")


class _Payload:
    """Unpickling this runs code: it would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_model_file_that_needs_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    bomb = tmp_path / "evil" / "ippo_model.pt"
    bomb.parent.mkdir()
    torch.save({"format": "channelmarket.ippo", "actor": _Payload(marker)}, bomb)
    with pytest.raises(ValueError, match="not a safe IPPO model file"):
        load_ippo(bomb)
    with pytest.raises(ValueError, match="not a safe IPPO model file"):
        load_ippo(bomb.parent)
    assert not marker.exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a safe IPPO model file"):
        load_ippo(junk)


def test_a_checkpoint_that_needs_pickle_is_refused(tmp_path):
    """Even with a manifest that matches (anyone can recompute one), a checkpoint whose tensors file
    needs pickle is refused before anything runs or changes."""
    from channelmarket.training.checkpoints import write_manifest

    cfg = tiny(total_steps=80)
    train(cfg, tmp_path)
    d = tmp_path / "checkpoints"
    marker = tmp_path / "pwned"
    torch.save({"actor": _Payload(marker)}, d / "ckpt_80.pt")
    write_manifest(d, "ckpt", 80, [d / "ckpt_80.pt", d / "ckpt_80.npz", d / "ckpt_80.json"])
    with pytest.raises(ValueError, match="cannot be read"):
        IPPOTrainer(cfg, tmp_path, resume=True)
    assert not marker.exists()


def test_checkpoint_names_and_pruning(tmp_path):
    train(tiny(total_steps=200, checkpoint_every=40, keep_checkpoints=2), tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_160.manifest.json", "ckpt_200.manifest.json"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.suffix != ".json" or "manifest" not in p.name) \
        == ["ckpt_160.json", "ckpt_160.npz", "ckpt_160.pt", "ckpt_200.json", "ckpt_200.npz", "ckpt_200.pt"]
    with zipfile.ZipFile(tmp_path / "checkpoints" / "ckpt_200.npz") as z:   # plain .npy members
        assert all(n.endswith(".npy") for n in z.namelist())
