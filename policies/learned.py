"""Learned policies as `Policy` objects: a trained Stable-Baselines3 model (or IPPO actor) that
acts for any agent subset, in rollouts, tournaments and as a frozen opponent in training.

    from channelmarket.policies.learned import load
    pol = load("runs/x/model.zip")            # or the run folder "runs/x"
    run_episode("energy_default", {"solar": pol, "all": make("risk_factor")}, seed=10_000)

A run folder written by `channelmarket train` holds `model.zip` (SB3 format) and `model.json`
(the algorithm, the observation-normalisation statistics `model_vecnormalize.npz`, and which
agent kinds each trained network acts for). With one policy per role the folder holds one network per
role (`model.zip` is the pricing network, `model_bidding.zip` the bidding one) and `load`
returns a policy that routes every agent to its role's network by the kind in its
observation. A bare SB3 zip without `model.json` loads too (PPO, SAC or TD3; no
normalisation, every kind); an IPPO `.pt` file goes to `training.ippo.load_ippo`.

Actions are deterministic (the policy mean) unless `deterministic=False`. Needs torch and SB3.
A model acts with the width it was trained with (`act_dim`: 4, or 5 with `open_partner`; the zip's
action space, recorded in `model.json`); `bind` refuses a 5-wide model in a market without the
column and lets a 4-wide one act in a wider market with the optional column 0 (`policies.widths`).

A saved model carries its observation schema (`model.json`'s `obs_schema`: the column names and
a schema version, `envs.obs_schema`); binding it to a market whose observation differs raises a
ValueError naming the first differing column. A model saved before schemas existed loads with a
warning and is assumed to have the standard four-kind layout of its observation size.

Loading never unpickles by default: the network is rebuilt from the zip's JSON and its weights
(`policies.sb3_zip`), the statistics are an `.npz` read with `allow_pickle=False`. A file that
only unpickling can read (a custom SB3 policy, an old `vecnormalize.pkl`) raises
`UntrustedModelError` unless `trust=True` (CLI: `--trust-model`), which warns and unpickles.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..envs.files import atomic_write_bytes, atomic_write_text
from ..envs.obs_schema import ObsSchema, legacy_schema
from ..envs.state import KIND_NAMES
from .base import Policy
from .sb3_zip import TRUST_HINT, UntrustedModelError, build_policy, load_sb3_trusted
from .widths import check_width, fields_of_width

META_FORMAT = "channelmarket.sb3"
META_VERSION = 1


@dataclass
class ObsNormalizer:
    """VecNormalize's observation transform, frozen: clip((obs - mean) / sqrt(var + eps), +-clip)."""

    mean: np.ndarray
    var: np.ndarray
    clip: float = 10.0
    epsilon: float = 1e-8

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip, self.clip).astype(np.float32)

    @classmethod
    def from_vecnormalize(cls, vn: Any) -> "ObsNormalizer | None":
        if vn is None or not getattr(vn, "norm_obs", False):
            return None
        return cls(np.asarray(vn.obs_rms.mean, dtype=np.float64).copy(), np.asarray(vn.obs_rms.var, dtype=np.float64).copy(),
                   float(vn.clip_obs), float(vn.epsilon))

    def save(self, path: str | Path) -> Path:
        """Write the statistics as a plain `.npz` (no pickle), atomically."""
        buf = io.BytesIO()
        np.savez(buf, mean=self.mean, var=self.var, clip=np.float64(self.clip), epsilon=np.float64(self.epsilon))
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, trust: bool = False) -> "ObsNormalizer | None":
        """Statistics from an `.npz` written by `save` (validated); a pickled `vecnormalize.pkl`
        only with `trust=True`."""
        path = Path(path)
        if path.suffix == ".pkl":
            if not trust:
                raise UntrustedModelError(f"{path}: a pickled VecNormalize file; loading it would unpickle code "
                                          f"from the file — {TRUST_HINT}")
            warnings.warn(f"unpickling {path} with trust: a pickle can run arbitrary code", UserWarning, stacklevel=2)
            with open(path, "rb") as f:
                return cls.from_vecnormalize(pickle.load(f))
        try:
            with np.load(path, allow_pickle=False) as z:
                arrs = {k: np.asarray(z[k]) for k in ("mean", "var", "clip", "epsilon")}
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not an observation-statistics .npz ({type(exc).__name__}: {exc})") from None
        mean, var = arrs["mean"], arrs["var"]
        size = mean.shape[0] if mean.ndim == 1 else -1   # the model's schema fixes the size (checked by `load`)
        for name, a in (("mean", mean), ("var", var)):
            if a.shape != (size,) or size < 1 or a.dtype.kind != "f" or not np.isfinite(a).all():
                raise ValueError(f"{path}: {name} must be one row of finite floats, as long as mean; got shape "
                                 f"{a.shape}, dtype {a.dtype}")
        if (var < 0).any():
            raise ValueError(f"{path}: var must be >= 0; got min {var.min()}")
        clip, eps = float(arrs["clip"]), float(arrs["epsilon"])
        if not (clip > 0 and np.isfinite(clip)) or not (eps > 0 and np.isfinite(eps)):
            raise ValueError(f"{path}: clip and epsilon must be finite and > 0; got {clip}, {eps}")
        return cls(mean.astype(np.float64), var.astype(np.float64), clip, eps)


