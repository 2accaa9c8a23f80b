"""RLlib PPO over `channel_market_v0`: the trainer for users who outgrow one machine.

    from channelmarket.training.rllib import RLlibConfig, train
    summary = train(RLlibConfig(scenario="energy_small", policies="role", env_runners=2, total_steps=20_000),
                    "runs/rllib")
    channelmarket train --backend rllib --scenario energy_small --policies kind --env-runners 2 --out runs/rllib
    channelmarket train --backend rllib --out runs/rllib --resume --total-steps 40000
    channelmarket train --backend rllib --address auto ...          # a running cluster (`ray start --head`)
    channelmarket train --backend rllib --markets-per-env 8 ...     # each env: one batch of 8 markets

The env is RLlib's own `ParallelPettingZooEnv` around `channel_market_v0.parallel_env` (`rllib_env`),
and agents map to modules through the env's `agent_kinds` (shared, per kind, or per role); with
`markets_per_env` > 1 each env is one `BatchCore` of M markets (`rllib_batch_env`). Every
agent learns; RLlib's new API stack (RLModules, Learner, EnvRunners) does the rest.

Run folder (`out`):
    config.yaml                 the `RLlibConfig` (backend: rllib), read back by --resume
    checkpoints/ckpt_<iter>.tar Ray's checkpoint folder (`Algorithm.save_to_path`) packed into one file,
                                sealed by ckpt_<iter>.manifest.json (`training.checkpoints`: the one lister)
    events.out.tfevents.*       TensorBoard: rllib/* (returns per module, losses, throughput)
    rllib_policy.{json,npz}     the trained actors exported for `channelmarket eval` (`eval.rllib_policy`)
    ray_tmp/                    Ray's temporary folder (sessions, logs) when Ray is started locally
    ray_results/                Ray's result folder (the Trainable's log dir)

Resume restores the newest intact checkpoint with `Algorithm.restore_from_path`. Ray's checkpoint
holds cloudpickled objects: restore only run folders you wrote (the manifest's checksums catch a
damaged or altered file; evaluation never reads Ray's files, only the plain export).
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.files import atomic_write_bytes, atomic_write_text
from ..eval.rllib_policy import EXPORT_FORMAT, EXPORT_JSON, EXPORT_NPZ, EXPORT_VERSION
from .checkpoints import latest_valid, prune, write_manifest
from .rllib_config import RLlibConfig
from .rllib_batch_env import batch_policy_map, register_batch
from .rllib_env import PolicyMapping, policy_map, register

CHECKPOINT_DIR = "checkpoints"
# Ray's unix sockets live at <temp>/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store (~65 bytes
# after <temp>) and AF_UNIX paths stop at 107 bytes
SOCKET_PATH_MAX = 40


def ray_temp_dir(out: Path) -> "Path | None":
    """`out/ray_tmp` when Ray's socket paths under it fit, else None (Ray's default temp folder)."""
    tmp = (Path(out) / "ray_tmp").resolve()
    return tmp if len(str(tmp)) <= SOCKET_PATH_MAX else None


def start_ray(cfg: RLlibConfig, out: Path) -> bool:
    """Join `cfg.address`, or start a local Ray whose temporary folder is `out/ray_tmp` (Ray's default
    temp folder when that path is too long for its sockets: `ray_temp_dir`). False when Ray was already running."""
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if cfg.address:
        ray.init(address=cfg.address, **kw)
        return True
    tmp = ray_temp_dir(out)
    if tmp is not None:
        tmp.mkdir(parents=True, exist_ok=True)
        kw["_temp_dir"] = str(tmp)
    ray.init(num_cpus=cfg.num_cpus or max(os.cpu_count() or 1, cfg.env_runners + 1),
             object_store_memory=256 * 2 ** 20, **kw)
    return True


def algorithm_config(cfg: RLlibConfig):
    """The `PPOConfig` of a run: env (one market, or `markets_per_env` batched), policy mapping by kind,
    env runners, PPO settings."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    batched = cfg.markets_per_env > 1   # M markets per env: one BatchCore (`rllib_batch_env`)
    mapping = PolicyMapping((batch_policy_map if batched else policy_map)(cfg.env_config, cfg.policies))
    fragment = cfg.rollout_fragment_length or int(_episode_steps(cfg))
    return (PPOConfig()
            .environment(register_batch() if batched else register(), env_config=cfg.env_config)
            .env_runners(num_env_runners=cfg.env_runners, num_envs_per_env_runner=cfg.envs_per_runner,
                         rollout_fragment_length=fragment)
            .multi_agent(policies=set(mapping.modules), policy_mapping_fn=mapping, count_steps_by="agent_steps")
            .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={m: RLModuleSpec() for m in mapping.modules}),
                       model_config=DefaultModelConfig(fcnet_hiddens=list(cfg.hidden_sizes),
                                                       fcnet_activation=cfg.activation))
            .training(train_batch_size_per_learner=cfg.train_batch_size, minibatch_size=cfg.minibatch_size,
                      num_epochs=cfg.num_epochs, lr=cfg.lr, gamma=cfg.gamma, lambda_=cfg.lambda_,
                      entropy_coeff=cfg.entropy_coeff)
            .debugging(seed=cfg.seed, log_level="ERROR"))


