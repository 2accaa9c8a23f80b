"""Train learned pricing and bidding policies with Stable-Baselines3 over `MarketVecEnv`.

    from channelmarket.training import TrainConfig, train
    train(TrainConfig(total_steps=300_000), "runs/ppo")      # or: channelmarket train --out runs/ppo

Run folder:
    config.yaml             the resolved `TrainConfig`
    scenario.yaml           the resolved training scenario (shock rate included)
    checkpoints/            ckpt_<steps>_model.pt + _state.npz + _state.json + a manifest, the newest
                            few (pickle-free; `training.sb3_resume`); --resume continues bit for bit
    model.zip               the final model (SB3 format); model.json says how to act with it
    model_vecnormalize.npz  observation normalisation statistics of the final model (no pickle)
    metrics.json            the final metrics
    tb/                     TensorBoard events (tb/pricing and tb/bidding with split roles)
    tb/progress.csv         the same scalars as CSV (kept and continued on --resume)

Every file is written atomically (`envs.files`); a resume verifies the checkpoint's manifest and
falls back to the newest intact checkpoint, saying so.

Roles: 'shared' trains one network for every learner kind. 'split' trains a pricing network
(sellers: solar, wind, storage) and a bidding network (consumers) in alternating phases of
`role_phase_steps`; while one trains, the other drives its agents frozen, inside the adapter.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.files import atomic_write_bytes, atomic_write_text
from ..envs.state import KIND_ALIASES, KIND_NAMES
from ..envs.offers import action_fields
from . import sb3_resume
from .callbacks import CheckpointCallback, MarketMetricsCallback, TqdmCallback, final_metrics, log_hparams
from .checkpoints import latest_valid
from .config import TrainConfig, training_scenario
from .vec_env import MarketVecEnv, parse_kinds, scenario_kinds, scenario_learners, select_agents

SELLER_KINDS = KIND_ALIASES["sellers"]                                      # the pricing policy's kinds
BUYER_KINDS = tuple(k for k in KIND_ALIASES["buyers"] if k not in SELLER_KINDS)   # the bidding policy's (pure buyers)


# ---- building blocks -----------------------------------------------------------------------------

def make_env(cfg: TrainConfig, learners: Any = None, partners=(), seed_offset: int = 0, normalize: bool = True):
    """MarketVecEnv -> VecMonitor (episode returns for `rollout/ep_rew_mean`) -> VecNormalize."""
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    venv = MarketVecEnv(training_scenario(cfg), learners=cfg.learners if learners is None else learners,
                        learner_share=cfg.learner_share, background=cfg.background, partners=partners,
                        n_markets=cfg.n_markets, seed=cfg.seed + seed_offset, reward_scale=cfg.reward_scale)
    env = VecMonitor(venv)
    if normalize and (cfg.normalize_obs or cfg.normalize_reward):
        env = VecNormalize(env, norm_obs=cfg.normalize_obs, norm_reward=cfg.normalize_reward, clip_obs=cfg.clip_obs,
                           gamma=cfg.gamma)
    return env


def make_model(cfg: TrainConfig, env: Any, seed_offset: int = 0):
    """A fresh SB3 model for `cfg.algo` (ppo, sac, td3) on `env`."""
    import stable_baselines3 as sb3

    common = dict(learning_rate=cfg.learning_rate, gamma=cfg.gamma, seed=cfg.seed + seed_offset, device=cfg.device,
                  verbose=cfg.verbose)
    if cfg.algo == "ppo":
        kw = dict(common, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                  gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
                  max_grad_norm=cfg.max_grad_norm,
                  policy_kwargs=dict(net_arch=dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch)),
                                     log_std_init=cfg.log_std_init))
        kw.update(cfg.algo_kwargs)
        with warnings.catch_warnings():   # a shorter last minibatch per epoch is harmless here
            warnings.filterwarnings("ignore", message="You have specified a mini-batch size")
            return sb3.PPO("MlpPolicy", env, **kw)
    off = dict(common, buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts, batch_size=cfg.batch_size,
               tau=cfg.tau, train_freq=cfg.train_freq, gradient_steps=cfg.gradient_steps,
               policy_kwargs=dict(net_arch=list(cfg.net_arch)))
    if cfg.algo == "sac":
        off.update(cfg.algo_kwargs)
        return sb3.SAC("MlpPolicy", env, **off)
    if cfg.algo == "td3":
        from stable_baselines3.common.noise import NormalActionNoise

        off["action_noise"] = NormalActionNoise(np.zeros(4), 0.1 * np.ones(4))
        off.update(cfg.algo_kwargs)
        return sb3.TD3("MlpPolicy", env, **off)
    raise ValueError(f"algo {cfg.algo!r} is not an SB3 algorithm here; ippo/mappo run training.ippo")


def _configure_logger(folder: Path, verbose: int, keep_until: int | None = None):
    from .progress_log import configure

    return configure(folder, verbose, keep_until)


def _latest(out: Path, resume: bool):
    """The checkpoint to resume from (newest intact one; damaged newer ones are reported), or None."""
    if not resume:
        return None
    ck = latest_valid(out / "checkpoints", "ckpt", say=sb3_resume.warn_skipped)
    if ck is None:
        print(f"no checkpoint in {out / 'checkpoints'}; starting a new run")
    return ck


def _hparams(cfg: TrainConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    d.pop("algo_kwargs", None)
    d["net_arch"] = "x".join(map(str, cfg.net_arch))
    d.update({f"algo_kwargs.{k}": v for k, v in cfg.algo_kwargs.items()})
    return d


def _prepare_folder(cfg: TrainConfig, out: Path, resume: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ck = out / "checkpoints"
    if not resume and ck.is_dir() and any(ck.iterdir()):
        raise FileExistsError(f"run folder {str(out)!r} already has checkpoints; pass --resume to continue it "
                              "or choose another --out")
    if not resume:
        _write_run_files(cfg, out)


def _write_run_files(cfg: TrainConfig, out: Path) -> None:
    """config.yaml and scenario.yaml; on resume only once the checkpoint was restored, so a refused
    resume leaves the run's own config for the next --resume."""
    atomic_write_text(out / "config.yaml", cfg.to_yaml())
    atomic_write_text(out / "scenario.yaml", training_scenario(cfg).to_yaml())