class _Member:
    """One network and the kinds it acts for. `normalizer` is an `ObsNormalizer`, None, or a
    callable returning one (live statistics of a model still training)."""

    def __init__(self, model: Any, normalizer: Any, kinds: Sequence[str]) -> None:
        self.model = model
        self.normalizer = normalizer
        self.kinds = tuple(kinds)
        self.kind_ids = np.array([KIND_NAMES.index(k) for k in self.kinds], dtype=np.int64)
        space = getattr(getattr(model, "policy", None), "action_space", None)
        shape = getattr(space, "shape", None)
        self.act_dim = int(shape[0]) if shape and len(shape) == 1 else 4   # the market's action columns it learned

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        norm = self.normalizer() if callable(self.normalizer) and not isinstance(self.normalizer, ObsNormalizer) \
            else self.normalizer
        x = norm(obs) if norm is not None else np.asarray(obs, dtype=np.float32)
        with _single_thread(x.shape[0]):
            actions, _ = self.model.policy.predict(x, deterministic=deterministic)
        return np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)


class _single_thread:
    """Run a small forward pass on one torch thread: on a busy 2-core machine a 64x64 MLP over
    ~50 rows takes ~1 ms on one thread and ~40 ms on two (thread contention). Restored after."""

    SMALL = 4096

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.prev = 0

    def __enter__(self) -> None:
        import torch

        self.prev = torch.get_num_threads()
        if self.prev > 1 and self.rows <= self.SMALL:
            torch.set_num_threads(1)
        else:
            self.prev = 0

    def __exit__(self, *exc: Any) -> None:
        if self.prev:
            import torch

            torch.set_num_threads(self.prev)


