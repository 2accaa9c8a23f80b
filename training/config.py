"""`TrainConfig`: every knob of a training run, one documented field each (CleanRL style), for
both trainers: the SB3 algorithms (ppo, sac, td3) and the torch IPPO/MAPPO trainer.

A run is fully described by its resolved config, saved as `config.yaml` in the run folder;
`--config FILE.yaml` loads one and command-line flags override single fields. Unknown keys
raise, naming the key and the allowed fields. The knobs only the torch trainer has sit in the
`ippo:` block (`IPPOSettings`); `ippo_config(cfg)` turns the whole config into the trainer's
`IPPOConfig`, every field mapped explicitly (`IPPO_FIELD_MAP`).

Step units: every step count of `TrainConfig` (total_steps, checkpoint_every, role_phase_steps,
ippo.log_every) counts AGENT-steps, one per learning agent per market step (SB3's timesteps).
`IPPOConfig` counts MARKET steps (one `MarketCore.step` of one market); `ippo_config` divides by
the learners per market. `n_steps` (rollout length) is market steps per market for both.
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
class IPPOSettings:
    """Knobs of the torch IPPO/MAPPO trainer that the SB3 algorithms do not have (YAML `ippo:`)."""

    torch_threads: int = 1
    """Torch intra-op threads (0 leaves torch's default); 1 is best for small markets on 2 cores."""
    log_every: int = 0
    """Agent-steps between TensorBoard writes of losses and charts (0: after every update)."""
    update_samples: int = 131_072
    """Samples drawn from each rollout per epoch (0: all); keeps the update flat in the number of agents."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over total_steps."""
    clip_vloss: bool = True
    """Clip the value loss around the old values (PPO2 / CleanRL)."""
    target_kl: Any = None
    """Stop an update's epochs early when the approximate KL exceeds this (None: never)."""
    activation: str = "tanh"
    """Hidden activation of actor and critic: tanh, relu, elu, silu."""
    clip_reward: float = 10.0
    """Clip scaled rewards to +- this."""

    @classmethod
    def from_dict(cls, data: Any) -> "IPPOSettings":
        if isinstance(data, IPPOSettings):
            return data
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise TypeError(f"config.ippo must be a mapping of IPPO settings, got {type(data).__name__}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown config key(s) ippo.{', ippo.'.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**data)


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
    partner_action: bool = False
    """On: agents get the optional `open_partner` action (the scenario's partner_action turned on; the
    policy acts with 5 columns). Off: the scenario's own setting."""
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
    """Any further keyword arguments of the SB3 algorithm constructor (ippo/mappo: IPPOConfig fields, legacy;
    prefer the ippo block)."""
    ippo: IPPOSettings = field(default_factory=IPPOSettings)
    """Settings only the torch IPPO/MAPPO trainer has (YAML mapping `ippo:`; see IPPOSettings)."""

    # ---------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.ippo = IPPOSettings.from_dict(self.ippo)
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
        if not isinstance(self.partner_action, bool):
            raise ValueError(f"config.partner_action = {self.partner_action!r}; allowed: true or false")
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
        if self.algo in ("ippo", "mappo"):
            for name in SB3_ONLY:
                if getattr(self, name) != _DEFAULTS[name]:
                    raise ValueError(f"config.{name} = {getattr(self, name)!r} is used by the SB3 algorithms only; "
                                     f"algo {self.algo} would ignore it: remove it (default {_DEFAULTS[name]!r})")
        elif self.ippo != IPPOSettings():
            changed = [f.name for f in fields(IPPOSettings) if getattr(self.ippo, f.name) != getattr(IPPOSettings(), f.name)]
            raise ValueError(f"config.ippo.{changed[0]} is used by algo ippo/mappo only; algo {self.algo} would "
                             "ignore it: remove it")
        from .markets import parse_kinds

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
        from .policy_specs import check_spec

        if not isinstance(self.background, str):
            raise ValueError(f"config.background = {self.background!r}; allowed: a policy name, none, or a model path")
        check_spec(self.background, "config.background")

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
            if set(unknown) <= set(IPPO_ONLY_NAMES) | {"lr", "rollout_steps", "epochs", "minibatch_size", "hidden_sizes",
                                                        "init_log_std", "norm_obs", "norm_reward", "progress",
                                                        "centralized_critic", "clip_coef"}:
                raise ValueError(f"this is an IPPOConfig (keys {', '.join(unknown)}), written by training.ippo.train(); "
                                 "continue it with training.ippo.train(IPPOConfig.from_yaml(path), out, resume=True)")
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


# ---- the torch trainer's view of the same run ------------------------------------------------------

# Every TrainConfig field and what IPPOConfig makes of it: (IPPOConfig field, conversion), or None
# for the fields the SB3 algorithms only have (`SB3_ONLY`: a non-default value with algo ippo/mappo
# is an error, never silently dropped). "agent->market" divides agent-steps by learners per market.
IPPO_FIELD_MAP: dict[str, Any] = {
    "scenario": ("scenario", "same"), "learners": ("learners", "kind names"),
    "learner_share": ("learner_share", "same"), "background": ("background", "same"),
    "roles": None, "role_phase_steps": None,
    "shocks": ("shocks", "same"), "shock_rate": ("shock_rate", "same"), "n_markets": ("n_markets", "same"),
    "partner_action": ("partner_action", "same"), "reward_scale": None,
    "algo": ("centralized_critic", "mappo -> True"), "total_steps": ("total_steps", "agent->market"),
    "seed": ("seed", "same"), "device": ("device", "same"),
    "checkpoint_every": ("checkpoint_every", "agent->market"), "keep_checkpoints": ("keep_checkpoints", "same"),
    "progress_bar": ("progress", "same"), "verbose": None,
    "normalize_obs": ("norm_obs", "same"), "normalize_reward": ("norm_reward", "same (per-kind return std)"),
    "clip_obs": ("clip_obs", "same"), "learning_rate": ("lr", "same"), "gamma": ("gamma", "same"),
    "n_steps": ("rollout_steps", "same (market steps per market)"), "batch_size": ("minibatch_size", "same"),
    "n_epochs": ("epochs", "same"), "gae_lambda": ("gae_lambda", "same"), "clip_range": ("clip_coef", "same"),
    "ent_coef": ("ent_coef", "same"), "vf_coef": ("vf_coef", "same"), "max_grad_norm": ("max_grad_norm", "same"),
    "log_std_init": ("init_log_std", "same"), "net_arch": ("hidden_sizes", "tuple"),
    "buffer_size": None, "learning_starts": None, "train_freq": None, "gradient_steps": None, "tau": None,
    "algo_kwargs": ("*", "IPPOConfig fields, override (legacy)"),
    "ippo": ("*", "every IPPOSettings field, same name (log_every: agent->market)"),
}
SB3_ONLY = tuple(k for k, v in IPPO_FIELD_MAP.items() if v is None)
IPPO_ONLY_NAMES = tuple(f.name for f in fields(IPPOSettings))
_DEFAULTS = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
             for f in fields(TrainConfig)}


def training_scenario(cfg: TrainConfig):
    """The scenario trained in: the configured one with the random shock rate set (0 when shocks are off)."""
    from ..envs.scenario import get_scenario

    extra = {"partner_action": True} if cfg.partner_action else {}
    return get_scenario(cfg.scenario, shock_rate=cfg.shock_rate if cfg.shocks else 0.0, **extra)


def learners_per_market(cfg: TrainConfig) -> int:
    """Learning agents per market of `cfg` (at least 1): agent-steps per market step."""
    from .markets import parse_kinds, scenario_kinds, select_agents

    sc = training_scenario(cfg)
    return max(1, select_agents(scenario_kinds(sc), parse_kinds(cfg.learners), cfg.learner_share).shape[0])


def ippo_config(cfg: TrainConfig):
    """(`IPPOConfig`, learners per market) of the same run for the torch trainer; every field of
    `cfg` is mapped as `IPPO_FIELD_MAP` says, step counts converted from agent-steps to market steps."""
    from .ippo_config import IPPOConfig
    from .markets import parse_kinds

    if cfg.algo not in ("ippo", "mappo"):
        raise ValueError(f"ippo_config: config.algo = {cfg.algo!r}; allowed: ippo, mappo")
    per_market = learners_per_market(cfg)
    s = cfg.ippo
    kw: dict[str, Any] = dict(
        scenario=cfg.scenario, learners=parse_kinds(cfg.learners), learner_share=cfg.learner_share,
        background=cfg.background, shocks=cfg.shocks, shock_rate=cfg.shock_rate, n_markets=cfg.n_markets,
        partner_action=cfg.partner_action,
        centralized_critic=cfg.algo == "mappo", total_steps=max(1, cfg.total_steps // per_market), seed=cfg.seed,
        device=cfg.device, checkpoint_every=max(1, cfg.checkpoint_every // per_market),
        keep_checkpoints=cfg.keep_checkpoints, progress=cfg.progress_bar, norm_obs=cfg.normalize_obs,
        norm_reward=cfg.normalize_reward, clip_obs=cfg.clip_obs, lr=cfg.learning_rate, gamma=cfg.gamma,
        rollout_steps=cfg.n_steps, minibatch_size=cfg.batch_size, epochs=cfg.n_epochs, gae_lambda=cfg.gae_lambda,
        clip_coef=cfg.clip_range, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm,
        init_log_std=cfg.log_std_init, hidden_sizes=tuple(cfg.net_arch),
        torch_threads=s.torch_threads, log_every=s.log_every // per_market if s.log_every else 0,
        update_samples=s.update_samples, anneal_lr=s.anneal_lr, clip_vloss=s.clip_vloss, target_kl=s.target_kl,
        activation=s.activation, clip_reward=s.clip_reward,
    )
    names = {f.name for f in dataclasses.fields(IPPOConfig)}
    bad = sorted(set(cfg.algo_kwargs) - names)
    if bad:
        raise ValueError(f"config.algo_kwargs {', '.join(bad)}: not IPPOConfig fields; allowed: {', '.join(sorted(names))}")
    kw.update(cfg.algo_kwargs)
    return IPPOConfig(**kw), per_market


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


__all__ = ["TrainConfig", "IPPOSettings", "ippo_config", "learners_per_market", "load_config", "IPPO_FIELD_MAP",
           "SB3_ONLY", "training_scenario", "ALGOS", "ROLES"]