def _set_threads(cfg: TrainConfig) -> None:
    import torch

    if cfg.device == "cpu":
        torch.set_num_threads(1)   # small MLPs: one thread beats two on a shared 2-core machine


# ---- shared policy ---------------------------------------------------------------------------------

def _train_shared(cfg: TrainConfig, out: Path, resume: bool) -> dict[str, Any]:
    env = make_env(cfg)
    model = make_model(cfg, env)
    ck = _latest(out, resume)
    state = sb3_resume.restore(model, ck) if ck is not None else None
    if resume:
        _write_run_files(cfg, out)
    if state is not None:
        print(f"resuming {out} from checkpoint {ck.manifest.name} at {model.num_timesteps} agent-steps")
    model.set_logger(_configure_logger(out / "tb", cfg.verbose, model.num_timesteps if resume else None))
    if state is not None:
        sb3_resume.restore_log(model, state)
    venv: MarketVecEnv = env.unwrapped
    metrics = MarketMetricsCallback(min_market_steps=venv.scenario.episode_steps if cfg.algo != "ppo" else 1)
    callbacks = [metrics, CheckpointCallback(out / "checkpoints", cfg.checkpoint_every, cfg.keep_checkpoints)]
    if cfg.progress_bar:
        callbacks.append(TqdmCallback(cfg.total_steps, desc=f"{cfg.algo} {venv.scenario.name}"))
    remaining = cfg.total_steps - model.num_timesteps
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=callbacks, reset_num_timesteps=False, log_interval=1)
    sb3_resume.save(model, out / "checkpoints", model.num_timesteps, keep=cfg.keep_checkpoints)
    final = final_metrics(metrics.last, model)
    log_hparams(model.logger, _hparams(cfg), final, model.num_timesteps)
    _save_final(cfg, out, [("model", model, env, venv.learner_kinds, "shared")],
                {"num_timesteps": model.num_timesteps, **final})
    model.logger.close()
    return {"num_timesteps": model.num_timesteps, **final}


