"""RLlib: the policy mapping from the env's kinds, the config and CLI checks, the plain export that
`channelmarket eval` loads without Ray, and (slow) one 2-runner PPO iteration through the CLI whose
checkpoint is restored by `--resume`."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from channelmarket.envs import channel_market_v0
from channelmarket.eval.rllib_policy import EXPORT_FORMAT, RLlibPolicy, export_path
from channelmarket.training.rllib_config import RLlibConfig
from channelmarket.training.rllib_env import PolicyMapping, policy_map

EC = {"scenario": "energy_small", "episode_steps": 8}


# ---- policy mapping: read from env.agent_kinds ----------------------------------------------------

def test_policy_map_follows_the_envs_agent_kinds():
    kinds = channel_market_v0.parallel_env(**EC).agent_kinds
    assert policy_map(EC, "kind") == kinds
    assert set(policy_map(EC, "shared").values()) == {"shared"}
    roles = policy_map(EC, "role")
    assert {a for a, r in roles.items() if r == "bidding"} == {a for a, k in kinds.items() if k == "consumer"}
    assert {kinds[a] for a, r in roles.items() if r == "pricing"} == {"solar", "wind", "storage"}


def test_policy_mapping_names_an_unknown_agent():
    m = PolicyMapping(policy_map(EC, "role"))
    assert m("solar_0", None) == "pricing" and m.modules == ("pricing", "bidding")
    with pytest.raises(ValueError, match="'solar_99'"):
        m("solar_99")
    with pytest.raises(ValueError, match="allowed: shared, kind, role"):
        policy_map(EC, "agent")


@pytest.mark.parametrize("field, value, match", [
    ("policies", "per_agent", "config.policies"), ("env_runners", -1, "config.env_runners"),
    ("minibatch_size", 10**6, "exceeds train_batch_size"), ("lr", 0.0, "config.lr"),
    ("hidden_sizes", [], "config.hidden_sizes"), ("total_steps", True, "config.total_steps"),
])
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RLlibConfig(**{field: value})


def test_config_round_trips_and_refuses_unknown_keys():
    cfg = RLlibConfig(policies="role", env={"episode_steps": 8})
    assert RLlibConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["backend"] == "rllib"
    with pytest.raises(ValueError, match="unknown RLlib config key.*learners"):
        RLlibConfig.from_dict({"learners": "all"})


def test_cli_refuses_flags_the_other_backend_owns(capsys):
    from channelmarket.training.cli import main

    assert main(["--backend", "rllib", "--learners", "sellers"]) == 2
    assert "--learners not used by --backend rllib" in capsys.readouterr().err
    assert main(["--env-runners", "2"]) == 2
    assert "--env-runners need --backend rllib" in capsys.readouterr().err
    assert main(["--backend", "rllib", "--algo", "sac"]) == 2
    assert "allowed: ppo" in capsys.readouterr().err


def test_cli_maps_the_common_flags_and_reads_the_run_config_on_resume(tmp_path):
    from channelmarket.training.cli import build_parser, resolve_rllib_config

    args = build_parser().parse_args(["--backend", "rllib", "--out", str(tmp_path), "--learning-rate", "0.001",
                                      "--n-steps", "16", "--batch-size", "64", "--net-arch", "32,32",
                                      "--policies", "role", "--env-runners", "3", "--train-batch-size", "1e3"])
    cfg, out = resolve_rllib_config(args)
    assert (cfg.lr, cfg.rollout_fragment_length, cfg.minibatch_size, cfg.hidden_sizes, cfg.policies,
            cfg.env_runners, cfg.train_batch_size) == (0.001, 16, 64, [32, 32], "role", 3, 1000) and out == tmp_path
    (tmp_path / "config.yaml").write_text("backend: rllib\npolicies: kind\nenv_runners: 4\n")
    resumed, _ = resolve_rllib_config(build_parser().parse_args(["--out", str(tmp_path), "--resume",
                                                                 "--backend", "rllib", "--env-runners", "0"]))
    assert resumed.policies == "kind" and resumed.env_runners == 0   # the run's config, flags on top


def test_ray_temp_folder_inside_the_run_only_when_its_socket_paths_fit(tmp_path):
    from channelmarket.training.rllib import SOCKET_PATH_MAX, ray_temp_dir

    assert ray_temp_dir(Path("/tmp/r")) == Path("/tmp/r/ray_tmp")
    deep = Path("/tmp") / ("d" * SOCKET_PATH_MAX)
    assert ray_temp_dir(deep) is None          # Ray would fail on a socket path over 107 bytes
    assert len("/session_2026-12-01_14-08-38_786026_9999999/sockets/plasma_store") + SOCKET_PATH_MAX <= 107


# ---- the plain export and its loader ------------------------------------------------------------

def _write_export(folder: Path, routing: dict, obs_dim: int, schema: dict, act: str = "tanh") -> dict:
    rng = np.random.default_rng(0)
    arrays, modules = {}, {}
    for mid in sorted(set(routing.values())):
        arrays[f"{mid}/w0"] = rng.normal(size=(16, obs_dim)).astype(np.float32)
        arrays[f"{mid}/b0"] = rng.normal(size=16).astype(np.float32)
        arrays[f"{mid}/w1"] = rng.normal(size=(8, 16)).astype(np.float32)
        arrays[f"{mid}/b1"] = rng.normal(size=8).astype(np.float32)
        modules[mid] = {"layers": [{"weight": f"{mid}/w0", "bias": f"{mid}/b0", "activation": act},
                                   {"weight": f"{mid}/w1", "bias": f"{mid}/b1", "activation": None}]}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (folder / "rllib_policy.npz").write_bytes(buf.getvalue())
    meta = {"format": EXPORT_FORMAT, "version": 1, "weights": "rllib_policy.npz", "act_dim": 4, "obs_schema": schema,
            "modules": modules, "routing": routing}
    (folder / "rllib_policy.json").write_text(json.dumps(meta))
    return arrays


def test_export_routes_each_agent_to_its_kinds_module(tmp_path):
    from channelmarket import MarketCore

    core = MarketCore("energy_small", episode_steps=8)
    obs = np.ascontiguousarray(core.reset(seed=0))
    routing = {"solar": "pricing", "wind": "pricing", "storage": "pricing", "consumer": "bidding"}
    w = _write_export(tmp_path, routing, core.obs_dim, core.obs_schema.to_dict())
    pol = RLlibPolicy(tmp_path)
    agents = np.arange(core.n_agents)
    pol.bind(core, agents, seed=0)
    got = pol.act(obs)
    kinds = np.asarray(core.view(agents).kind)
    for mid in ("pricing", "bidding"):
        h = np.tanh(obs @ w[f"{mid}/w0"].T + w[f"{mid}/b0"]) @ w[f"{mid}/w1"].T + w[f"{mid}/b1"]
        rows = np.isin(kinds, [i for i, k in enumerate(("solar", "wind", "storage", "consumer")) if routing[k] == mid])
        np.testing.assert_allclose(got[rows], np.clip(h[rows, :4], -1, 1), rtol=1e-5, atol=1e-5)
    assert pol.act(obs).shape == (core.n_agents, 4)
    unbound = RLlibPolicy(tmp_path)      # unbound: the kind one-hot of the observation routes
    np.testing.assert_allclose(unbound.act(obs), got, atol=1e-6)


def test_export_is_refused_when_damaged(tmp_path):
    from channelmarket import MarketCore

    core = MarketCore("energy_small")
    _write_export(tmp_path, {"solar": "m"}, core.obs_dim, core.obs_schema.to_dict(), act="gelu")
    with pytest.raises(ValueError, match="activation 'gelu'"):
        RLlibPolicy(tmp_path)
    _write_export(tmp_path, {"sun": "m"}, core.obs_dim, core.obs_schema.to_dict())
    with pytest.raises(ValueError, match="routing.*sun"):
        RLlibPolicy(tmp_path)
    _write_export(tmp_path, {"solar": "m"}, core.obs_dim + 1, core.obs_schema.to_dict())
    with pytest.raises(ValueError, match="does not map"):
        RLlibPolicy(tmp_path)
    (tmp_path / "rllib_policy.json").write_text("{}")
    assert export_path(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="no RLlib export"):
        RLlibPolicy(tmp_path)


def test_eval_population_loads_an_rllib_export(tmp_path):
    from channelmarket import MarketCore
    from channelmarket.eval.populations import load_model
    from channelmarket.policies.rollout import run_episode

    core = MarketCore("energy_small", episode_steps=8)
    _write_export(tmp_path, {k: "shared" for k in ("solar", "wind", "storage", "consumer")}, core.obs_dim,
                  core.obs_schema.to_dict())
    pol = load_model(str(tmp_path))
    assert isinstance(pol, RLlibPolicy)
    res = run_episode(core, {"all": pol}, seed=3)
    assert np.isfinite(res.profit).all() if hasattr(res, "profit") else res is not None


# ---- one 2-runner PPO iteration (notebooks/05_rllib.ipynb), its checkpoint restored by the CLI (slow: Ray) --

@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for this module's slow tests (each run would start and stop its own); its temp
    folder inside a run folder when the socket paths fit (pytest's tmp_path is too deep for them)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.rllib")
    from channelmarket.training.rllib import ray_temp_dir, start_ray

    ray_run = Path(tempfile.mkdtemp(prefix="cmr_", dir="/tmp" if Path("/tmp").is_dir() else None))
    assert ray_temp_dir(ray_run) == (ray_run / "ray_tmp").resolve()
    assert start_ray(RLlibConfig(env_runners=2), ray_run)
    try:
        assert (ray_run / "ray_tmp").is_dir()
        yield ray_run
    finally:
        ray.shutdown()
        shutil.rmtree(ray_run, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_runner_iteration_then_resume_and_evaluate(ray_session, capsys, monkeypatch, tmp_path):
    """The 05_rllib notebook runs here (its metadata says so), in this module's Ray session: one
    2-runner PPO iteration, evaluated through `run_tournament`; then the CLI resumes its checkpoint."""
    import matplotlib

    from channelmarket.training.checkpoints import latest_valid
    from channelmarket.training.cli import main

    matplotlib.use("Agg")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # the notebook's run folder lands in tmp_path
    ns: dict = {}
    nb = Path(__file__).resolve().parents[2] / "notebooks" / "05_rllib.ipynb"
    assert json.loads(nb.read_text())["metadata"]["channelmarket"]["executed_by"] == "tests/training/test_rllib.py"
    for i, cell in enumerate(c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"05_rllib.ipynb[cell {i}]", "exec"), ns)
    first = capsys.readouterr().out
    assert "iteration 1:" in first and "welfare" in first and "rllib_ppo" in first
    out = ns["run"]
    ck = latest_valid(out / "checkpoints", "ckpt")
    assert ck is not None and ck.step == 1
    assert any(out.glob("events.out.tfevents.*")) and (out / "ray_results").is_dir()
    first_export = (out / "rllib_policy.npz").read_bytes()

    # resume (the backend from the run's config.yaml) on a smaller machine: no env runner, the
    # driver samples; one more iteration from the 2-runner checkpoint. The run folder is given
    # relative, as the README's commands give it (Ray took a relative checkpoint path for a URI)
    monkeypatch.chdir(out.parent)
    assert main(["--out", out.name, "--resume", "--total-steps", "384", "--env-runners", "0"]) == 0
    second = capsys.readouterr().out
    assert "resumed from" in second and "iteration 2," in second and "384 agent-steps" in second
    assert latest_valid(out / "checkpoints", "ckpt").step == 2
    assert (out / "rllib_policy.npz").read_bytes() != first_export   # the restored modules trained on

    # a checkpoint of another setup (role modules, now one shared module) is refused, the run left as it was
    assert main(["--out", str(out), "--resume", "--total-steps", "576", "--env-runners", "0",
                 "--policies", "shared"]) == 2
    assert "does not fit this run's config" in capsys.readouterr().err
    assert "policies: role" in (out / "config.yaml").read_text()

    from channelmarket import MarketCore
    from channelmarket.eval.populations import load_model
    from channelmarket.policies.rollout import run_episode

    pol = load_model(str(out))
    assert set(pol.nets) == {"pricing", "bidding"}
    run_episode(MarketCore("energy_small", episode_steps=8), {"all": pol}, seed=1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_runners_each_stepping_batched_markets(ray_session, tmp_path):
    """`markets_per_env = 4`: each of 2 env runners steps one BatchCore of 4 markets (agent ids
    "m<market>/<agent>", modules by role); one PPO iteration samples whole days of all 4 markets."""
    from channelmarket.eval.populations import load_model
    from channelmarket.training.rllib import RLlibTrainer

    m, n, steps = 4, 12, 8                       # energy_small: 12 agents
    day = m * n * steps                          # agent-steps of one episode of one env
    cfg = RLlibConfig(scenario="energy_small", env={"episode_steps": steps}, policies="role", env_runners=2,
                      markets_per_env=m, train_batch_size=2 * day, minibatch_size=day, num_epochs=1,
                      total_steps=2 * day)
    trainer = RLlibTrainer(cfg, tmp_path / "run")
    try:
        assert trainer.config.env == "channelmarket_batch_v0"
        assert trainer.mapping("m3/solar_0") == "pricing" and trainer.mapping("m0/consumer_0") == "bidding"
        s = trainer.run()
    finally:
        trainer.stop()
    assert s["iteration"] == 1 and s["agent_steps"] >= 2 * day
    assert set(s["module_return_mean"]) == {"pricing", "bidding"}
    pol = load_model(str(tmp_path / "run"))           # the export routes kinds, not batched ids
    assert set(pol.nets) == {"pricing", "bidding"}
