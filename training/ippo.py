"""IPPO / MAPPO in plain torch over the array API: the trainer for thousands of agents.

SB3 with one sub-environment per agent stops scaling at thousands of agents. This trainer
works on whole markets: every step, ONE forward pass of a shared actor maps the observations
of all learning agents of all markets, obs [M, O], to Gaussian actions [M, A] (A = the scenario's action columns, 4 or 5 with `partner_action`; clipped to
[-1, 1]); the agents of the other kinds are driven by a baseline `Policy`. Rewards are the
env's EUR profits, scaled by a running std of the discounted return per agent kind (kinds earn
on different scales). GAE runs over [T, M], the PPO clipped objective over shuffled
minibatches of the T*M samples. Nothing loops over agents in Python.

    from channelmarket.training.ippo import IPPOConfig, train, load_ippo
    metrics = train(IPPOConfig(scenario="energy_default", total_steps=50_000, learners=("solar", "wind"),
                               background="risk_factor"), out_dir="runs/ippo")
    policy = load_ippo("runs/ippo/ippo_model.pt")        # a Policy: bind(core, agents), act(obs)

IPPO (default): the critic sees the agent's own observation (which already carries the
mean-field aggregates: reference and clearing price, imbalance, traded share, time, shock).
MAPPO (`centralized_critic=True`): the critic also sees its market's flat global state, the same
vector as the PettingZoo face's `state()` (`envs.global_state`: market prices, time and shock, then
per kind the share still in the episode and the mean of every own-state column), whose size does
not grow with the number of agents; one matmul per market step.
The actor is the same in both (own observation only), so a trained policy runs decentralised.

The file reads top to bottom like CleanRL's ppo.py: setup (`IPPOTrainer.__init__`), rollout
(`collect`), GAE and the PPO update (`update`), logging (`log`), checkpoints (`run`). The pieces
both trainers share live in small modules: the config (`ippo_config`, built from the CLI's
`TrainConfig` by `config.ippo_config`), the markets with their learners, background and seeds
(`markets`), the metrics (`metrics`), the policy specs (`policy_specs`), the Gaussian/GAE
arithmetic (`ppo_ops`) and the checkpoint files (`ippo_checkpoint`).

Run folder (`out_dir`); configs, checkpoints and the model are written atomically and hold no pickle:
    config.yaml              the config the user gave (this IPPOConfig, or the CLI's TrainConfig), read by --resume
    resolved.yaml            this trainer's IPPOConfig and what it resolved (learner kinds, scenario, dimensions)
    checkpoints/ckpt_<step>.{pt,npz,json}  tensors (actor, critic, optimizer, torch RNG; weights_only),
                             arrays (markets mid-episode, background policies, return accumulator) and
                             JSON (counters, normalisers, generator states, config), sealed by
                             ckpt_<step>.manifest.json (`training.checkpoints`); resume takes the newest intact one
    ippo_model.pt            the final actor + observation normaliser (`load_ippo`; tensors and plain values)
    events.out.tfevents.*    TensorBoard: charts/, losses/, market/, profit/<kind>/{learner,baseline}

Resume is exact: a run stopped or killed after a checkpoint and resumed with the same total reaches
the uninterrupted run's parameters bit for bit (same machine, same torch threads), and TensorBoard
keeps each point once. Raising `total_steps` on resume changes the learning-rate schedule of the
remaining steps (it anneals to the new total), so such a run differs from one planned that long.

Steps: `total_steps`, `checkpoint_every` and `log_every` count market steps (one `MarketCore.step`
of one market; with `n_markets` markets a rollout step is `n_markets` market steps). Agent-steps
are market steps x agents per market.

Throughput (env agent-steps per wall second, rollouts and updates included, torch_threads=1, defaults
otherwise: T=96, 4 epochs, minibatch 4096; three rollouts after one, three runs on the project's 2-core VM,
idle, 2 December 2026):

| scenario        | setting                                              | agent-steps/s  |
|-----------------|------------------------------------------------------|----------------|
| energy_default  | all 100 learn, n_markets=4                           | 96,000-114,000 |
| energy_default  | MAPPO, all learn, n_markets=4                        | 75,000-84,000  |
| energy_10k      | all 10,000 learn (update_samples=131072)             | 393,000-479,000 |
| energy_10k      | same, minibatch 8192                                 | 440,000-486,000 |
| energy_10k      | MAPPO, minibatch 8192                                | 418,000-429,000 |

At 100 agents per-step Python overhead and the update dominate; more markets side by side, in one
batched core, raise the rate (README, Batched markets: 649,000-730,000 at 256 x energy_default).
torch_threads=2 only pays on an otherwise idle machine (oversubscribed, it is several times slower).
"""