def _episode_steps(cfg: RLlibConfig) -> int:
    """The scenario's episode length (the env keywords that are not scenario fields left out)."""
    from ..envs.scenario import get_scenario

    env = dict(cfg.env)
    if "max_cycles" in env:
        env["episode_steps"] = env.pop("max_cycles")
    env = {k: v for k, v in env.items() if k not in ("render_mode", "info_keys", "history_len", "state_mode")}
    return int(get_scenario(cfg.scenario, **env).episode_steps)


class RLlibTrainer:
    """One RLlib run in a run folder: build (or resume), train by iterations, checkpoint, export."""

    def __init__(self, cfg: RLlibConfig, out: "str | Path", resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CHECKPOINT_DIR).mkdir(exist_ok=True)
        self.started_ray = start_ray(cfg, self.out)
        try:
            self._build(resume)
        except BaseException:
            self.stop()
            raise
        atomic_write_text(self.out / "config.yaml", _yaml(cfg.to_dict()))   # after a resume that fits

    def _build(self, resume: bool) -> None:
        self.algo = None
        self.config = algorithm_config(self.cfg)
        self.mapping: PolicyMapping = self.config.policy_mapping_fn
        from ray.tune.trainable import trainable as _trainable

        # the Trainable's log dir (Ray's result folder) goes inside the run folder, not ~/ray_results
        _trainable.DEFAULT_STORAGE_PATH = str((self.out / "ray_results").resolve())
        self.algo = self.config.build_algo()
        self.resumed_from: str | None = None
        self.agent_steps = 0
        if resume:
            ck = latest_valid(self.out / CHECKPOINT_DIR, "ckpt")
            if ck is not None:
                self._restore(ck)
                self.resumed_from = str(ck.manifest)

    # ---- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path:
        """Pack `Algorithm.save_to_path` into checkpoints/ckpt_<iter>.tar, seal it, prune old ones."""
        folder = self.out / CHECKPOINT_DIR
        it = int(self.algo.iteration)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".ray_ckpt_") as tmp:
            # absolute: Ray reads a relative path as a URI without a scheme (ArrowInvalid)
            self.algo.save_to_path((Path(tmp) / "algo").resolve())
            state = {"agent_steps": self.agent_steps, "iteration": it, "setup": self._setup()}
            (Path(tmp) / "algo" / "channelmarket_state.json").write_text(json.dumps(state))
            buf = Path(tmp) / "pack.tar"
            with tarfile.open(buf, "w") as tar:
                tar.add(Path(tmp) / "algo", arcname="algo")
            atomic_write_bytes(folder / f"ckpt_{it}.tar", buf.read_bytes())
        manifest = write_manifest(folder, "ckpt", it, [folder / f"ckpt_{it}.tar"],
                                  extra={"agent_steps": self.agent_steps, "backend": "rllib"})
        prune(folder, "ckpt", keep=self.cfg.keep_checkpoints)
        return manifest

    def _setup(self) -> dict[str, Any]:
        """What a checkpoint must share with the run restoring it (RLlib restores mismatched modules silently)."""
        c = self.cfg
        return {"policies": c.policies, "modules": list(self.mapping.modules), "scenario": c.scenario, "env": c.env,
                "hidden_sizes": list(c.hidden_sizes), "activation": c.activation}

    def _restore(self, ck) -> None:
        folder = self.out / CHECKPOINT_DIR
        with tempfile.TemporaryDirectory(dir=folder, prefix=".ray_restore_") as tmp:
            with tarfile.open(ck.path(f"ckpt_{ck.step}.tar")) as tar:
                tar.extractall(tmp, filter="data")   # no absolute paths, links out or device files
            try:
                state = json.loads((Path(tmp) / "algo" / "channelmarket_state.json").read_text(encoding="utf-8"))
                saved, agent_steps = dict(state["setup"]), int(state["agent_steps"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"checkpoint {ck.manifest} lacks a readable channelmarket_state.json ({exc})") from None
            diff = {k: v for k, v in self._setup().items() if saved.get(k) != v}
            if diff:
                raise ValueError(f"checkpoint {ck.manifest} does not fit this run's config: "
                                 + "; ".join(f"{k} = {v!r} here, {saved.get(k)!r} in the checkpoint" for k, v in diff.items())
                                 + "; resume with the run's settings or train into a new folder")
            self.algo.restore_from_path((Path(tmp) / "algo").resolve())
        self.agent_steps = agent_steps

    # ---- training ------------------------------------------------------------------------------
    def run(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train until `cfg.total_steps` agent-steps (or `stop_at`), checkpointing every
        `checkpoint_every` iterations and at the end; then export the actors. The last summary."""
        from torch.utils.tensorboard import SummaryWriter

        cfg = self.cfg
        end = min(cfg.total_steps, stop_at) if stop_at is not None else cfg.total_steps
        runners = max(cfg.env_runners, 1)
        writer = SummaryWriter(log_dir=str(self.out), purge_step=int(self.algo.iteration) + 1 if self.resumed_from else None)
        summary: dict[str, Any] = {}
        try:
            while self.agent_steps < end:
                t0 = time.perf_counter()
                result = self.algo.train()
                wall = time.perf_counter() - t0
                er = result.get("env_runners", {})
                steps = int(er.get("num_agent_steps_sampled", {}).get("__all__", 0) or
                            sum(v for v in er.get("num_agent_steps_sampled", {}).values()))
                self.agent_steps += steps
                timers = result.get("timers", {})
                sample_s = float(timers.get("env_runner_sampling_timer", 0.0) or 0.0)   # runners in parallel
                summary = {
                    "iteration": int(self.algo.iteration),
                    "agent_steps": self.agent_steps,
                    "agent_steps_per_s": steps / max(wall, 1e-9),
                    "sample_agent_steps_per_s_per_runner": (steps / runners) / sample_s if sample_s > 0 else float("nan"),
                    "sample_seconds": sample_s,
                    "learn_seconds": float(timers.get("learner_update_timer", float("nan"))),
                    "episode_return_mean": float(er.get("episode_return_mean", float("nan"))),
                    "module_return_mean": {k: float(v) for k, v in er.get("module_episode_returns_mean", {}).items()},
                }
                self._log(writer, summary, result)
                last = self.agent_steps >= end
                if cfg.checkpoint_every and summary["iteration"] % cfg.checkpoint_every == 0 or last:
                    self.save()
        finally:
            writer.close()
        if self.agent_steps >= cfg.total_steps:
            self.export()
        return summary

    def _log(self, writer, summary: dict[str, Any], result: dict[str, Any]) -> None:
        it = summary["iteration"]
        for key in ("agent_steps_per_s", "sample_agent_steps_per_s_per_runner", "episode_return_mean"):
            if np.isfinite(summary[key]):
                writer.add_scalar(f"rllib/{key}", summary[key], it)
        for mid, v in summary["module_return_mean"].items():
            writer.add_scalar(f"rllib/return_mean/{mid}", v, it)
        for mid, stats in result.get("learners", {}).items():
            if mid in self.mapping.modules and isinstance(stats, dict):
                for key in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss"):
                    v = stats.get(key)
                    if isinstance(v, (int, float, np.floating)) and np.isfinite(v):
                        writer.add_scalar(f"rllib/{key}/{mid}", float(v), it)
        writer.flush()

    # ---- export for evaluation -----------------------------------------------------------------
    def export(self) -> Path:
        """Write rllib_policy.json + .npz: every module's actor as plain weights (`eval.rllib_policy`)."""
        return export_modules(self.algo, self.cfg, self.mapping, self.out)

    def stop(self) -> None:
        """Stop the env runners (and the local Ray this trainer started)."""
        if getattr(self, "algo", None) is not None:
            self.algo.stop()
            self.algo = None
        if self.started_ray:
            import ray

            ray.shutdown()


def export_modules(algo: Any, cfg: RLlibConfig, mapping: PolicyMapping, out: Path) -> Path:
    """The actors of `algo`'s modules as rllib_policy.json + rllib_policy.npz in `out`."""
    import io

    from ..envs.core import MarketCore
    from ..envs import channel_market_v0

    env = channel_market_v0.parallel_env(scenario=cfg.scenario, **cfg.env)   # one market: the kinds
    core: MarketCore = env.core
    arrays: dict[str, np.ndarray] = {}
    modules: dict[str, Any] = {}
    for mid in mapping.modules:
        sd = {k: v.detach().cpu().numpy() for k, v in algo.get_module(mid).state_dict().items()}
        layers = []
        enc = "encoder.actor_encoder.net.mlp." if any(k.startswith("encoder.actor_encoder.") for k in sd) \
            else "encoder.encoder.net.mlp."
        for prefix, hidden_act in ((enc, cfg.activation), ("pi.net.mlp.", "relu")):
            idx = sorted({int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix) and k.endswith(".weight")})
            for j, i in enumerate(idx):
                name = f"{mid}/{prefix}{i}"
                arrays[name + ".weight"] = sd[f"{prefix}{i}.weight"].astype(np.float32)
                arrays[name + ".bias"] = sd[f"{prefix}{i}.bias"].astype(np.float32)
                # the encoder's every layer is followed by its activation; the pi head's last is linear
                act = hidden_act if prefix == enc or j < len(idx) - 1 else None
                layers.append({"weight": name + ".weight", "bias": name + ".bias", "activation": act})
        modules[mid] = {"layers": layers}
    routing = {env.agent_kinds[a.rsplit("/", 1)[-1]]: m for a, m in mapping.mapping.items()}   # "m3/solar_0" batched
    meta = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "weights": EXPORT_NPZ, "act_dim": core.n_actions,
            "obs_schema": core.obs_schema.to_dict(), "modules": modules, "routing": routing,
            "policies": cfg.policies, "scenario": cfg.scenario, "iteration": int(algo.iteration)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out / EXPORT_NPZ, buf.getvalue())
    atomic_write_text(out / EXPORT_JSON, json.dumps(meta, indent=1) + "\n")
    return out / EXPORT_JSON


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def train(cfg: RLlibConfig, out: "str | Path", resume: bool = False) -> dict[str, Any]:
    """Train `cfg` into run folder `out` (resuming its newest checkpoint if asked); the last summary."""
    trainer = RLlibTrainer(cfg, out, resume=resume)
    try:
        return trainer.run()
    finally:
        trainer.stop()


__all__ = ["RLlibConfig", "RLlibTrainer", "algorithm_config", "start_ray", "ray_temp_dir", "export_modules", "train", "CHECKPOINT_DIR"]
