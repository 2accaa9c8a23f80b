"""A policy trained by the torch IPPO/MAPPO trainer (`channelmarket.training.ippo`), loaded
for rollouts and evaluation. Lives in `policies` so loading a model never imports `training`.

The model file carries the observation schema it was trained on (`obs_schema`: column names and
a version, `envs.obs_schema`); `bind` refuses a market whose schema differs with a ValueError naming
the first differing column. A model saved before schemas existed loads with a warning, assumed to
have the standard four-kind layout of its observation size."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import torch

from ..envs.obs_schema import ObsSchema, legacy_schema
from .base import Policy
from .nets import GaussianActor, RunningMeanStd
from .widths import check_width, fields_of_width

MODEL_FILE = "ippo_model.pt"
MODEL_FORMAT = "channelmarket.ippo"


class IPPOPolicy(Policy):
    """The trained actor as a `Policy`: obs [M, O] -> actions [M, A] in [-1, 1] (A = `act_dim`: 4, or 5
    with open_partner; a 4-wide model in a partner_action market leaves open_partner 0).

    Deterministic (the Gaussian mean, clipped) by default; `deterministic=False` samples with the
    policy's own generator (seeded by `bind`). Observations are normalised with the statistics
    frozen at the end of training."""

    name = "ippo"
    # fixed at construction (checkpoints of a run with this policy as background save only the rest)
    static_attributes = ("model", "deterministic", "device", "actor", "obs_rms", "norm_obs", "clip_obs",
                         "learners", "name", "model_schema", "act_dim")

    def __init__(self, model: "dict | str | Path", deterministic: bool = True, device: str = "cpu") -> None:
        super().__init__()
        if not isinstance(model, dict):
            model = _load_model_file(model)
        if model.get("format") != MODEL_FORMAT:
            raise ValueError(f"not an IPPO model (format {model.get('format')!r}, expected {MODEL_FORMAT!r})")
        obs_dim = int(model["obs_dim"])
        if "obs_schema" in model:
            self.model_schema = ObsSchema.from_dict(model["obs_schema"], where="IPPO model: obs_schema")
            if len(self.model_schema) != obs_dim:
                raise ValueError(f"IPPO model: obs_schema has {len(self.model_schema)} columns, obs_dim is {obs_dim}")
        else:
            warnings.warn(f"IPPO model saved without an observation schema (a model from before schemas); assuming "
                          f"the standard {obs_dim}-column layout", UserWarning, stacklevel=2)
            self.model_schema = legacy_schema(obs_dim)
        self.act_dim = int(model["act_dim"])
        fields_of_width(self.act_dim)   # 4 (base) or 5 (+ open_partner); ValueError otherwise
        self.model = model
        self.deterministic = bool(deterministic)
        self.device = torch.device(device)
        self.actor = GaussianActor(int(model["obs_dim"]), int(model["act_dim"]), model["hidden_sizes"],
                                   model.get("activation", "tanh"))
        self.actor.load_state_dict(model["actor"])
        self.actor.to(self.device).eval()
        self.obs_rms = RunningMeanStd((int(model["obs_dim"]),))
        self.obs_rms.load_state_dict(model["obs_rms"])
        self.norm_obs = bool(model.get("norm_obs", True))
        self.clip_obs = float(model.get("clip_obs", 10.0))
        self.learners = tuple(model.get("learners", ()))
        self.name = model.get("algorithm", "ippo")

    def bind(self, core, agents: np.ndarray, seed=None) -> None:
        """Attach to a market; ValueError if its observation schema is not the model's, or if the model
        acts with an action column the market lacks (`widths.check_width`)."""
        core.obs_schema.check(self.model_schema, what=f"model {self.name!r}")
        check_width(self.act_dim, core, what=f"model {self.name!r}")
        super().bind(core, agents, seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != self.obs_rms.mean.shape[0]:
            raise ValueError(f"IPPOPolicy.act: obs has shape {obs.shape}; expected (M, {self.obs_rms.mean.shape[0]})")
        x = self.obs_rms.normalize(obs, self.clip_obs) if self.norm_obs else obs.astype(np.float32)
        with torch.no_grad():
            mu, log_std = self.actor(torch.as_tensor(x, device=self.device))
        a = mu.cpu().numpy().astype(np.float64)
        if not self.deterministic:
            a = a + np.exp(log_std.cpu().numpy()) * self.rng.standard_normal(a.shape)
        return np.clip(a, -1.0, 1.0)


def _load_model_file(path: "str | Path") -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.exists():
        raise FileNotFoundError(f"no IPPO model at {str(p)!r}")
    try:   # tensors and plain containers only: a file that needs anything else is refused, never run
        model = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{str(p)!r} is not a safe IPPO model file (it holds something other than tensors "
                         f"and plain values, or is damaged: {first}); use a model written by channelmarket's "
                         "IPPO trainer") from None
    if not isinstance(model, dict):
        raise ValueError(f"{str(p)!r} is not an IPPO model (a {type(model).__name__}, expected a dict)")
    return model


def load_ippo(path: "str | Path", deterministic: bool = True, device: str = "cpu") -> IPPOPolicy:
    """The policy saved by `train` (`out_dir/ippo_model.pt`, or the run folder itself)."""
    return IPPOPolicy(_load_model_file(path), deterministic=deterministic, device=device)


__all__ = ["IPPOPolicy", "load_ippo", "MODEL_FILE", "MODEL_FORMAT"]
