"""IPPO / MAPPO in plain torch over the array API: the trainer for thousands of agents.

SB3 with one sub-environment per agent stops scaling at thousands of agents. This trainer
works on whole markets: every step, ONE forward pass of a shared actor maps the observations
of all learning agents of all markets, obs [M, O], to Gaussian actions [M, 4] (clipped to
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
MAPPO (`centralized_critic=True`): the critic also sees global features of its market, the
per-kind mean of every observation column (kind shares of sellable/needed energy, liquidity,
state of charge, last trades, ...), [4 x O] values computed with one matmul per market step.
The actor is the same in both (own observation only), so a trained policy runs decentralised.

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

Throughput (env agent-steps per wall second, rollouts and updates included; 2-core machine shared
with other jobs, torch_threads=1, defaults otherwise: T=96, 4 epochs, minibatch 4096):

| scenario        | setting                                              | agent-steps/s |
|-----------------|------------------------------------------------------|---------------|
| energy_default  | all 100 learn, n_markets=4                           | ~55,000       |
| energy_default  | half the sellers learn vs risk_factor, n_markets=4   | ~64,000       |
| energy_default  | MAPPO, all learn, n_markets=4                        | ~48,000       |
| energy_10k      | all 10,000 learn (update_samples=131072)             | ~290,000      |
| energy_10k      | same, minibatch 8192                                 | ~307,000      |
| energy_10k      | MAPPO, minibatch 8192                                | ~244,000      |
| energy_10k      | half the sellers learn vs risk_factor, minibatch 8192| ~276,000      |

At 10k agents a market step costs ~9 ms in the env and ~9 ms in the batched actor + critic
forward; an update (4 x 131k samples) ~1.5 s per 96-step rollout. At 100 agents the env step is
~0.5 ms and per-step Python overhead and the update dominate; more markets side by side do not
raise the rate. torch_threads=2 only pays on an otherwise idle machine (oversubscribed, it is
several times slower).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pickle
import random
import re
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml

from ..envs.core import MarketCore
from ..envs.files import atomic_write_bytes, atomic_write_text
from ..envs.observations import N_OBS, OBS_NAMES, kind_columns
from .good_tags import GoodTags
from ..envs.offers import N_ACTIONS
from ..envs.scenario import Scenario, get_scenario
from ..envs.settlement import BREAKDOWN_FIELDS
from ..envs.shocks import Shock
from ..envs.state import KIND_ALIASES, KIND_NAMES, N_KINDS, resolve_kinds
from ..policies.base import Policy
from ..policies.ippo_policy import MODEL_FILE, MODEL_FORMAT, IPPOPolicy, load_ippo
from ..policies.equilibrium import EquilibriumResult, Forecast
from ..policies.nets import Critic, GaussianActor, GroupedRunningStd, RunningMeanStd
from ..policies.risk_factor import RiskParams
from .checkpoints import MANIFEST_SUFFIX, Checkpoint, latest_valid, prune, verify, write_manifest
from .checkpoints import list_checkpoints as _list_sealed
from .state_codec import decode, encode, load_arrays, save_arrays

CONFIG_FILE = "config.yaml"
RESOLVED_FILE = "resolved.yaml"
CHECKPOINT_DIR = "checkpoints"
MODEL_VERSION = 1
CHECKPOINT_VERSION = 2
# dataclasses a background policy may hold as state (checkpoints rebuild only these)
_STATE_DATACLASSES = {c.__name__: c for c in (RiskParams, EquilibriumResult, Forecast)}


# Market metrics, defined exactly as the SB3 adapter's (`MarketVecEnv.pop_metrics`), so both
# trainers' runs read alike in TensorBoard: market-summary fields averaged per market step into
# `market/<tag>`, the clearing price volume-weighted over the window, and per-agent profits of
# each (kind, learner/baseline) group as EUR per episode (per-step rate x episode steps).
SUMMARY_METRICS = (
    "ref_price", "volume", "supply", "demand", "trades", "negotiations", "failed_payments", "partial_payments",
    "active_channels", "unserved", "curtailed", "grid_bought", "grid_sold", "welfare",
)
_TAG = {"unserved": "unserved_energy", "curtailed": "curtailed_energy"}
MARKET_TAGS = tuple(f"market/{_TAG.get(k, k)}" for k in SUMMARY_METRICS) + (
    "market/clearing_price", "market/supply_demand_balance", "market/shock_share", "market/failed_payment_share")
# Tags this trainer writes besides the shared market/, profit/, cost_per_mwh/ and revenue_per_mwh/
# ones (those mean what `channelmarket.training.callbacks.TAGS` says).
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
_GROUP_FIELDS = ("profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought", "unserved")
_GROUP_COLS = np.array([BREAKDOWN_FIELDS.index(k) for k in _GROUP_FIELDS])
_G = {k: i for i, k in enumerate(_GROUP_FIELDS)}
GROUP_NAMES = ("baseline", "learner")


# ---- configuration ------------------------------------------------------------------------------

@dataclass
class IPPOConfig:
    """Every knob of a run. Field names are shared with the `channelmarket train` flags."""

    # --- the market ---------------------------------------------------------------------------
    scenario: Any = "energy_default"
    """preset name (`energy_small`, `energy_default`, `energy_1k`, `energy_10k`, ...), a .yaml/.json
    scenario file, a dict of scenario fields or a `Scenario`"""
    n_markets: int = 1
    """markets side by side (independent episodes, different seeds); their learners share one
    forward pass per step, their market steps run one after another"""
    learners: Any = ("solar", "wind", "storage", "consumer")
    """agent kinds that learn (one shared actor); a list of kind names or aliases (`all`, `sellers`,
    `generators`, `buyers`, `consumers`), or a comma-separated string"""
    learner_share: float = 1.0
    """share of the agents of each learning kind controlled by the learned policy (a fresh random
    subset each episode); the rest of them is driven by `background`, so learners and baselines
    of the same kind meet in one market (profit/<kind>/learner vs profit/<kind>/baseline)"""
    background: str | None = "risk_factor"
    """baseline `Policy` (`channelmarket.policies.make(name)`) driving every agent that does not
    learn; a path to an `ippo_model.pt` uses a frozen learned policy; None only if all agents learn"""
    shocks: bool = False
    """random shocks during training (robustness): True sets the scenario's shock_rate to `shock_rate`,
    False sets it to 0 (scheduled shocks of the scenario stay)"""
    shock_rate: float = 0.02
    """probability per step that a random shock starts (when `shocks`)"""

    # --- the run ------------------------------------------------------------------------------
    total_steps: int = 200_000
    """market steps of the whole run (summed over the `n_markets` markets); rollouts are whole,
    so a run stops at the first multiple of rollout_steps x n_markets at or past it"""
    seed: int = 0
    """seeds torch, the episodes' market seeds and the learner subsets"""
    device: str = "cpu"
    """torch device of the networks and the update (`cpu`, `cuda`, `cuda:1`, `auto`); the market
    runs on the CPU in NumPy either way"""
    torch_threads: int = 1
    """torch intra-op threads (0 leaves torch's default); the market step is single-threaded NumPy,
    so on a 2-core machine 1 is best for small markets, 2 helps the update of large ones"""
    checkpoint_every: int = 20_000
    """market steps between checkpoints in out_dir/checkpoints/ (0: only the final one)"""
    keep_checkpoints: int = 3
    """checkpoints kept (the oldest are deleted; 0 keeps all)"""
    log_every: int = 0
    """market steps between TensorBoard writes of losses and charts (0: after every update); the
    market/ and profit/ tags are averaged over windows of at least one episode per market and
    at least log_every steps (profits follow the time of day)"""
    progress: bool = True
    """show a tqdm progress bar"""

    # --- the algorithm ----------------------------------------------------------------------------
    centralized_critic: bool = False
    """MAPPO: the critic also sees the per-kind means of all observations of its market; False is
    IPPO (critic on the agent's own observation)"""
    rollout_steps: int = 96
    """steps per market between updates (T); a batch holds T x learners x n_markets samples"""
    epochs: int = 4
    """passes over the batch per update"""
    minibatch_size: int = 4096
    """samples per gradient step (capped at the batch size)"""
    update_samples: int = 131_072
    """samples drawn (without replacement) from the batch for each epoch; 0 uses all of them.
    With thousands of agents one market step already gives thousands of strongly correlated
    samples: the cap keeps the update cost flat in the number of agents (energy_10k, T=96: 960k
    samples per rollout, 131k per epoch); smaller batches (energy_default) are used whole"""
    lr: float = 3e-4
    """Adam learning rate (actor and critic)"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over total_steps"""
    gamma: float = 0.99
    """discount factor per market step"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_coef: float = 0.2
    """PPO ratio clip"""
    clip_vloss: bool = True
    """clip the value loss around the old values, as in PPO2 / CleanRL"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """global gradient norm clip"""
    target_kl: float | None = None
    """stop the update's epochs early when the approximate KL exceeds this (None: never)"""
    hidden_sizes: Sequence[int] = (64, 64)
    """hidden layers of the actor and of the critic"""
    activation: str = "tanh"
    """hidden activation: tanh, relu, elu, silu"""
    init_log_std: float = -0.5
    """initial log std of the Gaussian policy (state-independent, learned)"""
    norm_obs: bool = True
    """normalise observations (and MAPPO's global features) by a running mean/std"""
    norm_reward: bool = True
    """scale rewards by a running std of the discounted return, one per agent kind"""
    clip_obs: float = 10.0
    """clip normalised observations to +-clip_obs"""
    clip_reward: float = 10.0
    """clip scaled rewards to +-clip_reward"""

    def __post_init__(self) -> None:
        if isinstance(self.learners, str):
            self.learners = tuple(p.strip() for p in re.split(r"[,+\s]+", self.learners) if p.strip())
        elif isinstance(self.learners, (list, tuple)):
            self.learners = tuple(self.learners)
        if isinstance(self.hidden_sizes, str):
            self.hidden_sizes = tuple(int(p) for p in re.split(r"[,x\s]+", self.hidden_sizes) if p.strip())
        else:
            self.hidden_sizes = tuple(self.hidden_sizes)
        if isinstance(self.background, str) and self.background.lower() in ("none", ""):
            self.background = None
        self.validate()

    def validate(self) -> None:
        """ValueError/TypeError naming the field, the value and what is allowed."""
        resolve_learners(self.learners)  # raises on unknown kinds
        _int(self, "n_markets", 1)
        _int(self, "total_steps", 0)
        _int(self, "seed", 0)
        _int(self, "torch_threads", 0)
        _int(self, "checkpoint_every", 0)
        _int(self, "keep_checkpoints", 0)
        _int(self, "log_every", 0)
        _int(self, "rollout_steps", 1)
        _int(self, "epochs", 1)
        _int(self, "minibatch_size", 1)
        _int(self, "update_samples", 0)
        _num(self, "learner_share", 0.0, 1.0, lo_open=True)
        _num(self, "shock_rate", 0.0, 1.0)
        _num(self, "lr", 0.0, 1.0, lo_open=True)
        _num(self, "gamma", 0.0, 1.0)
        _num(self, "gae_lambda", 0.0, 1.0)
        _num(self, "clip_coef", 0.0, 10.0, lo_open=True)
        _num(self, "ent_coef", -1.0, 1.0)
        _num(self, "vf_coef", 0.0, 100.0)
        _num(self, "max_grad_norm", 0.0, 1e6, lo_open=True)
        _num(self, "init_log_std", -10.0, 2.0)
        _num(self, "clip_obs", 0.0, 1e6)
        _num(self, "clip_reward", 0.0, 1e6)
        if self.target_kl is not None:
            _num(self, "target_kl", 0.0, 100.0, lo_open=True)
        if not self.hidden_sizes or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                                        for h in self.hidden_sizes):
            raise ValueError(f"IPPOConfig.hidden_sizes = {self.hidden_sizes!r}; allowed: a non-empty list of positive ints")
        if self.activation not in ("tanh", "relu", "elu", "silu"):
            raise ValueError(f"IPPOConfig.activation = {self.activation!r}; allowed: tanh, relu, elu, silu")
        if self.background is not None and not isinstance(self.background, str):
            raise TypeError(f"IPPOConfig.background = {self.background!r}; allowed: a policy name, a model path or None")
        if not isinstance(self.device, str):
            raise TypeError(f"IPPOConfig.device = {self.device!r}; allowed: 'cpu', 'cuda', 'cuda:N', 'auto'")

    # ---- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Scenario):
                v = v.to_dict()
            out[f.name] = _plain(v)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IPPOConfig":
        """From a mapping of fields; a saved config.yaml's extra `resolved` section is ignored."""
        if not isinstance(data, dict):
            raise TypeError(f"IPPO config must be a mapping, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in ("resolved", "algorithm")}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"unknown IPPO config field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path_or_text: "str | Path") -> "IPPOConfig":
        p = Path(str(path_or_text))
        text = p.read_text() if "\n" not in str(path_or_text) and p.exists() else str(path_or_text)
        return cls.from_dict(yaml.safe_load(text) or {})

    def replace(self, **changes: Any) -> "IPPOConfig":
        return dataclasses.replace(self, **changes)


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v


