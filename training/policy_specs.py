"""Policy specs: how a training run names the policies that drive the agents that do not learn.

One resolver for both trainers. A spec is
  - a baseline's registry name (`policies.registry`: "risk_factor", "truthful", ...),
  - the path of a trained model (an SB3 `model.zip`, an IPPO `ippo_model.pt`, or a run folder
    holding one; loaded frozen by `policies.learned.load`, which never unpickles),
  - None / "none" / "" (no background: every agent must learn),
  - a `Policy` instance (deep-copied per market) or a factory returning one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..policies.base import Policy

MODEL_FILES = ("model.zip", "ippo_model.pt")


def is_none(spec: Any) -> bool:
    return spec is None or (isinstance(spec, str) and spec.strip().lower() in ("none", ""))


def is_model_path(spec: Any) -> bool:
    """True for the path of a trained model file or of a run folder holding one."""
    if not isinstance(spec, (str, Path)):
        return False
    p = Path(spec)
    if p.is_dir():
        return any((p / f).is_file() for f in MODEL_FILES)
    return p.suffix in (".zip", ".pt") and p.is_file()


def check_spec(spec: Any, what: str = "background") -> None:
    """ValueError naming `what`, the spec and what is allowed, unless `resolve` can build it (the message
    says "unknown background policy": the CLI tests match it)."""
    from ..policies.registry import REGISTRY

    if is_none(spec) or isinstance(spec, Policy) or (isinstance(spec, str) and spec in REGISTRY) \
            or is_model_path(spec) or (callable(spec) and not isinstance(spec, (str, Path))):
        return
    raise ValueError(f"{what} = {spec!r}: unknown background policy; allowed: {', '.join(REGISTRY)}, none, or the path "
                     f"of a trained model ({' / '.join(MODEL_FILES)} or its run folder)")


def resolve(spec: Any, **kw: Any) -> Policy | None:
    """A fresh, unbound `Policy` for `spec` (None for no policy); `kw` go to a baseline's constructor."""
    if is_none(spec):
        return None
    if isinstance(spec, Policy):
        return copy.deepcopy(spec)
    from ..policies.registry import REGISTRY, make

    if isinstance(spec, str) and (spec in REGISTRY or not is_model_path(spec)):
        return make(spec, **kw)
    if isinstance(spec, (str, Path)):
        from ..policies.learned import load

        return load(spec)
    if callable(spec):
        pol = spec()
        if not isinstance(pol, Policy):
            raise TypeError(f"policy factory {spec!r} returned {type(pol).__name__}, not a Policy")
        return pol
    raise TypeError(f"policy spec {spec!r}; allowed: a registry name, a model path, a Policy, or a callable "
                    "returning one")


__all__ = ["resolve", "check_spec", "is_none", "is_model_path", "MODEL_FILES"]
