"""Populations for evaluation: who runs which policy, and who is focal or background.

Following Melting Pot's protocol, a population names its *focal* agents (the policy under test)
and its *background* agents (held-out baselines, mixes of them, earlier learned policies), so a
learned policy is judged in populations it was not trained with, and focal-only metrics can be
reported apart from the background's.

    spec = substrate("sellers_vs_risk_factor", focal="runs/x/model.zip")
    assignments = build_assignments(spec, core)          # [(Policy, agent indices)] for run_episode
    spec = homogeneous("truthful")                        # every agent runs truthful (all focal)
    spec = focal_background("ppo.zip", ["solar", "wind"], ["risk_factor", "truthful"])

A spec is plain data (strings and tuples): it is pickled to worker processes, and every
worker builds its own fresh policy objects from it.

Policy specs (strings): a registry baseline (`channelmarket.policies.registry`: truthful,
fixed_markup, zero_intelligence, random, risk_factor, eps_auction), `mean_field` (the
mean-field equilibrium `MeanFieldPolicy`), or a path to a trained model (an SB3 `model.zip`,
an IPPO `.pt`, an RLlib export (`eval.rllib_policy`), or a run folder holding one); on the supply
chain also `maser`, its own agents. Kinds of either economy (`eval.markets`).

Part of the settings layer of the evaluation pipeline (settings -> jobs -> runs -> statistics ->
report): it consumes policy and kind names and produces checked, plain-data population specs;
kinds and their aliases come from the kind registry (`envs.kinds`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..envs.files import sha256_file
from ..envs.kinds import BY_NAME
from ..envs.state import KIND_ALIASES, KIND_NAMES, Kind
from ..policies.base import Policy
from ..policies.registry import REGISTRY, make
from .markets import BUILTIN_POLICY, EQUILIBRIUM_POLICY, MARKETS, SUPPLY_CHAIN_KINDS, kinds_market, resolve_kinds
from .rllib_policy import export_path, load_rllib

ROLES = ("focal", "background")
MODEL_SUFFIXES = (".zip", ".pt")

# ---- policy specs ------------------------------------------------------------------------------------

def baseline_names(builtin: bool = False) -> tuple[str, ...]:
    """Every policy name a spec may use besides a model path; `builtin` adds `maser` (supply chain only)."""
    return tuple(dict.fromkeys(tuple(REGISTRY) + (EQUILIBRIUM_POLICY,) + ((BUILTIN_POLICY,) if builtin else ())))


def is_model_path(spec: str) -> bool:
    """Whether a policy spec names a model file or run folder rather than a baseline."""
    return spec not in baseline_names(builtin=True) and (
        spec.endswith(MODEL_SUFFIXES) or os.sep in spec or "/" in spec or os.path.isdir(spec))


def check_policy(spec: str) -> str:
    """The spec itself if it names a known policy or an existing model; otherwise a ValueError
    naming the value and the allowed ones."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"policy {spec!r}: expected a baseline name or a model path")
    spec = spec.strip()
    if spec in baseline_names(builtin=True):
        return spec
    if is_model_path(spec):
        if not os.path.exists(spec):
            raise ValueError(f"policy {spec!r}: no trained model at that path (a model.zip, an IPPO .pt file "
                             "or a run folder holding one)")
        return spec
    raise ValueError(f"unknown policy {spec!r}; allowed: {', '.join(baseline_names(builtin=True))}, "
                     "or a path to a trained model (.zip, .pt or a run folder)")


def policy_kind(spec: str) -> str:
    """'learned', 'equilibrium', 'builtin' (`maser`) or 'baseline'."""
    if spec == EQUILIBRIUM_POLICY:
        return "equilibrium"
    if spec == BUILTIN_POLICY:
        return "builtin"
    return "learned" if is_model_path(spec) else "baseline"


