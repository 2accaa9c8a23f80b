"""`IPPOConfig`: every knob of one torch IPPO/MAPPO run, as the trainer (`training.ippo`) reads it.

`channelmarket train --algo ippo|mappo` builds it from the one run config (`TrainConfig` and its
`ippo:` block) with `config.ippo_config`, every field mapped explicitly; the Python API takes
it directly. Steps here count MARKET steps (one `MarketCore.step` of one market), not the
agent-steps of `TrainConfig.total_steps`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from ..envs.scenario import Scenario, get_scenario
from ..envs.state import resolve_kinds

@dataclass
class IPPOConfig:
    """Every knob of a run. Field names are shared with the `channelmarket train` flags."""

    # --- the market ---------------------------------------------------------------------------
    scenario: Any = "energy_default"
    """preset name (`energy_small`, `energy_default`, `energy_1k`, `energy_10k`, ...), a .yaml/.json
    scenario file, a dict of scenario fields or a `Scenario`"""
    n_markets: int = 1
    """markets side by side (independent episodes, different seeds); their learners share one
    forward pass per step. When every agent learns (no background) they are one batched core
    (`MarketCore(..., n_markets=M)`) stepped in one call; otherwise their steps run one after another"""
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
    partner_action: bool = False
    """True: agents get the optional `open_partner` action (the scenario's partner_action turned on; the
    actor has 5 outputs). False: the scenario's own setting"""

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
        if not isinstance(self.partner_action, bool):
            raise ValueError(f"IPPOConfig.partner_action = {self.partner_action!r}; allowed: True or False")
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
            out[f.name] = plain(v)
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


def plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
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
    extra = {"partner_action": True} if cfg.partner_action else {}
    return sc.replace(shock_rate=float(cfg.shock_rate) if cfg.shocks else 0.0, **extra)


def resolve_device(name: str):
    """The torch device of `name` ("auto": CUDA when there is one)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"IPPOConfig.device = {name!r}, but torch has no CUDA here; allowed: 'cpu' or 'auto'")
    return dev


__all__ = ["IPPOConfig", "resolve_learners", "resolve_scenario", "resolve_device", "plain"]
