"""TrainConfig: documented fields, YAML round trip, errors that name the key, flag precedence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from channelmarket.training.cli import build_parser, resolve_config
from channelmarket.training.config import TrainConfig, load_config


def test_every_field_has_a_docstring():
    docs = TrainConfig.field_help()
    assert set(docs) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(len(d) > 10 for d in docs.values())


def test_yaml_round_trip_and_errors(tmp_path: Path):
    cfg = TrainConfig(algo="sac", learners="sellers", net_arch=[32, 32], algo_kwargs={"ent_coef": "auto"})
    p = tmp_path / "c.yaml"
    cfg.save(p)
    assert TrainConfig.load(p) == cfg
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.from_dict({"learning_rat": 1e-3})
    with pytest.raises(ValueError, match="config.algo = 'dqn'"):
        TrainConfig(algo="dqn")
    with pytest.raises(ValueError, match="hydro"):
        TrainConfig(learners="solar,hydro")
    with pytest.raises(ValueError, match="total_steps"):
        TrainConfig(total_steps=0)
    assert load_config(p, seed=3, algo=None).seed == 3


def test_flags_override_file_and_resume_reads_the_run(tmp_path: Path):
    f = tmp_path / "f.yaml"
    f.write_text(yaml.safe_dump({"total_steps": 1000, "gamma": 0.9, "learners": "consumer"}))
    args = build_parser().parse_args(["--config", str(f), "--gamma", "0.8", "--shocks", "off", "--net-arch", "32,16",
                                      "--total-steps", "2e4", "--out", str(tmp_path / "run")])
    cfg, out = resolve_config(args)
    assert (cfg.total_steps, cfg.gamma, cfg.learners, cfg.shocks, cfg.net_arch) == (20_000, 0.8, "consumer", False, [32, 16])
    assert out == tmp_path / "run"
    (tmp_path / "run").mkdir()
    cfg.save(tmp_path / "run" / "config.yaml")
    cfg2, _ = resolve_config(build_parser().parse_args(["--out", str(tmp_path / "run"), "--resume", "--total-steps", "30000"]))
    assert (cfg2.gamma, cfg2.learners, cfg2.total_steps) == (0.8, "consumer", 30_000)


def test_ippo_mapping_counts_market_steps():
    pytest.importorskip("torch")
    try:
        from channelmarket.training.cli import to_ippo_config
        import channelmarket.training.ippo  # noqa: F401
    except ImportError:
        pytest.skip("training.ippo not available")
    icfg, per_market = to_ippo_config(TrainConfig(algo="mappo", total_steps=51_000, learners="all", learner_share=0.5))
    assert per_market == 51 and icfg.total_steps == 1000 and icfg.centralized_critic