from __future__ import annotations

import random
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..envs.files import atomic_write_bytes, atomic_write_text
from ..envs.state import N_KINDS
from ..policies.ippo_policy import MODEL_FILE, MODEL_FORMAT, IPPOPolicy, load_ippo
from ..policies.nets import Critic, GaussianActor, GroupedRunningStd, RunningMeanStd
from . import ippo_checkpoint
from .ippo_checkpoint import CHECKPOINT_DIR, STATE_DATACLASSES as _STATE_DATACLASSES  # noqa: F401
from .checkpoints import latest_valid
from .ippo_checkpoint import latest_checkpoint, list_checkpoints
from .ippo_config import IPPOConfig, plain, resolve_device, resolve_learners, resolve_scenario
from .markets import Markets
from .metrics import MARKET_TAGS, SUMMARY_METRICS  # noqa: F401  (re-exported)
from .ppo_ops import gae, gaussian_entropy, gaussian_logp, gaussian_logp_from_noise
from ..envs.global_state import global_state, state_fields
from .ppo_ops import global_features as _global_features  # noqa: F401  (the per-kind means MAPPO read before; tests use it)

CONFIG_FILE = "config.yaml"
RESOLVED_FILE = "resolved.yaml"
MODEL_VERSION = 1
# Tags this trainer writes besides the shared market/, profit/, cost_per_mwh/ and revenue_per_mwh/
# ones (`training.metrics`; their meaning is in `channelmarket.training.callbacks.TAGS`).
IPPO_TAGS: dict[str, str] = {
    "losses/policy_loss": "PPO clipped surrogate loss, mean over the update's minibatches",
    "losses/value_loss": "critic loss (0.5 x squared error to the GAE returns, clipped as in PPO2), in scaled-reward units",
    "losses/entropy": "entropy of the Gaussian policy (sum over the 4 action dimensions)",
    "losses/approx_kl": "approximate KL between the rollout policy and the updated one ((r - 1) - log r)",
    "losses/clipfrac": "share of samples whose probability ratio left [1 - clip, 1 + clip]",
    "losses/explained_variance": "1 - Var(returns - values) / Var(returns) of the rollout",
    "charts/agent_steps_per_s": "env agent-steps (every agent of every market, learners and baselines) per wall "
                                "second since the run (re)started, rollouts and updates included",
    "charts/market_steps_per_s": "market steps (MarketCore.step calls) per wall second",
    "charts/agent_steps": "agent-steps so far (market steps x agents per market)",
    "charts/episodes": "episodes finished (summed over markets)",
    "charts/learning_rate": "Adam learning rate (annealed linearly when anneal_lr)",
    "charts/action_std": "mean standard deviation of the Gaussian policy",
    "profit/all/{learner,baseline}": "profit per agent and episode over all kinds of the group (EUR)",
    "final/<metric>": "the last window's headline metrics and agent-steps/s, also in the HPARAMS tab",
}
LOSS_TAGS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "explained_variance")