def _int(cfg: IPPOConfig, name: str, lo: int) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"IPPOConfig.{name} = {v!r}; allowed: an integer >= {lo}")
    if v < lo:
        raise ValueError(f"IPPOConfig.{name} = {v!r}; allowed: an integer >= {lo}")


def _num(cfg: IPPOConfig, name: str, lo: float, hi: float, lo_open: bool = False) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"IPPOConfig.{name} = {v!r}; allowed: a number in {'(' if lo_open else '['}{lo}, {hi}]")
    if not (math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi):
        raise ValueError(f"IPPOConfig.{name} = {v!r}; allowed: a number in {'(' if lo_open else '['}{lo}, {hi}]")


def resolve_learners(learners: Any) -> tuple[str, ...]:
    """Kind names (in KIND_NAMES order) from kind names and aliases (`envs.state.KIND_ALIASES`)."""
    return resolve_kinds(learners, what="IPPOConfig.learners")


def resolve_scenario(cfg: IPPOConfig) -> Scenario:
    """The scenario of a run, with random shocks switched on or off."""
    sc = get_scenario(cfg.scenario)
    return sc.replace(shock_rate=float(cfg.shock_rate) if cfg.shocks else 0.0)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"IPPOConfig.device = {name!r}, but torch has no CUDA here; allowed: 'cpu' or 'auto'")
    return dev


