"""BenchMARL: the shipped `TaskClass` (training/benchmarl_task.py) trains with IPPO and MAPPO (the
centralized critic reads the env's flat global state). BenchMARL pins an older torchrl than the main
environment, so this runs in its own environment: `make test-benchmarl` (skipped elsewhere)."""

from __future__ import annotations

import pytest

pytest.importorskip("benchmarl")

from benchmarl.algorithms import IppoConfig, MappoConfig  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from channelmarket.training.benchmarl_task import make_torchrl_env, market_task  # noqa: E402


def small_config(folder) -> ExperimentConfig:
    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_iters = 2
    cfg.max_n_frames = None
    cfg.on_policy_collected_frames_per_batch = 32
    cfg.on_policy_n_envs_per_worker = 2
    cfg.on_policy_minibatch_size = 16
    cfg.on_policy_n_minibatch_iters = 2
    cfg.evaluation = False
    cfg.render = False
    cfg.loggers = ["csv"]
    cfg.create_json = False
    cfg.checkpoint_at_end = False
    cfg.save_folder = str(folder)
    return cfg


def test_task_specs_group_by_kind_and_carry_the_state():
    task = market_task("energy_small", episode_steps=8, info_keys="trade")   # the seven breakdown fields
    env = task.get_env_fun(num_envs=1, continuous_actions=True, seed=0, device="cpu")()
    check_env_specs(env)
    assert set(task.group_map(env)) == {"solar", "wind", "storage", "consumer"}
    assert task.state_spec(env)["state"].shape[-1] == 66 and task.max_steps(env) == 8
    assert set(task.info_spec(env)["consumer", "info"].keys()) >= {"revenue", "cost", "shock"}
    assert make_torchrl_env({"scenario": "energy_small"}).group_map == env.group_map


@pytest.mark.parametrize("algorithm", [IppoConfig, MappoConfig], ids=["ippo", "mappo"])
def test_benchmarl_algorithm_runs(algorithm, tmp_path):
    exp = Experiment(task=market_task("energy_small", episode_steps=8), algorithm_config=algorithm.get_from_yaml(),
                     model_config=MlpConfig.get_from_yaml(), critic_model_config=MlpConfig.get_from_yaml(),
                     seed=0, config=small_config(tmp_path))
    exp.run()
    assert exp.n_iters_performed == 2
    assert exp.total_frames >= 64