# ---- one policy per role, in alternation -------------------------------------------------------------

class _LiveModel:
    """Stands for a model created later (the partner of the other role): `.policy` looks it up."""

    def __init__(self, models: dict, role: str) -> None:
        self.models, self.role = models, role

    @property
    def policy(self):
        return self.models[self.role].policy


def _role_split(cfg: TrainConfig) -> dict[str, np.ndarray]:
    sc = training_scenario(cfg)
    kind = scenario_kinds(sc)
    learners = select_agents(kind, parse_kinds(cfg.learners), cfg.learner_share)
    lk = np.array([KIND_NAMES[k] for k in kind[learners]])
    roles = {"pricing": learners[np.isin(lk, SELLER_KINDS)], "bidding": learners[np.isin(lk, BUYER_KINDS)]}
    return {r: idx for r, idx in roles.items() if idx.size}


def _train_split(cfg: TrainConfig, out: Path, resume: bool) -> dict[str, Any]:
    from ..policies.learned import LearnedPolicy, ObsNormalizer, _Member

    roles = _role_split(cfg)
    if len(roles) < 2:
        warnings.warn(f"learners {cfg.learners!r} fill one role only ({', '.join(roles)}); training one shared policy")
        return _train_shared(cfg, out, resume)
    order = ("pricing", "bidding")
    models: dict[str, Any] = {}
    envs: dict[str, Any] = {}

    def partner_factory(role: str):
        def make():
            norm = (lambda: ObsNormalizer.from_vecnormalize(envs[role]) if hasattr(envs[role], "obs_rms") else None)
            kinds = tuple(sorted({KIND_NAMES[k] for k in scenario_kinds(training_scenario(cfg))[roles[role]]},
                                 key=KIND_NAMES.index))
            return LearnedPolicy([_Member(_LiveModel(models, role), norm, kinds)], name=f"frozen_{role}")
        return make

    for i, role in enumerate(order):
        other = order[1 - i]
        envs[role] = make_env(cfg, learners=roles[role], partners=[(partner_factory(other), roles[other])],
                              seed_offset=i)
    ckpt_dir = out / "checkpoints"
    for i, r in enumerate(order):
        models[r] = make_model(cfg, envs[r], seed_offset=i)
    phase = 0
    ck = _latest(out, resume)
    states = {r: sb3_resume.restore(models[r], ck, role=r) for r in order} if ck is not None else {}
    if resume:
        _write_run_files(cfg, out)
    if states:
        phase = int(states["pricing"].get("phase", 0))
        print(f"resuming {out} at phase {phase}: " + ", ".join(f"{r} {models[r].num_timesteps}" for r in order))
    metrics = {}
    for r in order:
        models[r].set_logger(_configure_logger(out / "tb" / r, cfg.verbose,
                                               models[r].num_timesteps if resume else None))
        if r in states:
            sb3_resume.restore_log(models[r], states[r])
        venv = envs[r].unwrapped
        metrics[r] = MarketMetricsCallback(min_market_steps=venv.scenario.episode_steps if cfg.algo != "ppo" else 1)

    def done_steps() -> int:
        return sum(m.num_timesteps for m in models.values())

    bar = TqdmCallback.make_bar(cfg.total_steps, done_steps(), f"{cfg.algo} roles") if cfg.progress_bar else None
    last_ckpt = done_steps()
    while done_steps() < cfg.total_steps:
        role = order[phase % 2]
        steps = min(cfg.role_phase_steps, cfg.total_steps - done_steps())
        cbs = [metrics[role]] + ([TqdmCallback(bar=bar)] if bar is not None else [])
        models[role].learn(total_timesteps=steps, callback=cbs, reset_num_timesteps=False, log_interval=1)
        phase += 1
        if done_steps() - last_ckpt >= cfg.checkpoint_every or done_steps() >= cfg.total_steps:
            sb3_resume.save(dict(models), ckpt_dir, done_steps(), keep=cfg.keep_checkpoints,
                            extra={"phase": phase, "total_steps": done_steps()})
            last_ckpt = done_steps()
    if bar is not None:
        bar.close()
    result: dict[str, Any] = {"num_timesteps": done_steps()}
    for r in order:
        final = final_metrics(metrics[r].last, models[r])
        log_hparams(models[r].logger, dict(_hparams(cfg), role=r), final, models[r].num_timesteps)
        result.update({f"{r}/{k}": v for k, v in final.items()})
    kinds = {r: tuple(sorted({KIND_NAMES[k] for k in envs[r].unwrapped.kind[roles[r]]}, key=KIND_NAMES.index))
             for r in order}
    _save_final(cfg, out, [("model", models["pricing"], envs["pricing"], kinds["pricing"], "pricing"),
                           ("model_bidding", models["bidding"], envs["bidding"], kinds["bidding"], "bidding")],
                result)
    for r in order:
        models[r].logger.close()
    return result