def make_background(name: str | None) -> Policy | None:
    if name is None:
        return None
    if name.endswith(".pt") or os.path.isdir(name):
        return load_ippo(name)
    from ..policies.registry import make

    return make(name)


# ---- one market ---------------------------------------------------------------------------------

class _Market:
    """One MarketCore, its background policy, the learner subset of the current episode and the
    episode's running per-agent profit (checkpoints carry it mid-episode as arrays and JSON)."""

    def __init__(self, sc: Scenario, index: int, cfg: IPPOConfig, kinds: tuple[str, ...]) -> None:
        self.index = index
        self.seed = int(cfg.seed)
        self.core = MarketCore(sc)
        self.n = self.core.n_agents
        self.learner_kinds = np.array([KIND_NAMES.index(k) for k in kinds], dtype=np.int64)
        self.share = float(cfg.learner_share)
        self.background = cfg.background
        self.bg: Policy | None = None
        self.episode = -1
        self.actions = np.zeros((self.n, N_ACTIONS), dtype=np.float64)
        self.obs: np.ndarray | None = None
        self.learn_idx = np.zeros(0, dtype=np.int64)
        self.bg_idx = np.zeros(0, dtype=np.int64)
        self.is_learner = np.zeros(self.n, dtype=bool)
        self.ep_profit = np.zeros(self.n)

    def reset(self) -> None:
        self.episode += 1
        ss = np.random.SeedSequence([self.seed, 0x1990, self.index, self.episode])
        env_ss, pick_ss, bg_ss = ss.spawn(3)
        self.obs = self.core.reset(env_ss)
        kind = self.core.agents.kind.astype(np.int64)
        eligible = np.isin(kind, self.learner_kinds)
        if self.share < 1.0:
            rng = np.random.default_rng(pick_ss)
            # a random subset of fixed size per kind: kinds are laid out in blocks, so ranking a
            # random key within each kind picks round(share * count) of them
            key = rng.random(self.n) + kind * 2.0
            order = np.argsort(key, kind="stable")
            counts = np.bincount(kind, minlength=N_KINDS)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            take = np.maximum(np.rint(self.share * counts).astype(np.int64), (counts > 0).astype(np.int64))
            rank = np.empty(self.n, dtype=np.int64)
            rank[order] = np.arange(self.n) - starts[kind[order]]
            eligible &= rank < take[kind]
        self.is_learner = eligible
        self.learn_idx = np.flatnonzero(eligible)
        self.bg_idx = np.flatnonzero(~eligible)
        if self.bg_idx.size:
            if self.background is None:
                raise ValueError(
                    f"IPPOConfig.background is None but {self.bg_idx.size} agents do not learn "
                    f"(learners: {[KIND_NAMES[k] for k in self.learner_kinds]}, learner_share={self.share}); "
                    "name a baseline policy")
            if self.bg is None:
                self.bg = make_background(self.background)
            self.bg.bind(self.core, self.bg_idx, seed=bg_ss)
        self.ep_profit = np.zeros(self.n)

    @property
    def kind(self) -> np.ndarray:
        return self.core.agents.kind


