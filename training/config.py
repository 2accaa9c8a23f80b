"""`TrainConfig`: every knob of a training run, one documented field each (CleanRL style).

A run is fully described by its resolved config, saved as `config.yaml` in the run folder;
`--config FILE.yaml` loads one and command-line flags override single fields. Unknown keys
raise, naming the key and the allowed fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ALGOS = ("ppo", "sac", "td3", "ippo", "mappo")
ROLES = ("shared", "split")


@dataclass
class TrainConfig:
    """Configuration of one training run (SB3 algorithms over `MarketVecEnv`)."""

    # --- market ----------------------------------------------------------------------------
    scenario: str = "energy_default"
    """Scenario preset name or YAML/JSON file of the market trained in."""
    learners: str = "all"
    """Agent kinds that learn: comma list of solar, wind, storage, consumer; or sellers, buyers, all."""
    learner_share: float = 0.5
    """Share of each learner kind controlled by the learning policy; the rest of the kind is driven
    by `background`, so learners meet baseline agents of their own kind in the same market."""
    background: str = "risk_factor"
    """Registry name of the baseline driving every agent that does not learn."""
    roles: str = "shared"
    """'shared': one policy for every learner kind (the kind is in the observation); 'split': one
    policy per role, pricing for sellers (solar, wind, storage) and bidding for buyers (consumers),
    trained in alternation, each facing the other frozen."""
    role_phase_steps: int = 50_000
    """Split roles: agent-steps one role trains before the other takes over."""
    shocks: bool = True
    """Random supply/demand shocks during training (robustness): on sets the scenario's shock_rate to
    `shock_rate`, off sets it to 0 (the scenario's scheduled shocks stay)."""
    shock_rate: float = 0.02
    """Per-step probability that a random shock starts (when `shocks` is on)."""
    n_markets: int = 2
    """Markets simulated side by side; the batch per step is n_markets x learners per market."""
    reward_scale: str = "agent"
    """'agent': profit / (retail tariff x the agent's energy scale) so large and small agents weigh
    alike; 'eur': raw profit in EUR per step."""

    # --- run -------------------------------------------------------------------------------------
    algo: str = "ppo"
    """ppo (default), sac or td3 (continuous actions), ippo or mappo (torch trainer for large markets)."""
    total_steps: int = 500_000
    """Agent-steps to train (SB3 timesteps: one per learning agent per market step)."""
    seed: int = 0
    """Seed of the networks and of every training episode (held-out evaluation seeds start at 10_000)."""
    device: str = "cpu"
    """Torch device: cpu, cuda, auto."""
    checkpoint_every: int = 100_000
    """Save a checkpoint (model, normalisation statistics, step counter) every K agent-steps."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk (the newest)."""
    progress_bar: bool = True
    """Show a tqdm progress bar."""
    verbose: int = 0
    """SB3 verbosity (1 also prints the logged table every rollout)."""

    # --- normalisation -------------------------------------------------------------------------
    normalize_obs: bool = True
    """Running mean/std normalisation of observations (VecNormalize); saved with the model."""
    normalize_reward: bool = True
    """Scale rewards by the running std of the discounted return (VecNormalize)."""
    clip_obs: float = 10.0
    """Clip normalised observations to +- this."""

    # --- algorithm hyperparameters ---------------------------------------------------------------
    learning_rate: float = 3e-4
    """Adam step size."""
    gamma: float = 0.95
    """Discount per 15-minute step (0.95: a horizon of ~5 hours)."""
    n_steps: int = 96
    """PPO: market steps per rollout (x num_envs agent-steps); one episode by default."""
    batch_size: int = 2048
    """Minibatch size (PPO) or replay batch (SAC/TD3)."""
    n_epochs: int = 5
    """PPO: passes over each rollout."""
    gae_lambda: float = 0.9
    """PPO: GAE lambda."""
    clip_range: float = 0.2
    """PPO: policy ratio clip."""
    ent_coef: float = 0.0
    """PPO: entropy bonus."""
    vf_coef: float = 0.5
    """PPO: value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient norm clip."""
    log_std_init: float = -0.5
    """Initial log std of the Gaussian policy (PPO)."""
    net_arch: list = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of actor and critic."""
    buffer_size: int = 200_000
    """SAC/TD3: replay buffer size (agent transitions)."""
    learning_starts: int = 5_000
    """SAC/TD3: agent-steps of random actions before learning."""
    train_freq: int = 1
    """SAC/TD3: market steps between updates."""
    gradient_steps: int = 4
    """SAC/TD3: gradient steps per update."""
    tau: float = 0.005
    """SAC/TD3: target network soft-update rate."""
    algo_kwargs: dict = field(default_factory=dict)
    """Any further keyword arguments of the SB3 algorithm constructor."""

    # ---------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"config.algo = {self.algo!r}; allowed: {', '.join(ALGOS)}")
        if self.roles not in ROLES:
            raise ValueError(f"config.roles = {self.roles!r}; allowed: {', '.join(ROLES)}")
        if self.reward_scale not in ("agent", "eur"):
            raise ValueError(f"config.reward_scale = {self.reward_scale!r}; allowed: agent, eur")
        for name in ("total_steps", "n_markets", "checkpoint_every", "n_steps", "batch_size", "n_epochs",
                     "role_phase_steps", "keep_checkpoints"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"config.{name} = {v!r}; allowed: an integer >= 1")
        if not 0.0 < self.learner_share <= 1.0:
            raise ValueError(f"config.learner_share = {self.learner_share!r}; allowed: (0, 1]")
        if not 0.0 <= self.shock_rate <= 1.0:
            raise ValueError(f"config.shock_rate = {self.shock_rate!r}; allowed: [0, 1]")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"config.gamma = {self.gamma!r}; allowed: (0, 1]")
        for name, lo, hi, lo_open in (("learning_rate", 0.0, 1.0, True), ("gae_lambda", 0.0, 1.0, False),
                                      ("clip_range", 0.0, 10.0, True), ("ent_coef", -1.0, 1.0, False),
                                      ("vf_coef", 0.0, 100.0, False), ("max_grad_norm", 0.0, 1e6, True),
                                      ("clip_obs", 0.0, 1e6, True), ("log_std_init", -10.0, 2.0, False),
                                      ("tau", 0.0, 1.0, True)):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
                and (lo < v if lo_open else lo <= v) and v <= hi
            if not ok:
                raise ValueError(f"config.{name} = {v!r}; allowed: a number in {'(' if lo_open else '['}{lo}, {hi}]")
        if not isinstance(self.net_arch, (list, tuple)) or not self.net_arch or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.net_arch):
            raise ValueError(f"config.net_arch = {self.net_arch!r}; allowed: a non-empty list of positive integers")
        if self.roles == "split" and self.algo in ("ippo", "mappo"):
            raise ValueError("config.roles = 'split' is supported by the SB3 algorithms (ppo, sac, td3) only")
        from .vec_env import parse_kinds

        parse_kinds(self.learners)
        self._check_scenario()
        self._check_background()

    def _check_scenario(self) -> None:
        from ..envs.scenario import get_scenario

        try:
            get_scenario(self.scenario)
        except FileNotFoundError:
            raise ValueError(f"config.scenario = {self.scenario!r}: no such scenario file; allowed: a preset name "
                             "or a .yaml/.json scenario file") from None
        except (ValueError, TypeError, OSError) as exc:
            msg = " ".join(str(exc).split())
            raise ValueError(f"config.scenario = {self.scenario!r}: {msg}") from None

    def _check_background(self) -> None:
        from ..policies.registry import REGISTRY

        bg = self.background
        if isinstance(bg, str) and bg in REGISTRY:
            return
        torch_trainer = self.algo in ("ippo", "mappo")
        if torch_trainer and isinstance(bg, str):
            if bg.lower() in ("none", ""):
                return
            if (bg.endswith(".pt") and Path(bg).is_file()) or Path(bg, "ippo_model.pt").is_file():
                return
        allowed = ", ".join(REGISTRY) + (", none, or the path of an ippo_model.pt (or its run folder)"
                                         if torch_trainer else "")
        raise ValueError(f"config.background = {bg!r}: unknown background policy; allowed: {allowed}")

    # ---- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        if not isinstance(data, dict):
            raise TypeError(f"a training config must be a mapping, got {type(data).__name__}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        from ..envs.files import atomic_write_text

        atomic_write_text(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.from_dict(data)

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Field name -> its docstring (for the CLI's --help)."""
        return _field_docs(cls)


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A config from a YAML file (or the defaults) with `overrides` applied (None values skipped)."""
    cfg = TrainConfig.load(path) if path else TrainConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**changes) if changes else cfg


def _field_docs(cls) -> dict[str, str]:
    """Attribute docstrings (the string literal after each field) read from the source."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    out: dict[str, str] = {}
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr) \
                and isinstance(getattr(b, "value", None), ast.Constant) and isinstance(b.value.value, str):
            out[a.target.id] = " ".join(b.value.value.split())
    return out


__all__ = ["TrainConfig", "load_config", "ALGOS", "ROLES"]
