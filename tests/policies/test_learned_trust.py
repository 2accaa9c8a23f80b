"""Loading a learned policy never unpickles by default: an evil SB3 zip does not run its payload,
the eval CLI refuses it in one line (exit 2), and `--trust-model` is the explicit, warned opt-in."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")

from channelmarket.policies.learned import ObsNormalizer, UntrustedModelError, load


class _Payload:
    """Unpickling this touches a marker file (stands for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def bare_zip(tmp_path_factory) -> Path:
    from channelmarket.training.vec_env import MarketVecEnv

    env = MarketVecEnv("energy_small", n_markets=1, seed=0)
    model = sb3.PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0,
                    policy_kwargs=dict(net_arch=dict(pi=[16], vf=[16]), log_std_init=-0.5))
    path = tmp_path_factory.mktemp("m") / "model.zip"
    model.save(path)
    return path


def evil_copy(src: Path, dst: Path, marker: Path, key: str = "policy_class", fake_type: str | None = None) -> Path:
    """`src` with its data item `key` replaced by a pickled payload, as SB3's data_to_json writes it."""
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    data = json.loads(entries["data"])
    data[key] = {":type:": fake_type or str(_Payload), ":serialized:": base64.b64encode(pickle.dumps(_Payload(marker))).decode()}
    entries["data"] = json.dumps(data).encode()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    return dst


def test_safe_load_acts_like_sb3(bare_zip):
    with pytest.warns(UserWarning, match="without an observation schema"):   # a bare SB3 zip: standard layout
        pol = load(bare_zip)
    ref = sb3.PPO.load(bare_zip)
    x = np.random.default_rng(0).uniform(0, 1, (32, 30)).astype(np.float32)
    want = np.clip(ref.policy.predict(x, deterministic=True)[0], -1, 1)
    np.testing.assert_array_equal(pol.act(x), want)


def test_evil_zip_refused_and_never_run(bare_zip, tmp_path):
    marker = tmp_path / "pwned"
    evil = evil_copy(bare_zip, tmp_path / "evil" / "model.zip", marker)
    with pytest.raises(UntrustedModelError, match="trust"):
        load(evil)
    assert not marker.exists()


def test_payload_under_a_faked_type_stays_inert(bare_zip, tmp_path):
    """The reader never decodes pickled items: a payload disguised as SB3's own type is ignored."""
    marker = tmp_path / "pwned"
    evil = evil_copy(bare_zip, tmp_path / "evil2" / "model.zip", marker, fake_type="<class 'abc.ABCMeta'>")
    with pytest.warns(UserWarning, match="without an observation schema"):
        pol = load(evil)
    x = np.zeros((3, 30), dtype=np.float32)
    assert pol.act(x).shape == (3, 4)
    assert not marker.exists()


def test_eval_cli_refuses_evil_zip_in_one_line_and_trust_warns(bare_zip, tmp_path, capsys):
    from channelmarket.eval.cli import main as eval_main

    marker = tmp_path / "pwned"
    evil = evil_copy(bare_zip, tmp_path / "evil" / "model.zip", marker)
    argv = ["--scenario", "energy_small", "--seeds", "0", "--policies", str(evil), "--out", str(tmp_path / "res"),
            "--workers", "1", "--optimum", "off", "--equilibrium", "off", "--no-plots", "--no-progress"]
    assert eval_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--trust-model" in err
    assert not marker.exists()
    with pytest.warns(UserWarning, match="with trust"):
        code = eval_main(argv + ["--trust-model"])
    assert marker.exists()          # the opt-in does what it says: SB3 unpickles (and here fails to load)
    assert code == 2
    os.environ.pop("CHANNELMARKET_TRUSTED_MODELS", None)


def test_pickled_statistics_need_trust(tmp_path):
    marker = tmp_path / "pwned"
    pkl = tmp_path / "vecnormalize.pkl"
    pkl.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UntrustedModelError, match="trust"):
        ObsNormalizer.load(pkl)
    assert not marker.exists()


def test_statistics_npz_round_trip_and_validation(tmp_path):
    n = ObsNormalizer(np.arange(30.0), np.ones(30), 5.0, 1e-8)
    p = n.save(tmp_path / "s.npz")
    m = ObsNormalizer.load(p)
    np.testing.assert_array_equal(m.mean, n.mean)
    assert m.clip == 5.0
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.full(30, np.nan), var=np.ones(30), clip=5.0, epsilon=1e-8)
    with pytest.raises(ValueError, match="mean"):
        ObsNormalizer.load(bad)
    obj = tmp_path / "obj.npz"
    np.savez(obj, mean=np.array([{"a": 1}], dtype=object), var=np.ones(30), clip=5.0, epsilon=1e-8)
    with pytest.raises(ValueError):
        ObsNormalizer.load(obj)


def test_safe_load_of_a_model_of_a_wider_market(tmp_path):
    """A market with more kinds has more observation columns (energy_ev: 31): the pickle-free loader
    rebuilds the network at the zip's own width instead of the standard 30 columns."""
    from channelmarket.training.vec_env import MarketVecEnv

    env = MarketVecEnv("energy_ev", n_markets=1, seed=0)
    width = env.observation_space.shape[0]
    assert width > 30
    model = sb3.PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0,
                    policy_kwargs=dict(net_arch=dict(pi=[8], vf=[8])))
    path = tmp_path / "model.zip"
    model.save(path)
    with pytest.warns(UserWarning, match="without an observation schema"):
        pol = load(path)
    x = np.random.default_rng(1).uniform(0, 1, (5, width)).astype(np.float32)
    want = np.clip(sb3.PPO.load(path).policy.predict(x, deterministic=True)[0], -1, 1)
    np.testing.assert_array_equal(pol.act(x), want)