# ---- the trainer ----------------------------------------------------------------------------------

class IPPOTrainer:
    """State of one run; `train()` is the function most callers want."""

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
        self.kinds = resolve_learners(cfg.learners)
        self.scenario = resolve_scenario(cfg)
        present = tuple(k for k in self.kinds if self.scenario.count(k) > 0)
        self.kinds = present or self.kinds   # an alias names only the kinds this market has
        self.n_agents = self.scenario.n_agents

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)

        self.markets = [_Market(self.scenario, i, cfg, self.kinds) for i in range(cfg.n_markets)]
        self.obs_dim = self.markets[0].core.obs_dim   # the scenario's kinds fix the width
        kc = kind_columns(self.scenario)
        self.kind_cols = kc[kc >= 0]                   # the observation's kind one-hot columns
        self.global_dim = self.kind_cols.shape[0] * self.obs_dim if cfg.centralized_critic else 0
        self.actor = GaussianActor(self.obs_dim, N_ACTIONS, cfg.hidden_sizes, cfg.activation, cfg.init_log_std).to(self.device)
        self.critic = Critic(self.obs_dim + self.global_dim, cfg.hidden_sizes, cfg.activation).to(self.device)
        self.optimizer = torch.optim.Adam(list(self.actor.parameters()) + list(self.critic.parameters()), lr=cfg.lr, eps=1e-5)
        self.obs_rms = RunningMeanStd((self.obs_dim,))
        self.global_rms = RunningMeanStd((self.global_dim,))
        self.ret_rms = GroupedRunningStd(N_KINDS)

        self.global_step = 0
        self.n_updates = 0
        self.episodes = 0
        self.resumed_from: str | None = None
        self.resume = bool(resume)
        self._started = False
        self._reset_window()
        self._last_log = 0
        self._last_window: dict[str, float] = {}
        self.recent_learner_profit: deque = deque(maxlen=50)
        if resume:
            ck = latest_valid(self.out / CHECKPOINT_DIR, "ckpt")
            if ck is None:
                warnings.warn(f"resume=True but {self.out / CHECKPOINT_DIR} holds no intact checkpoint; starting a new run")
            else:
                self.load_checkpoint(ck)
                self.resumed_from = str(ck.manifest)
        if not self._started:
            for mk in self.markets:
                mk.reset()
            self._ret = None
        self._init_learner_layout()
        if self._ret is None:
            self._ret = np.zeros(self.M)
        self._refresh_obs(update_stats=not self._started)
        self._started = True

    # ---- learner layout across markets --------------------------------------------------------
    def _init_learner_layout(self) -> None:
        sizes = [mk.learn_idx.size for mk in self.markets]
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.M = int(self.offsets[-1])
        if self.M == 0:
            raise ValueError(f"no agent of the learning kinds {self.kinds} in scenario {self.scenario.name!r}")
        self.mkt_of = torch.as_tensor(np.repeat(np.arange(len(self.markets)), sizes), device=self.device)
        self._refresh_kinds()

    def _refresh_kinds(self) -> None:
        self.kind_l = np.concatenate([mk.kind[mk.learn_idx] for mk in self.markets]).astype(np.int64)

    def _refresh_obs(self, update_stats: bool) -> None:
        """Gather the learners' observations (and MAPPO's global features) of every market,
        update the normalisers, and keep the normalised tensors for the next forward pass."""
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
            g = np.stack([_global_features(mk.obs, self.kind_cols) for mk in self.markets])
            if self.cfg.norm_obs:
                if update_stats:
                    self.global_rms.update(g)
                g = self.global_rms.normalize(g, self.cfg.clip_obs)
            self.glob_t = torch.as_tensor(g.astype(np.float32), device=self.device)
        else:
            self.glob_t = None

    def _critic_in(self, obs: torch.Tensor, glob: torch.Tensor | None, mkt: torch.Tensor) -> torch.Tensor:
        if glob is None:
            return obs
        return torch.cat([obs, glob[mkt]], dim=1)

    # ---- rollouts ------------------------------------------------------------------------------
    def collect(self, T: int) -> dict[str, torch.Tensor]:
        cfg, dev, M = self.cfg, self.device, self.M
        nm = len(self.markets)
        bufs = getattr(self, "_bufs", None)
        if bufs is None or bufs[0].shape[:2] != (T, M):   # reused between rollouts
            bufs = self._bufs = (
                torch.empty((T, M, self.obs_dim), device=dev),
                torch.empty((T, nm, self.global_dim), device=dev) if self.global_dim else None,
                torch.empty((T, M, N_ACTIONS), device=dev),
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
                logp = _gaussian_logp_from_noise(noise, log_std)
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
            for m, mk in enumerate(self.markets):
                lo, hi = self.offsets[m], self.offsets[m + 1]
                acts = mk.actions
                acts[mk.learn_idx] = a_env[lo:hi]
                if mk.bg is not None and mk.bg_idx.size:
                    acts[mk.bg_idx] = mk.bg.act(mk.obs[mk.bg_idx])
                obs, r, term, trunc, info = mk.core.step(acts)
                if mk.bg is not None and mk.bg_idx.size:
                    mk.bg.update(mk.core)
                self._record_market(mk, info)
                mk.ep_profit += r
                r_l[lo:hi] = r[mk.learn_idx]
                d_l[lo:hi] = (term | trunc)[mk.learn_idx]
                mk.obs = obs
                if mk.core.done:
                    self._end_episode(mk)
                    mk.reset()
                    reset_any = True
            self.global_step += nm
            if reset_any and cfg.learner_share < 1.0:
                self._refresh_kinds()
            # reward scaling: running std of the discounted return, per agent kind
            if cfg.norm_reward:
                self._ret = self._ret * cfg.gamma + r_l
                self.ret_rms.update(self._ret[alive[t]], kind_act[alive[t]])
                scaled = r_l / self.ret_rms.std()[kind_act]
                if cfg.clip_reward:
                    scaled = np.clip(scaled, -cfg.clip_reward, cfg.clip_reward)
                self._ret[d_l] = 0.0
            else:
                scaled = r_l
            rew[t] = scaled
            done[t] = d_l
            self._refresh_obs(update_stats=True)
        with torch.no_grad():
            next_v = self.critic(self._critic_in(self.obs_t, self.glob_t, self.mkt_of))
        return {
            "obs": buf_obs, "glob": buf_glob, "act": buf_act, "logp": buf_logp, "val": buf_val,
            "rew": torch.as_tensor(rew, device=dev), "done": torch.as_tensor(done, device=dev),
            "alive": torch.as_tensor(alive, device=dev), "next_v": next_v,
        }

    # ---- the PPO update ------------------------------------------------------------------------
    def update(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        T, M = b["rew"].shape
        gamma, lam = cfg.gamma, cfg.gae_lambda
        with torch.no_grad():
            adv = torch.zeros_like(b["rew"])
            last = torch.zeros(M, device=self.device)
            for t in reversed(range(T)):
                nv = b["next_v"] if t == T - 1 else b["val"][t + 1]
                nonterm = 1.0 - b["done"][t]
                delta = b["rew"][t] + gamma * nv * nonterm - b["val"][t]
                last = delta + gamma * lam * nonterm * last
                adv[t] = last
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
                newlogp = _gaussian_logp(act[idx], mu, log_std)
                entropy = (log_std[0] + _HALF_LOG_2PI_E).sum()
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

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _reset_window(self) -> None:
        self._mkt_sum = np.zeros(len(SUMMARY_METRICS))
        self._good_tags = GoodTags(self.scenario.goods[1:])
        self._vwap_sum = 0.0
        self._imb_sum = 0.0
        self._shock_steps = 0
        self._mkt_n = 0
        self._grp_sum = np.zeros((2 * N_KINDS, len(_GROUP_FIELDS)))
        self._grp_agent_steps = np.zeros(2 * N_KINDS)

    def _record_market(self, mk: _Market, info: dict) -> None:
        s = info["summary"]
        self._mkt_sum += [s[k] for k in SUMMARY_METRICS]
        self._good_tags.add(s)
        self._vwap_sum += s["clearing_price"] * s["volume"]
        sup, dem = s["supply"], s["demand"]
        self._imb_sum += (dem - sup) / (dem + sup) if dem + sup > 0 else 0.0
        self._shock_steps += s["shock"] != Shock.NONE.name
        self._mkt_n += 1
        grp = 2 * mk.kind.astype(np.int64) + mk.is_learner
        nf = _GROUP_COLS.shape[0]
        cell = (grp[:, None] * nf + np.arange(nf)).ravel()
        self._grp_sum += np.bincount(cell, weights=info["breakdown"][:, _GROUP_COLS].ravel(),
                                     minlength=2 * N_KINDS * nf).reshape(2 * N_KINDS, nf)
        self._grp_agent_steps += np.bincount(grp, minlength=2 * N_KINDS)

    def _end_episode(self, mk: _Market) -> None:
        lp = mk.ep_profit[mk.is_learner]
        if lp.size:
            self.recent_learner_profit.append(float(lp.mean()))
        self.episodes += 1

    def window_metrics(self) -> dict[str, float]:
        """Market and profit metrics since the last call, by TensorBoard tag (NaN-free: a clearing
        price with no volume in the window is left out)."""
        n = self._mkt_n
        out: dict[str, float] = {}
        if n == 0:
            return out
        s = self._mkt_sum
        for i, k in enumerate(SUMMARY_METRICS):
            out[f"market/{_TAG.get(k, k)}"] = s[i] / n
        out.update(self._good_tags.pop(n))   # further goods (certificates), if the market has any
        vol = s[SUMMARY_METRICS.index("volume")]
        if vol > 0:
            out["market/clearing_price"] = self._vwap_sum / vol
        out["market/supply_demand_balance"] = self._imb_sum / n
        out["market/shock_share"] = self._shock_steps / n
        att = s[SUMMARY_METRICS.index("trades")] + s[SUMMARY_METRICS.index("failed_payments")]
        out["market/failed_payment_share"] = s[SUMMARY_METRICS.index("failed_payments")] / att if att > 0 else 0.0
        g, ep = self._grp_sum, self.scenario.episode_steps
        for k, kname in enumerate(KIND_NAMES):
            for c, cname in enumerate(GROUP_NAMES):
                gi = 2 * k + c
                cnt = self._grp_agent_steps[gi]
                if cnt == 0:
                    continue
                out[f"profit/{kname}/{cname}"] = g[gi, _G["profit"]] / cnt * ep
                if kname in KIND_ALIASES["buyers"]:
                    served = g[gi, _G["bought"]] + g[gi, _G["grid_bought"]]
                    if served > 0:
                        out[f"cost_per_mwh/{kname}/{cname}"] = g[gi, _G["cost"]] / served
                if kname in KIND_ALIASES["sellers"]:
                    sold = g[gi, _G["sold"]] + g[gi, _G["grid_sold"]]
                    if sold > 0:
                        out[f"revenue_per_mwh/{kname}/{cname}"] = g[gi, _G["revenue"]] / sold
        for c, cname in enumerate(GROUP_NAMES):
            cnt = self._grp_agent_steps[c::2].sum()
            if cnt:
                out[f"profit/all/{cname}"] = g[c::2, _G["profit"]].sum() / cnt * ep
        return out

    # ---- checkpoints and the model ----------------------------------------------------------------
    # A checkpoint `checkpoints/ckpt_<step>` is three files sealed by a manifest
    # (`training.checkpoints`): `.pt` the tensors (actor, critic, optimizer, torch RNG; loaded with
    # weights_only=True), `.npz` every array of the markets, background policies and run state
    # (allow_pickle=False), `.json` everything else (counters, config, normalisers, generator
    # states). Nothing in it is a pickle.
    def _market_state(self, mk: "_Market") -> dict[str, Any]:
        bg = None
        if mk.bg is not None:
            static = set(getattr(type(mk.bg), "static_attributes", ())) | {"core"}
            bg = {k: v for k, v in vars(mk.bg).items() if k not in static}
        return {"episode": mk.episode, "core": mk.core.state_dict(), "actions": mk.actions, "obs": mk.obs,
                "learn_idx": mk.learn_idx, "bg_idx": mk.bg_idx, "is_learner": mk.is_learner,
                "ep_profit": mk.ep_profit, "background": bg}

    def _load_market_state(self, mk: "_Market", d: dict[str, Any]) -> None:
        mk.core.load_state_dict(d["core"])
        mk.episode = int(d["episode"])
        mk.actions, mk.obs, mk.ep_profit = d["actions"], d["obs"], d["ep_profit"]
        mk.learn_idx, mk.bg_idx, mk.is_learner = d["learn_idx"], d["bg_idx"], d["is_learner"]
        if d["background"] is not None:
            if mk.bg is None:
                mk.bg = make_background(mk.background)
            mk.bg.core = mk.core
            for k, v in d["background"].items():
                setattr(mk.bg, k, v)

    def checkpoint_state(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
        """(tensors, JSON document, arrays) of the run: everything `load_checkpoint` needs to continue
        exactly where the run stands."""
        tensors = {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                   "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        arrays: dict[str, np.ndarray] = {}
        try:
            markets = encode([self._market_state(mk) for mk in self.markets], arrays, _STATE_DATACLASSES)
        except TypeError as exc:  # a background policy with state that is not plain data
            warnings.warn(f"markets could not be saved in the checkpoint ({exc}); resume will start new episodes")
            arrays, markets = {}, None
        ver, internal, gauss = random.getstate()
        log = {"window": [self._mkt_sum, self._vwap_sum, self._imb_sum, self._shock_steps, self._mkt_n,
                          self._grp_sum, self._grp_agent_steps],
               "last_log": self._last_log, "last_window": dict(self._last_window),
               "recent_learner_profit": list(self.recent_learner_profit)}
        doc = {
            "format": MODEL_FORMAT + ".checkpoint", "version": CHECKPOINT_VERSION,
            "global_step": self.global_step, "n_updates": self.n_updates, "episodes": self.episodes,
            "config": self.cfg.to_dict(), "n_agents": self.n_agents, "kinds": list(self.kinds),
            "obs_rms": self.obs_rms.state_dict(), "global_rms": self.global_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
            "python_rng": [ver, list(internal), gauss],
            "markets": markets,
            "ret": encode(self._ret, arrays),
            "log": encode(log, arrays),
        }
        return tensors, doc, arrays

    def save_checkpoint(self) -> Path:
        """Write checkpoints/ckpt_<step>.{pt,npz,json}, each atomically, seal them with the manifest,
        and prune the oldest; a checkpoint already sealed at this step is kept as it is."""
        d = self.out / CHECKPOINT_DIR
        step = self.global_step
        manifest = d / f"ckpt_{step}{MANIFEST_SUFFIX}"
        if manifest.exists() and verify(manifest)[0] is not None:
            return manifest
        tensors, doc, arrays = self.checkpoint_state()
        buf = io.BytesIO()
        torch.save(tensors, buf)
        files = [d / f"ckpt_{step}.pt", d / f"ckpt_{step}.npz", d / f"ckpt_{step}.json"]
        atomic_write_bytes(files[0], buf.getvalue())
        atomic_write_bytes(files[1], save_arrays(arrays))
        atomic_write_text(files[2], json.dumps(doc, sort_keys=True) + "\n")
        path = write_manifest(d, "ckpt", step, files, extra={"format": doc["format"], "version": CHECKPOINT_VERSION})
        if self.cfg.keep_checkpoints:
            prune(d, "ckpt", keep=self.cfg.keep_checkpoints)
        return path

    def load_checkpoint(self, ck: "Checkpoint | str | Path") -> None:
        """Continue from a sealed checkpoint (a `Checkpoint` or its manifest path), verified first."""
        if not isinstance(ck, Checkpoint):
            found, why = verify(ck)
            if found is None:
                raise ValueError(f"checkpoint {ck} is damaged or incomplete: {why}")
            ck = found
        name = ck.manifest.name[:-len(MANIFEST_SUFFIX)]
        try:
            doc = json.loads(ck.path(name + ".json").read_text(encoding="utf-8"))
            arrays = load_arrays(ck.path(name + ".npz"))
            tensors = torch.load(ck.path(name + ".pt"), map_location=self.device, weights_only=True)
        except (OSError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
            raise ValueError(f"checkpoint {ck.manifest} cannot be read: {exc}") from None
        path = ck.manifest
        if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT + ".checkpoint":
            raise ValueError(f"checkpoint {path} is not an IPPO checkpoint (format {doc.get('format')!r})")
        if doc.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint {path} has version {doc.get('version')!r}; this version reads {CHECKPOINT_VERSION}")
        if doc.get("n_agents") != self.n_agents:
            raise ValueError(f"checkpoint {path} is for {doc.get('n_agents')} agents per market; this config's "
                             f"scenario has {self.n_agents}")
        if tuple(doc.get("kinds", ())) != self.kinds:
            raise ValueError(f"checkpoint {path} trained learners {doc.get('kinds')}; this config has {list(self.kinds)}")
        ccfg = doc.get("config", {})
        if bool(ccfg.get("centralized_critic")) != bool(self.cfg.centralized_critic) or \
                list(ccfg.get("hidden_sizes", [])) != list(self.cfg.hidden_sizes):
            raise ValueError(f"checkpoint {path}: centralized_critic/hidden_sizes differ from this config")
        self.actor.load_state_dict(tensors["actor"])
        self.critic.load_state_dict(tensors["critic"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        for g in self.optimizer.param_groups:  # the config's learning rate wins (annealing resets it per update)
            g["lr"] = self.cfg.lr
        self.obs_rms.load_state_dict(doc["obs_rms"])
        self.global_rms.load_state_dict(doc["global_rms"])
        self.ret_rms.load_state_dict(doc["ret_rms"])
        torch.set_rng_state(tensors["torch_rng"])
        ver, internal, gauss = doc["python_rng"]
        random.setstate((int(ver), tuple(int(x) for x in internal), gauss))
        self.global_step = int(doc["global_step"])
        self.n_updates = int(doc["n_updates"])
        self.episodes = int(doc.get("episodes", 0))
        log = decode(doc["log"], arrays)
        (self._mkt_sum, self._vwap_sum, self._imb_sum, self._shock_steps, self._mkt_n,
         self._grp_sum, self._grp_agent_steps) = log["window"]
        self._last_log = int(log["last_log"])
        self._last_window = dict(log["last_window"])
        self.recent_learner_profit.extend(log["recent_learner_profit"])
        restored = False
        if doc.get("markets") is not None:
            states = decode(doc["markets"], arrays, _STATE_DATACLASSES)
            if len(states) == len(self.markets):
                for mk, st in zip(self.markets, states):
                    self._load_market_state(mk, st)
                self._ret = decode(doc["ret"], arrays)
                restored = True
        if not restored:
            for mk in self.markets:  # new episodes, numbered after the checkpoint's
                mk.episode = self.episodes + 1000 * mk.index
                mk.reset()
            self._ret = None
        self._started = restored

    def model_state(self) -> dict[str, Any]:
        """The saved policy: tensors, numbers, strings and lists only (`load_ippo` reads it with
        weights_only=True)."""
        return {
            "format": MODEL_FORMAT, "version": MODEL_VERSION,
            "obs_dim": self.obs_dim, "act_dim": N_ACTIONS,
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
        atomic_write_text(self.out / CONFIG_FILE, yaml.safe_dump(_plain(user), sort_keys=False))
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
        path = self.out / RESOLVED_FILE
        atomic_write_text(path, yaml.safe_dump(_plain(resolved), sort_keys=False))
        return self.out / CONFIG_FILE

    # ---- the loop --------------------------------------------------------------------------------
    def run(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to cfg.total_steps; `stop_at` ends this session earlier, at the first rollout end at
        or past that market step, with a checkpoint (a later `resume` continues exactly)."""
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

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
        pbar = tqdm(total=cfg.total_steps, initial=min(self.global_step, cfg.total_steps), unit="step",
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
                if self._mkt_n >= window_steps or (done and not self._last_window):
                    w = self.window_metrics()
                    self._last_window = w
                    self._reset_window()
                if w or not cfg.log_every or self.global_step - self._last_log >= cfg.log_every or done:
                    self._write(writer, losses, w, aps)
                    self._last_log = self.global_step
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
        last_window = self._last_window
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

    def _write(self, writer, losses: dict, window: dict, aps: float) -> None:
        s = self.global_step
        for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "explained_variance"):
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


# ---- helpers ------------------------------------------------------------------------------------

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)


def _gaussian_logp(a: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(a; mu, exp(log_std)) summed over the action dimensions (no Distribution object:
    its argument checks cost more than the arithmetic at these sizes)."""
    z = (a - mu) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(-1)


def _gaussian_logp_from_noise(noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return (-0.5 * noise * noise - log_std - _HALF_LOG_2PI).sum(-1)


def _global_features(obs: np.ndarray, kind_cols: "np.ndarray | None" = None) -> np.ndarray:
    """Per-kind mean of every observation column, flattened [K * O] (MAPPO's critic input).
    The kind one-hot is in columns `kind_cols` and inactive agents' rows are zero, so one matmul does it."""
    if kind_cols is None:   # the standard layout: the standard kinds' columns first
        kind_cols = np.flatnonzero([name.startswith("kind_") for name in OBS_NAMES])
    onehot = obs[:, kind_cols].astype(np.float64)
    counts = onehot.sum(axis=0)
    sums = onehot.T @ obs.astype(np.float64)
    return (sums / np.maximum(counts, 1.0)[:, None]).reshape(-1)


def list_checkpoints(out_dir: "str | Path") -> list[Path]:
    """Manifests of the run's sealed checkpoints, oldest first (not verified)."""
    return [p for _, p in _list_sealed(Path(out_dir) / CHECKPOINT_DIR, "ckpt")]


def latest_checkpoint(out_dir: "str | Path") -> Path | None:
    """Manifest of the newest intact checkpoint (damaged newer ones are skipped with a warning)."""
    ck = latest_valid(Path(out_dir) / CHECKPOINT_DIR, "ckpt")
    return ck.manifest if ck is not None else None


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


# ---- the learned policy ---------------------------------------------------------------------------

__all__ = ["IPPOConfig", "IPPOTrainer", "IPPOPolicy", "train", "load_ippo", "resolve_learners", "resolve_scenario",
           "latest_checkpoint", "list_checkpoints", "MARKET_TAGS", "IPPO_TAGS", "MODEL_FILE"]
