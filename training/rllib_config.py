"""`RLlibConfig`: every knob of an RLlib run (`channelmarket train --backend rllib`), one field each.

Saved as the run folder's `config.yaml` (with `backend: rllib`, so `channelmarket train --resume
--out RUN` finds the backend by itself); unknown keys and bad values raise, naming the field.
Step counts are agent-steps (one per agent per market step), as for the other trainers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .rllib_batch_env import FACE_ONLY, MARKETS_KEY
from .rllib_env import POLICY_MODES

BACKEND = "rllib"


@dataclass
class RLlibConfig:
    """Configuration of one RLlib PPO run over `channel_market_v0` (every agent learns)."""

    scenario: str = "energy_small"
    """Scenario preset name or YAML/JSON file."""
    env: dict = field(default_factory=dict)
    """Further `parallel_env` keywords (any scenario field, e.g. episode_steps: 24)."""
    policies: str = "kind"
    """Policy mapping from the env's `agent_kinds`: shared (one module), kind (one per kind), role (pricing/bidding)."""
    total_steps: int = 20_000
    """Agent-steps to train for (whole iterations: the last one may go past)."""
    seed: int = 0
    """Seed of RLlib (`debugging(seed=)`), its env runners and the markets."""
    env_runners: int = 2
    """Ray actors stepping markets in parallel (0: sample in the driver)."""
    envs_per_runner: int = 1
    """Envs each env runner steps side by side (RLlib's num_envs_per_env_runner)."""
    markets_per_env: int = 1
    """Markets in each env, stepped as one batch (`MarketCore(n_markets=M)`, `rllib_batch_env`); 1: the PettingZoo face."""
    rollout_fragment_length: int = 0
    """Env steps each runner samples per market before sending (0: one episode, `episode_steps`)."""
    train_batch_size: int = 4096
    """Agent-steps per training iteration (RLlib's train_batch_size_per_learner, counted by agent)."""
    minibatch_size: int = 512
    """SGD minibatch size (agent-steps)."""
    num_epochs: int = 4
    """Passes over each train batch."""
    lr: float = 3e-4
    """Adam learning rate."""
    gamma: float = 0.95
    """Discount factor."""
    lambda_: float = 0.9
    """GAE lambda."""
    entropy_coeff: float = 0.0
    """Entropy bonus."""
    hidden_sizes: list = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of every module's MLP."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, elu, silu."""
    checkpoint_every: int = 1
    """Training iterations between checkpoints (0: only at the end)."""
    keep_checkpoints: int = 3
    """Newest intact checkpoints kept (older ones are pruned)."""
    address: Any = None
    """Ray cluster to join ("auto" or "ray://host:10001"); None starts a local Ray inside the run folder."""
    num_cpus: int = 0
    """Logical CPUs of a local Ray (0: max(cores, env_runners + 1))."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.scenario, str) or not self.scenario:
            raise ValueError(f"config.scenario = {self.scenario!r}; allowed: a preset name or a scenario file")
        if not isinstance(self.env, dict) or not all(isinstance(k, str) for k in self.env):
            raise TypeError(f"config.env = {self.env!r}; allowed: a mapping of parallel_env keywords")
        if self.policies not in POLICY_MODES:
            raise ValueError(f"config.policies = {self.policies!r}; allowed: {', '.join(POLICY_MODES)}")
        for name, low in (("total_steps", 1), ("env_runners", 0), ("envs_per_runner", 1), ("markets_per_env", 1), ("rollout_fragment_length", 0),
                          ("train_batch_size", 1), ("minibatch_size", 1), ("num_epochs", 1), ("checkpoint_every", 0),
                          ("keep_checkpoints", 1), ("num_cpus", 0), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"config.{name} = {v!r}; allowed: an integer >= {low}")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"config.minibatch_size = {self.minibatch_size} exceeds train_batch_size = "
                             f"{self.train_batch_size}; allowed: <= train_batch_size")
        for name, lo, hi in (("lr", 0.0, 1.0), ("gamma", 0.0, 1.0), ("lambda_", 0.0, 1.0), ("entropy_coeff", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (name == "lr" and v == 0):
                raise ValueError(f"config.{name} = {v!r}; allowed: a number in {'(' if name == 'lr' else '['}{lo}, {hi}]")
        if (not isinstance(self.hidden_sizes, (list, tuple)) or not self.hidden_sizes
                or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in self.hidden_sizes)):
            raise ValueError(f"config.hidden_sizes = {self.hidden_sizes!r}; allowed: a non-empty list of positive integers")
        self.hidden_sizes = list(self.hidden_sizes)
        if self.activation not in ("tanh", "relu", "elu", "silu"):
            raise ValueError(f"config.activation = {self.activation!r}; allowed: tanh, relu, elu, silu")
        if self.markets_per_env > 1:
            face = sorted(k for k in self.env if k in FACE_ONLY or k == MARKETS_KEY)
            if face:
                raise ValueError(f"config.env has {', '.join(face)} with markets_per_env = {self.markets_per_env}; "
                                 "allowed: scenario fields (and max_cycles); render_mode, history_len, state_mode and "
                                 "info_keys belong to the one-market PettingZoo face")
        if self.address is not None and (not isinstance(self.address, str) or not self.address):
            raise ValueError(f"config.address = {self.address!r}; allowed: None, 'auto' or a Ray address")

    @property
    def env_config(self) -> dict[str, Any]:
        """The env_config RLlib hands every env runner: the scenario and its keywords."""
        cfg = {"scenario": self.scenario, **self.env}
        if self.markets_per_env > 1:
            cfg[MARKETS_KEY] = self.markets_per_env
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {"backend": BACKEND, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "RLlibConfig":
        if not isinstance(data, dict):
            raise TypeError(f"an RLlib config must be a mapping, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k != "backend"}
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown RLlib config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**data)


__all__ = ["BACKEND", "RLlibConfig"]