def model_files(spec: str) -> list[Path]:
    """The files a learned policy spec loads (the model, its description and every file that
    references), sorted; empty for baselines."""
    if not is_model_path(spec):
        return []
    p = Path(spec)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.suffix in (".zip", ".pt", ".json", ".pkl", ".npz")]
        return sorted(files)
    files = {p}
    meta = p.with_suffix(".json")
    if p.suffix == ".zip" and meta.exists():
        files.add(meta)
        try:
            import json

            info = json.loads(meta.read_text())
            for m in info.get("members", []):
                for key in ("file", "vecnormalize"):
                    if m.get(key) and (p.parent / m[key]).exists():
                        files.add(p.parent / m[key])
        except (ValueError, OSError):  # an unreadable description still gets hashed itself
            pass
    return sorted(files)


def policy_record(spec: str) -> dict[str, Any]:
    """What a report records about a policy: its type, and for a model the absolute path and the
    SHA-256 of every file it loads."""
    out: dict[str, Any] = {"type": policy_kind(spec)}
    if is_model_path(spec):
        out["path"] = str(Path(spec).resolve())
        out["sha256"] = {str(f.name): sha256_file(f) for f in model_files(spec)}
    return out


# ---- population specs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    """One policy over some agents: the agents of `kinds` whose rank within their kind is
    congruent to `part[0]` modulo `part[1]` (part (0, 1): all of them). A split by rank lets a
    background be a mix of baselines, round-robin over the agents of each kind."""

    policy: str
    kinds: tuple[str, ...]
    role: str = "background"
    part: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", resolve_kinds(self.kinds))
        object.__setattr__(self, "part", tuple(int(x) for x in self.part))
        if self.role not in ROLES:
            raise ValueError(f"slot role {self.role!r}; allowed: {', '.join(ROLES)}")
        i, m = self.part
        if m < 1 or not 0 <= i < m:
            raise ValueError(f"slot part {self.part!r}; allowed: (i, m) with m >= 1 and 0 <= i < m")


@dataclass(frozen=True)
class PopulationSpec:
    """A named population: slots that together cover every agent exactly once.

    `substrate`: the evaluation substrate it instantiates ("homogeneous" when every agent runs the
    focal policy); `focal_policy`: the policy under test; `shocks`: a shock setting this population
    is always evaluated under (the `unseen_shocks` substrate), None to follow the tournament's."""

    name: str
    slots: tuple[Slot, ...]
    substrate: str = "homogeneous"
    focal_policy: str = ""
    shocks: str | None = None
    description: str = ""

    @property
    def policies(self) -> tuple[str, ...]:
        """Distinct policy specs, in slot order."""
        return tuple(dict.fromkeys(s.policy for s in self.slots))

    @property
    def focal_kinds(self) -> tuple[str, ...]:
        ks = {k for s in self.slots if s.role == "focal" for k in s.kinds}
        return tuple(k for k in KIND_NAMES + SUPPLY_CHAIN_KINDS if k in ks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["slots"] = [asdict(s) for s in self.slots]
        return d


def homogeneous(policy: str, name: str | None = None) -> PopulationSpec:
    """Every agent runs `policy` (all of them focal)."""
    return PopulationSpec(name or policy, (Slot(policy, KIND_NAMES, "focal"),), "homogeneous", policy,
                          description=f"every agent runs {policy}")


def _label_kinds(kinds: tuple[str, ...], asked: "str | Sequence[str]") -> tuple[str, ...]:
    """Kinds shown in a population's name: an optional kind (electric vehicles) only when named
    itself, not when an alias brought it in, so names of markets without it stay as they were."""
    words = set(asked.replace("+", ",").replace(" ", ",").split(",")) if isinstance(asked, str) else set(asked)
    return tuple(k for k in kinds if k not in BY_NAME or not BY_NAME[k].optional or k in words or f"{k}s" in words)


def focal_background(policy: str, focal: "str | Sequence[str]", background: "str | Sequence[str]",
                     substrate: str | None = None, shocks: str | None = None, description: str = "") -> PopulationSpec:
    """`policy` drives the focal kinds; the other kinds run the background policy, or a round-robin
    mix of several background policies by agent rank within each kind."""
    fk = resolve_kinds(focal)
    bg = [background] if isinstance(background, str) else list(background)
    bg = [b.strip() for item in bg for b in item.split(",") if b.strip()]
    if not bg:
        raise ValueError("a focal/background population needs at least one background policy")
    rest = tuple(k for k in MARKETS[kinds_market(fk)] if k not in fk)
    slots = [Slot(policy, fk, "focal")]
    if rest:
        m = len(bg)
        slots += [Slot(b, rest, "background", (i, m)) for i, b in enumerate(bg)]
    sub = substrate or f"{'+'.join(_label_kinds(fk, focal))}_vs_{'+'.join(bg)}"
    if not description:
        description = (f"focal: {', '.join(fk)}; background: {', '.join(rest) or '(none)'} running "
                       + (bg[0] if len(bg) == 1 else "a round-robin mix of " + ", ".join(bg)))
    return PopulationSpec(f"{policy} in {sub}", tuple(slots), sub, policy, shocks, description)


# Named evaluation substrates: the focal policy slots in, the background is held out.
SUBSTRATES: dict[str, dict[str, Any]] = {
    "sellers_vs_risk_factor": dict(
        focal="sellers", background=["risk_factor"],
        description="focal: solar, wind and storage; background: consumers running the risk-factor negotiator"),
    "buyers_vs_truthful": dict(
        focal="buyers", background=["truthful"],
        description="focal: storage and consumers; background: solar and wind running truthful"),
    "mixed_background": dict(
        focal="sellers", background=["risk_factor", "truthful", "zero_intelligence", "fixed_markup"],
        description="focal: solar, wind and storage; background: consumers split round-robin by index "
                    "between risk_factor, truthful, zero_intelligence and fixed_markup"),
    "unseen_shocks": dict(
        focal="sellers", background=["risk_factor"], shocks="unseen",
        description="sellers_vs_risk_factor under the 'unseen' shock schedule: a SUPPLY_SHORTAGE over "
                    "the solar midday (10:00-15:00) and a DEMAND_SURGE over the evening peak (17:00-22:00), "
                    "each 5 h, longer than any random shock of training (4-16 steps by default)"),
}


def substrate(name: str, focal: str) -> PopulationSpec:
    """The named substrate with `focal` as the policy under test."""
    if name not in SUBSTRATES:
        raise ValueError(f"unknown substrate {name!r}; allowed: {', '.join(SUBSTRATES)}")
    d = SUBSTRATES[name]
    return focal_background(focal, d["focal"], d["background"], substrate=name, shocks=d.get("shocks"),
                            description=d["description"])


# ---- assignment -----------------------------------------------------------------------------------

def rank_in_kind(kind: np.ndarray) -> np.ndarray:
    """Each agent's 0-based rank among the agents of its kind, in index order."""
    kind = np.asarray(kind, dtype=np.int64)
    rank = np.zeros(kind.shape[0], dtype=np.int64)
    for k in np.unique(kind):
        idx = np.flatnonzero(kind == k)
        rank[idx] = np.arange(idx.size)
    return rank


def assign(spec: PopulationSpec, kind: np.ndarray, exclude: Sequence[str] = (),
           kind_names: Sequence[str] = KIND_NAMES) -> list[tuple[Slot, np.ndarray]]:
    """[(slot, agent indices)] for the agents of `kind` [N] (codes into `kind_names`, the energy
    market's by default); slots without agents are left out.

    ValueError if some agent is covered by no slot or by several (naming them): a population must
    cover every agent exactly once. Kinds in `exclude` are left out of every slot (and of the check):
    the agents an exploitability deviation takes over."""
    kind_names = tuple(kind_names)
    kind = np.asarray(kind, dtype=np.int64)
    rank = rank_in_kind(kind)
    ex = np.isin(kind, [kind_names.index(k) for k in exclude])
    count = np.zeros(kind.shape[0], dtype=np.int64)
    out = []
    for slot in spec.slots:
        unknown = [k for k in slot.kinds if k not in kind_names]
        if unknown:
            raise ValueError(f"population {spec.name!r}: kinds {', '.join(unknown)} are not kinds of this market; "
                             f"allowed: {', '.join(kind_names)}")
        ids = [kind_names.index(k) for k in slot.kinds]
        i, m = slot.part
        mask = np.isin(kind, ids) & (rank % m == i) & ~ex
        count += mask
        idx = np.flatnonzero(mask)
        if idx.size:
            out.append((slot, idx))
    missing = np.flatnonzero((count == 0) & ~ex)
    dup = np.flatnonzero(count > 1)
    if missing.size or dup.size:
        def names(ix):
            return ", ".join(f"{i} ({kind_names[kind[i]]})" for i in ix[:8]) + (" ..." if ix.size > 8 else "")
        parts = []
        if missing.size:
            parts.append(f"agents covered by no slot: {names(missing)}")
        if dup.size:
            parts.append(f"agents covered by several slots: {names(dup)}")
        raise ValueError(f"population {spec.name!r}: " + "; ".join(parts))
    return out


# ---- building policies ------------------------------------------------------------------------------

_LOADED: dict[str, Policy] = {}
TRUST_ENV = "CHANNELMARKET_TRUSTED_MODELS"   # os.pathsep-separated resolved paths loaded with trust=True


def load_model(spec: str) -> Policy:
    """A fresh copy of the learned policy at `spec` (loaded once per process, then deep-copied: SB3 policies
    share their networks). Torch runs on one thread: results do not depend on how many workers share the machine."""
    key = str(Path(spec).resolve())
    if key not in _LOADED:
        from ..policies.learned import load

        # `--trust-model` lists the model paths the user trusts (inherited by spawned workers)
        trusted = os.environ.get(TRUST_ENV, "").split(os.pathsep)
        pol = load_rllib(spec) if export_path(spec) else load(spec, trust=key in trusted)   # RLlib: plain export
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover - a learned policy always brings torch
            pass
        _LOADED[key] = pol
    return copy.deepcopy(_LOADED[key])


def make_policy(spec: str, equilibrium: Any = None) -> Policy:
    """A new, unbound policy for a spec; `equilibrium` (an `EquilibriumResult` of the episode) is
    handed to `mean_field` so it does not solve it again."""
    if spec == EQUILIBRIUM_POLICY:
        from ..policies.mean_field import MeanFieldPolicy

        return MeanFieldPolicy(equilibrium)
    if spec == BUILTIN_POLICY:
        raise ValueError(f"policy {BUILTIN_POLICY!r} is the supply chain's own MASER agents: no policy object; "
                         "it runs on supply-chain scenarios only")
    if spec in REGISTRY:
        return make(spec)
    return load_model(spec)


def build_assignments(spec: PopulationSpec, core: Any, equilibrium: Any = None,
                      override: tuple[str, Policy] | None = None) -> tuple[list[tuple[Policy, np.ndarray]], list[Slot]]:
    """(assignments for `run_episode`, the slot of each) for the agents of `core` (after reset).

    `override=(kind, policy)` hands every agent of that kind to `policy` (an exploitability
    deviation); its slot is reported as a focal slot named by the policy's name."""
    kind = core.agents.kind
    excl = (override[0],) if override else ()
    pairs = assign(spec, kind, exclude=excl)
    out, slots = [], []
    for slot, idx in pairs:
        out.append((make_policy(slot.policy, equilibrium), idx))
        slots.append(slot)
    if override:
        idx = np.flatnonzero(np.asarray(kind) == Kind[override[0].upper()])
        if idx.size:
            out.append((override[1], idx))
            slots.append(Slot(getattr(override[1], "name", "deviation"), (override[0],), "focal"))
    return out, slots


__all__ = [
    "ROLES", "KIND_ALIASES", "SUBSTRATES", "EQUILIBRIUM_POLICY", "BUILTIN_POLICY", "Slot", "PopulationSpec", "resolve_kinds",
    "baseline_names", "check_policy", "is_model_path", "policy_kind", "policy_record", "model_files", "sha256_file",
    "homogeneous", "focal_background", "substrate", "assign", "rank_in_kind", "make_policy", "build_assignments",
    "load_model",
]