# ---- final files -------------------------------------------------------------------------------------

def _save_final(cfg: TrainConfig, out: Path, members: list, metrics: dict | None = None) -> Path:
    """model.zip (+ model_bidding.zip), their observation statistics (.npz), model.json and
    metrics.json, each written atomically."""
    from stable_baselines3.common.vec_env import VecNormalize

    from ..envs.obs_schema import observation_schema
    from ..policies.learned import ObsNormalizer, write_meta

    entries = []
    for stem, model, env, kinds, role in members:
        buf = io.BytesIO()
        model.save(buf)
        atomic_write_bytes(out / f"{stem}.zip", buf.getvalue())
        vn_name = None
        norm = ObsNormalizer.from_vecnormalize(env) if isinstance(env, VecNormalize) else None
        if norm is not None:
            vn_name = f"{stem}_vecnormalize.npz"
            norm.save(out / vn_name)
        entries.append({"file": f"{stem}.zip", "vecnormalize": vn_name, "kinds": list(kinds), "role": role})
    if metrics is not None:
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    return write_meta(out / "model.zip", {
        "algo": cfg.algo, "name": f"learned:{cfg.algo}", "scenario": cfg.scenario, "roles": cfg.roles,
        "learners": list(scenario_learners(training_scenario(cfg), cfg.learners)), "learner_share": cfg.learner_share,
        "background": cfg.background, "total_steps": cfg.total_steps, "seed": cfg.seed, "members": entries,
        "act_dim": len(action_fields(training_scenario(cfg))), "action_fields": list(action_fields(training_scenario(cfg))),
        "partner_action": bool(training_scenario(cfg).partner_action),
    }, schema=observation_schema(training_scenario(cfg)))


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train per `cfg` into the run folder `out_dir`; `resume=True` continues from its newest
    checkpoint (model, normalisation statistics, step counter), `cfg.total_steps` being the total.
    Returns the final metrics (also written to TensorBoard as `final/...` with the hyperparameters)."""
    if cfg.algo in ("ippo", "mappo"):
        raise ValueError("ippo/mappo run through channelmarket.training.cli (training.ippo.train)")
    out = Path(out_dir)
    _prepare_folder(cfg, out, resume)
    _set_threads(cfg)
    if cfg.roles == "split":
        return _train_split(cfg, out, resume)
    return _train_shared(cfg, out, resume)


__all__ = ["train", "make_env", "make_model", "training_scenario"]