class LearnedPolicy(Policy):
    """A trained network (or one per role) acting for the agents it is bound to.

    Rows are routed to the member network whose kinds contain the agent's kind (the bound
    agents' kinds, read from the view; unbound, the observation's `kind_*` columns by name); rows
    of a kind no member was trained for go to the first member (the kind is in its input, but it
    never practised that kind). `schema`: the observation schema the networks were trained on
    (None for a live model: not checked); `bind` refuses a market whose schema differs."""

    name = "learned"

    def __init__(self, members: Sequence[_Member], deterministic: bool = True, name: str | None = None,
                 meta: dict | None = None, schema: ObsSchema | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("a LearnedPolicy needs at least one trained network")
        self.members = list(members)
        self.deterministic = bool(deterministic)
        self.meta = dict(meta or {})
        self.model_schema = schema
        if name:
            self.name = name
        widths = sorted({m.act_dim for m in self.members})
        if len(widths) != 1:
            raise ValueError(f"the networks of a LearnedPolicy act with {widths} action columns; they must agree")
        self.act_dim = widths[0]
        fields_of_width(self.act_dim)   # 4 (base) or 5 (+ open_partner)
        self._route = np.zeros(len(KIND_NAMES), dtype=np.int64)
        for i, m in reversed(list(enumerate(self.members))):
            self._route[m.kind_ids] = i

    def bind(self, core: Any, agents: np.ndarray, seed: Any = None) -> None:
        """Attach to a market; ValueError if its observation schema is not the one the model was trained on,
        or if the model acts with an action column the market lacks (`widths.check_width`; a 4-wide
        model in a partner_action market is fine: its open_partner column is 0)."""
        if self.model_schema is not None:
            core.obs_schema.check(self.model_schema, what=f"model {self.name!r}")
        check_width(self.act_dim, core, what=f"model {self.name!r}")
        super().bind(core, agents, seed)

    @classmethod
    def from_model(cls, model: Any, normalizer: Any = None, kinds: Sequence[str] = KIND_NAMES,
                   deterministic: bool = True, name: str | None = None,
                   schema: ObsSchema | None = None) -> "LearnedPolicy":
        """Wrap a live SB3 model; `normalizer` may be a `VecNormalize` (its current statistics are
        read at every step), an `ObsNormalizer`, or None."""
        from stable_baselines3.common.vec_env import VecNormalize

        if isinstance(normalizer, VecNormalize):
            vn = normalizer
            normalizer = (lambda: ObsNormalizer.from_vecnormalize(vn))
        return cls([_Member(model, normalizer, kinds)], deterministic=deterministic, name=name, schema=schema)

    @property
    def kinds(self) -> tuple[str, ...]:
        out: list[str] = []
        for m in self.members:
            out += [k for k in m.kinds if k not in out]
        return tuple(out)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2:
            raise ValueError(f"{self.name}.act: obs has shape {obs.shape}; expected (M, O)")
        if len(self.members) == 1:
            return self.members[0].act(obs, self.deterministic)
        out = np.zeros((obs.shape[0], self.act_dim))
        if getattr(self, "core", None) is not None and self.agents is not None and self.agents.shape[0] == obs.shape[0]:
            which = self._route[self.view.kind[self.agents]]   # the bound agents' kinds
        else:
            schema = self.model_schema or legacy_schema(obs.shape[1])
            cols = schema.prefixed("kind_")
            names = [schema.columns[c][len("kind_"):] for c in cols]
            codes = np.array([KIND_NAMES.index(k) if k in KIND_NAMES else 0 for k in names], dtype=np.int64)
            which = self._route[codes[np.argmax(obs[:, cols], axis=1)]]
        for i, m in enumerate(self.members):
            rows = np.flatnonzero(which == i)
            if rows.size:
                out[rows] = m.act(obs[rows], self.deterministic)
        return out

    def __deepcopy__(self, memo: dict) -> "LearnedPolicy":
        """Copies share the (read-only) networks: one per market is cheap."""
        return type(self)(self.members, self.deterministic, self.name, self.meta, self.model_schema)


# ---- files ---------------------------------------------------------------------------------------

class _Net:
    """A rebuilt policy network standing where a model is expected (`.policy`)."""

    def __init__(self, policy: Any, algo: str) -> None:
        self.policy, self.algo = policy, algo


def load_sb3_model(path: str | Path, algo: str | None = None, device: str = "cpu", trust: bool = False) -> Any:
    """An object with the zip's `.policy`: rebuilt without unpickling (PPO, SAC, TD3 MlpPolicy;
    `algo=None` finds which). A zip only SB3's unpickling loader can read raises
    `UntrustedModelError`, or with `trust=True` loads through SB3 (a full model) with a warning."""
    try:
        policy, name = build_policy(path, algo, device=device)
        return _Net(policy, name)
    except UntrustedModelError:
        if not trust:
            raise
    return load_sb3_trusted(path, algo, device=device)


def meta_path(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_suffix(".json")


def write_meta(model_path: str | Path, meta: dict, schema: ObsSchema | None = None) -> Path:
    """Write `model.json` next to `model.zip` (format, algorithm, members, training setup and the
    observation schema the model was trained on: `schema`, or `meta["obs_schema"]` as a dict)."""
    meta = dict(meta, format=META_FORMAT, version=META_VERSION)
    if schema is not None:
        meta["obs_schema"] = schema.to_dict()
    p = meta_path(model_path)
    atomic_write_text(p, json.dumps(meta, indent=1) + "\n")
    return p


def load(path: str | Path, deterministic: bool = True, device: str = "cpu", trust: bool = False) -> Policy:
    """A trained policy from a run folder, `model.zip` (with its `model.json`), a bare SB3 zip,
    or an IPPO `.pt` model file. Nothing is unpickled unless `trust=True` (see the module doc)."""
    p = Path(path)
    if p.is_dir():
        for cand in ("model.zip", "ippo_model.pt"):
            if (p / cand).exists():
                p = p / cand
                break
        else:
            raise FileNotFoundError(f"no model.zip or ippo_model.pt in {str(path)!r}")
    if not p.exists():
        raise FileNotFoundError(f"no trained model at {str(p)!r}")
    if p.suffix == ".pt":
        from .ippo_policy import load_ippo

        return load_ippo(p, deterministic=deterministic, device=device)
    mp = meta_path(p)
    if not mp.exists():
        model = load_sb3_model(p, device=device, trust=trust)
        schema = _legacy(p, _obs_size(model), "a bare SB3 zip")
        return LearnedPolicy([_Member(model, None, KIND_NAMES)], deterministic, name=f"learned:{p.stem}",
                             schema=schema)
    try:
        meta = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{mp}: not a readable model description ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise ValueError(f"{str(mp)!r} is not a channelmarket model description (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if not isinstance(meta.get("members"), list) or not meta["members"]:
        raise ValueError(f"{mp}: 'members' must be a non-empty list of networks")
    schema = ObsSchema.from_dict(meta["obs_schema"], where=f"{mp}: obs_schema") if "obs_schema" in meta else None
    members = []
    for i, m in enumerate(meta["members"]):
        if not isinstance(m, dict):
            raise ValueError(f"{mp}: members[{i}] must be a mapping")
        files = {}
        for key in ("file", "vecnormalize"):
            f = m.get(key)
            if f is None and key == "vecnormalize":
                continue
            if not isinstance(f, str) or Path(f).name != f or f in ("", ".", ".."):
                raise ValueError(f"{mp}: members[{i}].{key} = {f!r}; allowed: a file name beside {mp.name}")
            files[key] = p.parent / f
        kinds = m.get("kinds") or KIND_NAMES
        if not isinstance(kinds, (list, tuple)) or any(k not in KIND_NAMES for k in kinds):
            raise ValueError(f"{mp}: members[{i}].kinds = {kinds!r}; allowed: a list of {', '.join(KIND_NAMES)}")
        algo = meta.get("algo")
        model = load_sb3_model(files["file"], algo if algo in ("ppo", "sac", "td3") else None, device=device,
                               trust=trust)
        norm = ObsNormalizer.load(files["vecnormalize"], trust=trust) if "vecnormalize" in files else None
        size = _obs_size(model)
        if schema is None:
            schema = _legacy(mp, size, "a model from before schemas")
        for what, got in (("network", size), ("observation statistics", None if norm is None else norm.mean.shape[0])):
            if got is not None and got != len(schema):
                raise ValueError(f"{mp}: members[{i}] {what} takes {got} observation columns, its obs_schema "
                                 f"has {len(schema)}")
        member = _Member(model, norm, kinds)
        want = meta.get("act_dim", member.act_dim)
        if want != member.act_dim:
            raise ValueError(f"{mp}: act_dim = {want!r} but members[{i}] network acts with {member.act_dim} columns")
        members.append(member)
    return LearnedPolicy(members, deterministic, name=meta.get("name") or f"learned:{meta.get('algo', 'sb3')}",
                         meta=meta, schema=schema)


def _obs_size(model: Any) -> int | None:
    """Observation width of an SB3 model's policy network (None if it does not say)."""
    space = getattr(getattr(model, "policy", None), "observation_space", None)
    shape = getattr(space, "shape", None)
    return int(shape[0]) if shape and len(shape) == 1 else None


def _legacy(path: Path, size: int | None, what: str) -> ObsSchema | None:
    """The schema assumed for a model saved without one (warns): the standard layout of its size."""
    if size is None:
        warnings.warn(f"{path}: saved without an observation schema and its observation size is unknown; "
                      "it is bound to markets unchecked", UserWarning, stacklevel=3)
        return None
    warnings.warn(f"{path}: saved without an observation schema ({what}); assuming the "
                  f"standard {size}-column layout", UserWarning, stacklevel=3)
    return legacy_schema(size)


__all__ = ["LearnedPolicy", "ObsNormalizer", "load", "load_sb3_model", "write_meta", "meta_path", "UntrustedModelError"]