class IPPOTrainer:
    """State of one run; `train()` is the function most callers want."""

    # ---- 1. setup: device, markets, networks, normalisers (or a checkpoint) -------------------
    def __init__(self, cfg: IPPOConfig, out_dir: "str | Path", resume: bool = False,
                 run_config: dict | None = None) -> None:
        self.cfg = cfg
        self.run_config = run_config
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CHECKPOINT_DIR).mkdir(exist_ok=True)
        if cfg.torch_threads > 0:
            torch.set_num_threads(int(cfg.torch_threads))
        self.device = resolve_device(cfg.device)
        self.scenario = resolve_scenario(cfg)
        self.n_agents = self.scenario.n_agents
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)

        # the markets: a fresh random subset of each learning kind learns every episode
        self.markets = Markets(self.scenario, n_markets=cfg.n_markets, learners=resolve_learners(cfg.learners),
                               learner_share=cfg.learner_share, background=cfg.background, seed=cfg.seed,
                               learner_draw="random")
        self.kinds = self.markets.learner_kinds   # an alias names only the kinds this market has
        self.obs_dim = self.markets[0].core.obs_dim   # the scenario's kinds fix the width
        # MAPPO's critic input besides the own observation: the env's flat global state (`state()`)
        self.global_dim = len(state_fields(self.scenario)) if cfg.centralized_critic else 0

        # the networks: a shared Gaussian actor on the own observation, a critic (+ globals for MAPPO)
        self.act_dim = self.markets[0].core.n_actions   # the scenario's action columns (5 with partner_action)
        self.actor = GaussianActor(self.obs_dim, self.act_dim, cfg.hidden_sizes, cfg.activation, cfg.init_log_std).to(self.device)
        self.critic = Critic(self.obs_dim + self.global_dim, cfg.hidden_sizes, cfg.activation).to(self.device)
        self.optimizer = torch.optim.Adam(list(self.actor.parameters()) + list(self.critic.parameters()), lr=cfg.lr, eps=1e-5)
        self.obs_rms = RunningMeanStd((self.obs_dim,))
        self.global_rms = RunningMeanStd((self.global_dim,))
        self.ret_rms = GroupedRunningStd(N_KINDS)   # reward scale: one running return std per kind

        self.global_step = 0        # market steps, summed over markets
        self.n_updates = 0
        self.episodes = 0
        self.last_log = 0
        self.last_window: dict[str, float] = {}
        self.recent_learner_profit: deque = deque(maxlen=50)
        self.ret: np.ndarray | None = None   # running discounted return per learner (reward scaling)
        self.resumed_from: str | None = None
        self.resume = bool(resume)
        restored = False
        if resume:
            ck = latest_valid(self.out / CHECKPOINT_DIR, "ckpt")
            if ck is None:
                warnings.warn(f"resume=True but {self.out / CHECKPOINT_DIR} holds no intact checkpoint; starting a new run")
            else:
                restored = ippo_checkpoint.load(self, ck)
                self.resumed_from = str(ck.manifest)
        if not restored:   # (a checkpoint without its markets has already begun new episodes: one more)
            self.markets.reset_many(list(self.markets))
        self._learner_layout()
        if self.ret is None:
            self.ret = np.zeros(self.M)
        self._gather_obs(update_stats=not restored)

    def _learner_layout(self) -> None:
        """Learners of all markets side by side: market m's are rows offsets[m]:offsets[m+1]."""
        sizes = [mk.learn_idx.size for mk in self.markets]
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.M = int(self.offsets[-1])
        self.mkt_of = torch.as_tensor(np.repeat(np.arange(len(self.markets)), sizes), device=self.device)
        self.kind_l = np.concatenate([mk.kind[mk.learn_idx] for mk in self.markets]).astype(np.int64)

    def _gather_obs(self, update_stats: bool) -> None:
        """Gather the learners' observations (and MAPPO's global features) of every market,
        update the normalisers, and keep the normalised tensors for the next forward pass."""
        if self.markets.batched:   # every agent of every market learns, market-major: the batch's rows
            raw = self.markets.obs
            self.alive = self.markets.core.batch.active.copy()
        else:
            raw = np.concatenate([mk.obs[mk.learn_idx] for mk in self.markets])
            self.alive = np.concatenate([mk.core.state.active[mk.learn_idx] for mk in self.markets])
        if self.cfg.norm_obs:
            if update_stats:
                self.obs_rms.update(raw if self.alive.all() else raw[self.alive])
            x = self.obs_rms.normalize(raw, self.cfg.clip_obs)
        else:
            x = raw.astype(np.float32)
        self.obs_t = torch.as_tensor(x, device=self.device)
        if self.global_dim:
            g = np.stack([global_state(self.scenario, mk.kind, mk.core.state.active, mk.obs) for mk in self.markets])
            if self.cfg.norm_obs:
                if update_stats:
                    self.global_rms.update(g)
                g = self.global_rms.normalize(g, self.cfg.clip_obs)
            self.glob_t = torch.as_tensor(g.astype(np.float32), device=self.device)
        else:
            self.glob_t = None

    def _critic_in(self, obs: torch.Tensor, glob: torch.Tensor | None, mkt: torch.Tensor) -> torch.Tensor:
        return obs if glob is None else torch.cat([obs, glob[mkt]], dim=1)

    # ---- 2. rollout: T steps of every market, one forward pass per step ----------------------
    def collect(self, T: int) -> dict[str, torch.Tensor]:
        cfg, dev, M = self.cfg, self.device, self.M
        nm = len(self.markets)
        bufs = getattr(self, "_bufs", None)
        if bufs is None or bufs[0].shape[:2] != (T, M):   # reused between rollouts
            bufs = self._bufs = (
                torch.empty((T, M, self.obs_dim), device=dev),
                torch.empty((T, nm, self.global_dim), device=dev) if self.global_dim else None,
                torch.empty((T, M, self.act_dim), device=dev),
                torch.empty((T, M), device=dev),
                torch.empty((T, M), device=dev),
            )
        buf_obs, buf_glob, buf_act, buf_logp, buf_val = bufs
        rew = np.zeros((T, M), dtype=np.float32)
        done = np.zeros((T, M), dtype=np.float32)
        alive = np.zeros((T, M), dtype=bool)
        for t in range(T):
            obs_t, glob_t = self.obs_t, self.glob_t
            with torch.no_grad():
                mu, log_std = self.actor(obs_t)
                noise = torch.randn_like(mu)
                a = mu + log_std.exp() * noise
                logp = gaussian_logp_from_noise(noise, log_std)
                v = self.critic(self._critic_in(obs_t, glob_t, self.mkt_of))
            buf_obs[t] = obs_t
            if buf_glob is not None:
                buf_glob[t] = glob_t
            buf_act[t], buf_logp[t], buf_val[t] = a, logp, v
            alive[t] = self.alive
            kind_act = self.kind_l  # kinds of the learner slots when acting (a reset may re-draw them)
            a_env = a.clamp_(-1.0, 1.0).cpu().numpy()
            r_l = np.empty(M)
            d_l = np.empty(M, dtype=bool)
            reset_any = False
            if self.markets.batched:   # one call steps every market
                _, r, term, trunc, info = self.markets.step_batch(a_env)
                r_l[:], d_l[:] = r, term | trunc
                ended = [self.markets[int(m)] for m in np.flatnonzero(info["ended"])]
                for mk in ended:
                    self._end_episode(mk)
                if ended:
                    self.markets.reset_many(ended)
                    reset_any = True
            for m, mk in enumerate(self.markets if not self.markets.batched else ()):
                lo, hi = self.offsets[m], self.offsets[m + 1]
                _, r, term, trunc, _ = self.markets.step(mk, a_env[lo:hi])
                r_l[lo:hi] = r[mk.learn_idx]
                d_l[lo:hi] = (term | trunc)[mk.learn_idx]
                if mk.core.done:
                    self._end_episode(mk)
                    self.markets.reset(mk)
                    reset_any = True
            self.global_step += nm
            if reset_any and cfg.learner_share < 1.0:
                self.kind_l = np.concatenate([mk.kind[mk.learn_idx] for mk in self.markets]).astype(np.int64)
            # reward scaling: running std of the discounted return, per agent kind
            if cfg.norm_reward:
                self.ret = self.ret * cfg.gamma + r_l
                self.ret_rms.update(self.ret[alive[t]], kind_act[alive[t]])
                scaled = r_l / self.ret_rms.std()[kind_act]
                if cfg.clip_reward:
                    scaled = np.clip(scaled, -cfg.clip_reward, cfg.clip_reward)
                self.ret[d_l] = 0.0
            else:
                scaled = r_l
            rew[t] = scaled
            done[t] = d_l
            self._gather_obs(update_stats=True)
        with torch.no_grad():
            next_v = self.critic(self._critic_in(self.obs_t, self.glob_t, self.mkt_of))
        return {
            "obs": buf_obs, "glob": buf_glob, "act": buf_act, "logp": buf_logp, "val": buf_val,
            "rew": torch.as_tensor(rew, device=dev), "done": torch.as_tensor(done, device=dev),
            "alive": torch.as_tensor(alive, device=dev), "next_v": next_v,
        }

    def _end_episode(self, mk) -> None:
        lp = mk.ep_profit[mk.is_learner]
        if lp.size:
            self.recent_learner_profit.append(float(lp.mean()))
        self.episodes += 1

    # ---- 3. GAE and 4. the PPO update --------------------------------------------------------
    def update(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        T, M = b["rew"].shape
        with torch.no_grad():
            adv = gae(b["rew"], b["val"], b["done"], b["next_v"], cfg.gamma, cfg.gae_lambda)
            ret = adv + b["val"]

        obs = b["obs"].reshape(T * M, -1)
        act = b["act"].reshape(T * M, -1)
        logp_old = b["logp"].reshape(-1)
        adv_f, ret_f, val_f = adv.reshape(-1), ret.reshape(-1), b["val"].reshape(-1)
        glob = b["glob"].reshape(T * len(self.markets), -1) if b["glob"] is not None else None
        gidx = (torch.arange(T, device=self.device)[:, None] * len(self.markets) + self.mkt_of[None, :]).reshape(-1)
        valid = torch.nonzero(b["alive"].reshape(-1), as_tuple=False).squeeze(1)
        n = int(valid.numel())
        n_use = min(n, cfg.update_samples) if cfg.update_samples else n
        mbs = max(1, min(cfg.minibatch_size, n_use))
        if cfg.anneal_lr:
            frac = max(1.0 - self.global_step / max(cfg.total_steps, 1), 0.02)
            for g in self.optimizer.param_groups:
                g["lr"] = cfg.lr * frac
        params = list(self.actor.parameters()) + list(self.critic.parameters())
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
        n_mb = 0
        stop = False
        for _epoch in range(cfg.epochs):
            perm = valid[torch.randperm(n, device=self.device)[:n_use]]
            kls = []
            for start in range(0, n_use, mbs):
                idx = perm[start:start + mbs]
                mu, log_std = self.actor(obs[idx])
                newlogp = gaussian_logp(act[idx], mu, log_std)
                entropy = gaussian_entropy(log_std[0])
                cin = obs[idx] if glob is None else torch.cat([obs[idx], glob[gidx[idx]]], dim=1)
                newv = self.critic(cin)
                logratio = newlogp - logp_old[idx]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1.0) - logratio).mean()
                    clipfrac = ((ratio - 1.0).abs() > cfg.clip_coef).float().mean()
                a_mb = adv_f[idx]
                if a_mb.numel() > 1:
                    a_mb = (a_mb - a_mb.mean()) / (a_mb.std() + 1e-8)
                pg_loss = torch.max(-a_mb * ratio, -a_mb * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
                r_mb = ret_f[idx]
                if cfg.clip_vloss:
                    v_old = val_f[idx]
                    v_clip = v_old + (newv - v_old).clamp(-cfg.clip_coef, cfg.clip_coef)
                    v_loss = 0.5 * torch.max((newv - r_mb) ** 2, (v_clip - r_mb) ** 2).mean()
                else:
                    v_loss = 0.5 * ((newv - r_mb) ** 2).mean()
                loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                stats["policy_loss"] += pg_loss.item()
                stats["value_loss"] += v_loss.item()
                stats["entropy"] += entropy.item()
                stats["approx_kl"] += float(approx_kl)
                stats["clipfrac"] += float(clipfrac)
                kls.append(float(approx_kl))
                n_mb += 1
            if cfg.target_kl is not None and kls and float(np.mean(kls)) > cfg.target_kl:
                stop = True
                break
        out = {k: v / max(n_mb, 1) for k, v in stats.items()}
        with torch.no_grad():
            y, yhat = ret_f[valid], val_f[valid]
            var_y = torch.var(y)
            out["explained_variance"] = float("nan") if var_y == 0 else float(1 - torch.var(y - yhat) / var_y)
        out["learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        out["action_std"] = float(self.actor.log_std.detach().exp().mean())
        out["early_stop"] = float(stop)
        out["minibatches"] = float(n_mb)
        self.n_updates += 1
        return out

    # ---- 5. log: losses and charts every update, market/profit windows of >= 1 episode -------
    def window_metrics(self) -> dict[str, float]:
        """Market and profit metrics since the last call, by TensorBoard tag (`training.metrics`)."""
        return self.markets.metrics.pop(self.scenario.episode_steps)

    def log(self, writer, losses: dict, window: dict, aps: float) -> None:
        s = self.global_step
        for k in LOSS_TAGS:
            if k in losses and np.isfinite(losses[k]):
                writer.add_scalar(f"losses/{k}", losses[k], s)
        writer.add_scalar("charts/learning_rate", losses.get("learning_rate", self.cfg.lr), s)
        writer.add_scalar("charts/action_std", losses.get("action_std", float("nan")), s)
        writer.add_scalar("charts/agent_steps_per_s", aps, s)
        writer.add_scalar("charts/market_steps_per_s", aps / self.n_agents, s)
        writer.add_scalar("charts/agent_steps", s * self.n_agents, s)
        writer.add_scalar("charts/episodes", self.episodes, s)
        for k, v in window.items():
            writer.add_scalar(k, v, s)

    # ---- 6. checkpoint, model and config files -----------------------------------------------
    def save_checkpoint(self) -> Path:
        return ippo_checkpoint.save(self)

    def load_checkpoint(self, ck) -> None:
        """Continue from a sealed checkpoint (a `Checkpoint` or its manifest path), verified first."""
        restored = ippo_checkpoint.load(self, ck)
        self._learner_layout()
        if self.ret is None:
            self.ret = np.zeros(self.M)
        self._gather_obs(update_stats=not restored)

    def checkpoint_state(self):
        return ippo_checkpoint.checkpoint_state(self)

    def model_state(self) -> dict[str, Any]:
        """The saved policy: tensors, numbers, strings and lists only (`load_ippo` reads it with
        weights_only=True)."""
        return {
            "format": MODEL_FORMAT, "version": MODEL_VERSION,
            "obs_dim": self.obs_dim, "act_dim": self.act_dim, "action_fields": list(self.markets[0].core.action_fields),
            "hidden_sizes": list(self.cfg.hidden_sizes), "activation": self.cfg.activation,
            "actor": {k: v.detach().cpu() for k, v in self.actor.state_dict().items()},
            "norm_obs": bool(self.cfg.norm_obs), "clip_obs": float(self.cfg.clip_obs),
            "obs_rms": self.obs_rms.state_dict(),
            "learners": list(self.kinds), "scenario": self.scenario.name,
            "global_step": int(self.global_step), "config": self.cfg.to_dict(),
            "algorithm": "mappo" if self.cfg.centralized_critic else "ippo",
            "obs_schema": self.markets[0].core.obs_schema.to_dict(),   # checked when the model binds
        }

    def save_model(self) -> Path:
        import io

        path = self.out / MODEL_FILE
        buf = io.BytesIO()
        torch.save(self.model_state(), buf)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def save_config(self) -> Path:
        """config.yaml: the config the user gave (`run_config`: the CLI's TrainConfig, else this
        IPPOConfig), read back by `--resume`; resolved.yaml: this trainer's IPPOConfig and what it
        resolved (learner kinds, the scenario, dimensions, device)."""
        user = self.run_config if self.run_config is not None else self.cfg.to_dict()
        atomic_write_text(self.out / CONFIG_FILE, yaml.safe_dump(plain(user), sort_keys=False))
        resolved = {
            "algorithm": "mappo" if self.cfg.centralized_critic else "ippo",
            "ippo": self.cfg.to_dict(),
            "learner_kinds": list(self.kinds),
            "scenario": self.scenario.to_dict(),
            "n_agents": self.n_agents,
            "learners_per_market": int(self.sizes[0]) if self.sizes else 0,
            "obs_dim": self.obs_dim,
            "critic_input_dim": self.obs_dim + self.global_dim,
            "device": str(self.device),
            "torch": str(torch.__version__),
        }
        atomic_write_text(self.out / RESOLVED_FILE, yaml.safe_dump(plain(resolved), sort_keys=False))
        return self.out / CONFIG_FILE

    # ---- the loop: rollout -> update -> log -> checkpoint, to total_steps -------------------
    def run(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to cfg.total_steps; `stop_at` ends this session earlier, at the first rollout end at
        or past that market step, with a checkpoint (a later `resume` continues exactly)."""
        from torch.utils.tensorboard import SummaryWriter
        from ..eval.progress import progress_bar

        cfg = self.cfg
        self.save_config()
        # a resumed run drops whatever a crashed session logged after its checkpoint and appends
        writer = SummaryWriter(log_dir=str(self.out), purge_step=self.global_step + 1 if self.resume else None)
        if not self.resumed_from:
            writer.add_text("config", "```\n" + (self.out / CONFIG_FILE).read_text() + "\n```", 0)
        start_step = self.global_step
        t0 = time.perf_counter()
        next_ckpt = ((self.global_step // cfg.checkpoint_every) + 1) * cfg.checkpoint_every if cfg.checkpoint_every else None
        losses: dict[str, float] = {}
        end = cfg.total_steps if stop_at is None else min(cfg.total_steps, int(stop_at))
        pbar = progress_bar(cfg.total_steps, initial=min(self.global_step, cfg.total_steps), unit="step",
                            desc=f"{'mappo' if cfg.centralized_critic else 'ippo'} {self.scenario.name}",
                            disable=not cfg.progress, dynamic_ncols=True)
        # market/ and profit/ tags cover at least one whole episode per market (profits follow the
        # time of day) and at least log_every steps; losses and charts are written every update
        # (or every log_every steps)
        window_steps = max(self.scenario.episode_steps * len(self.markets), cfg.log_every)
        try:
            while self.global_step < end:   # whole rollouts: may end up to one rollout past
                before = self.global_step
                batch = self.collect(cfg.rollout_steps)
                losses = self.update(batch)
                del batch
                pbar.update(min(self.global_step, cfg.total_steps) - min(before, cfg.total_steps))
                elapsed = time.perf_counter() - t0
                aps = (self.global_step - start_step) * self.n_agents / max(elapsed, 1e-9)
                done = self.global_step >= cfg.total_steps
                w: dict[str, float] = {}
                if self.markets.metrics.steps >= window_steps or (done and not self.last_window):
                    w = self.window_metrics()
                    self.last_window = w
                if w or not cfg.log_every or self.global_step - self.last_log >= cfg.log_every or done:
                    self.log(writer, losses, w, aps)
                    self.last_log = self.global_step
                postfix = {"agent-steps/s": f"{aps:,.0f}"}
                if self.recent_learner_profit:
                    postfix["learner EUR/ep"] = f"{np.mean(self.recent_learner_profit):.1f}"
                pbar.set_postfix(postfix, refresh=False)
                if next_ckpt is not None and self.global_step >= next_ckpt and not done:
                    self.save_checkpoint()
                    next_ckpt = ((self.global_step // cfg.checkpoint_every) + 1) * cfg.checkpoint_every
        finally:
            pbar.close()
        elapsed = time.perf_counter() - t0
        ran = self.global_step - start_step
        ckpt = self.save_checkpoint()
        last_window = self.last_window
        if self.global_step < cfg.total_steps:   # stopped early (stop_at): no model yet
            writer.flush()
            writer.close()
            return {"global_step": self.global_step, "updates": self.n_updates, "episodes": self.episodes,
                    "checkpoint_path": str(ckpt), "resumed_from": self.resumed_from, "stopped": True}
        model = self.save_model()
        metrics: dict[str, Any] = {
            "global_step": self.global_step,
            "agent_steps": self.global_step * self.n_agents,
            "updates": self.n_updates,
            "episodes": self.episodes,
            "wall_time_s": elapsed,
            "agent_steps_per_s": ran * self.n_agents / elapsed if ran and elapsed > 0 else 0.0,
            "market_steps_per_s": ran / elapsed if ran and elapsed > 0 else 0.0,
            "model_path": str(model),
            "checkpoint_path": str(ckpt),
            "resumed_from": self.resumed_from,
        }
        metrics.update({f"losses/{k}": float(v) for k, v in losses.items()})
        metrics.update({k: float(v) for k, v in last_window.items()})
        hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in self.cfg.to_dict().items()}
        final = {"final/" + k.replace("/", "_"): float(v) for k, v in last_window.items()
                 if k.startswith(("profit/", "cost_per_mwh/")) or k in (
                     "market/clearing_price", "market/volume", "market/failed_payment_share")}
        final["final/agent_steps_per_s"] = float(metrics["agent_steps_per_s"])
        try:
            writer.add_hparams(hp, final, run_name=".", global_step=self.global_step)
        except TypeError:  # older torch without global_step
            writer.add_hparams(hp, final, run_name=".")
        writer.flush()
        writer.close()
        return metrics


def train(cfg: IPPOConfig, out_dir: "str | Path", resume: bool = False, *, stop_at: int | None = None,
          run_config: dict | None = None) -> dict[str, Any]:
    """Train, checkpoint every `cfg.checkpoint_every` market steps, save out_dir/ippo_model.pt and
    out_dir/config.yaml, and return the final metrics (global step, agent-steps/s, last losses,
    last market and profit window under their TensorBoard tags). `resume=True` continues from the
    newest checkpoint in out_dir/checkpoints (a new run if there is none); `cfg.total_steps` is the
    total including the steps already done (the learning rate anneals over it: a resumed run with the
    same total reaches bit for bit the parameters of an uninterrupted one; raising the total on resume
    changes the schedule of the remaining steps). `stop_at` ends the session early with a checkpoint;
    `run_config` is what config.yaml records (the CLI passes its TrainConfig)."""
    if not isinstance(cfg, IPPOConfig):
        raise TypeError(f"train: cfg must be an IPPOConfig, got {type(cfg).__name__}")
    prev = torch.get_num_threads()
    try:
        return IPPOTrainer(cfg, out_dir, resume=resume, run_config=run_config).run(stop_at=stop_at)
    finally:
        if cfg.torch_threads > 0:
            torch.set_num_threads(prev)


__all__ = ["IPPOConfig", "IPPOTrainer", "IPPOPolicy", "train", "load_ippo", "resolve_learners", "resolve_scenario",
           "latest_checkpoint", "list_checkpoints", "MARKET_TAGS", "IPPO_TAGS", "MODEL_FILE"]
