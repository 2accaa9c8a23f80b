"""A policy trained with RLlib (`channelmarket train --backend rllib`), loaded for evaluation
without Ray, without torch and without unpickling anything.

At the end of a run (and on `training.rllib.export`) the trainer writes, next to Ray's own
checkpoints, a plain export of the actor of every RLlib module:

    rllib_policy.json   format, version, obs_schema, the kind -> module routing, and per module
                        its layers (weight/bias array names, activation after each)
    rllib_policy.npz    the weights, float32 (read with allow_pickle=False)

`RLlibPolicy` runs those MLPs in NumPy: obs [M, O] -> the Gaussian mean (deterministic, the
default) or a sample, clipped to [-1, 1]. Each row goes to the module its agent's kind was
mapped to in training (shared, per kind or per role). `channelmarket eval` takes the run folder
(or the .json) as a policy spec: `eval.populations.load_model` hands such specs here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.obs_schema import ObsSchema
from ..envs.state import KIND_NAMES
from ..policies.base import Policy
from ..policies.widths import check_width, fields_of_width

EXPORT_FORMAT = "channelmarket.rllib"
EXPORT_VERSION = 1
EXPORT_JSON = "rllib_policy.json"
EXPORT_NPZ = "rllib_policy.npz"
ACTIVATIONS = {
    None: lambda x: x,
    "linear": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
}


def export_path(spec: "str | Path") -> "Path | None":
    """The `rllib_policy.json` a policy spec names (the file itself or a run folder holding it), or None."""
    p = Path(spec)
    if p.is_dir():
        p = p / EXPORT_JSON
    return p if p.name.endswith(".json") and p.is_file() and _is_export(p) else None


def _is_export(p: Path) -> bool:
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("format") == EXPORT_FORMAT
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


class _MLP:
    """One module's actor: Linear layers with an activation after each (None: linear)."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray, "str | None"]], act_dim: int) -> None:
        self.layers = layers
        self.act_dim = act_dim

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = x.astype(np.float32)
        for w, b, act in self.layers:
            h = ACTIVATIONS[act](h @ w.T + b)
        return h[:, :self.act_dim], h[:, self.act_dim:2 * self.act_dim]


class RLlibPolicy(Policy):
    """RLlib-trained actors as one `Policy`, routed by the bound agents' kinds."""

    name = "rllib"

    def __init__(self, spec: "str | Path", deterministic: bool = True) -> None:
        super().__init__()
        path = export_path(spec)
        if path is None:
            raise FileNotFoundError(f"no RLlib export ({EXPORT_JSON} of format {EXPORT_FORMAT!r}) at {str(spec)!r}")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("version") != EXPORT_VERSION:
            raise ValueError(f"{path}: export version {meta.get('version')!r}; this code reads {EXPORT_VERSION}")
        self.model_schema = ObsSchema.from_dict(meta.get("obs_schema"), where=f"{path}: obs_schema")
        self.act_dim = meta.get("act_dim", 4)
        fields_of_width(self.act_dim)   # 4, or 5 with open_partner
        self.deterministic = bool(deterministic)
        npz = path.with_name(meta.get("weights", EXPORT_NPZ))
        modules = meta.get("modules")
        routing = meta.get("routing")
        if not isinstance(modules, dict) or not modules or not isinstance(routing, dict):
            raise ValueError(f"{path}: 'modules' and 'routing' must be non-empty mappings")
        with np.load(npz, allow_pickle=False) as w:
            arrays = {k: w[k].astype(np.float32) for k in w.files}
        self.nets: dict[str, _MLP] = {}
        for mid, desc in modules.items():
            layers = []
            for i, layer in enumerate(desc.get("layers", [])):
                act = layer.get("activation")
                if act not in ACTIVATIONS:
                    raise ValueError(f"{path}: module {mid!r} layer {i} activation {act!r}; allowed: "
                                     f"{', '.join(str(a) for a in ACTIVATIONS)}")
                try:
                    wt, bs = arrays[layer["weight"]], arrays[layer["bias"]]
                except KeyError as exc:
                    raise ValueError(f"{path}: module {mid!r} layer {i} names array {exc} absent from {npz.name}") from None
                layers.append((wt, bs, act))
            if not layers or layers[0][0].shape[1] != len(self.model_schema) or layers[-1][0].shape[0] < 2 * self.act_dim:
                raise ValueError(f"{path}: module {mid!r} does not map {len(self.model_schema)} observation columns "
                                 f"to {2 * self.act_dim} outputs (mean, log_std)")
            self.nets[mid] = _MLP(layers, self.act_dim)
        bad = {k: m for k, m in routing.items() if k not in KIND_NAMES or m not in self.nets}
        if bad:
            raise ValueError(f"{path}: routing {bad} names unknown kinds or modules; kinds: {', '.join(KIND_NAMES)}, "
                             f"modules: {', '.join(self.nets)}")
        first = next(iter(self.nets))
        self.routing = {k: routing.get(k, first) for k in KIND_NAMES}   # a kind never trained: the first module
        self.path = str(path)
        self.name = f"rllib:{path.parent.name}"

    def bind(self, core: Any, agents: np.ndarray, seed: Any = None) -> None:
        """Attach to a market; ValueError if its observation schema is not the model's, or if it acts
        with an action column the market lacks (`policies.widths.check_width`)."""
        core.obs_schema.check(self.model_schema, what=f"model {self.name!r}")
        check_width(self.act_dim, core, what=f"model {self.name!r}")
        super().bind(core, agents, seed)

    def _kinds(self, obs: np.ndarray) -> np.ndarray:
        if self.core is not None and self.agents.shape[0] == obs.shape[0]:
            return np.asarray(self.view.kind[self.agents])
        cols = self.model_schema.prefixed("kind_")
        codes = np.array([KIND_NAMES.index(self.model_schema.columns[c][5:]) for c in cols], dtype=np.int64)
        return codes[np.argmax(obs[:, cols], axis=1)]

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != len(self.model_schema):
            raise ValueError(f"{self.name}.act: obs has shape {obs.shape}; expected (M, {len(self.model_schema)})")
        out = np.zeros((obs.shape[0], self.act_dim))
        kinds = self._kinds(obs)
        module_of = np.array([self.routing[k] for k in KIND_NAMES], dtype=object)[kinds]
        for mid, net in self.nets.items():
            rows = np.flatnonzero(module_of == mid)
            if rows.size:
                mu, log_std = net(obs[rows])
                if not self.deterministic:
                    mu = mu + np.exp(log_std) * self.rng.standard_normal(mu.shape)
                out[rows] = mu
        return np.clip(out, -1.0, 1.0)


def load_rllib(spec: "str | Path", deterministic: bool = True) -> RLlibPolicy:
    """The RLlib export at `spec` (a run folder or its rllib_policy.json) as a `Policy`."""
    return RLlibPolicy(spec, deterministic=deterministic)


__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "EXPORT_JSON", "EXPORT_NPZ", "ACTIVATIONS", "RLlibPolicy",
           "load_rllib", "export_path"]
