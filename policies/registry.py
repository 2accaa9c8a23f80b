"""Baselines by name: `make("risk_factor", advertising=0.5)` -> a fresh, unbound policy.

| name                | policy                                                    |
|---------------------|-----------------------------------------------------------|
| `truthful`          | asks at reserve, bids at limit (`simple.Truthful`)        |
| `fixed_markup`      | posted markup sellers, price-taking buyers (`simple.FixedMarkup`) |
| `zero_intelligence` | Gode-Sunder ZI-C (`simple.ZeroIntelligence`)              |
| `random`            | uniform random actions (`simple.RandomPolicy`)            |
| `risk_factor`       | MASER risk-factor negotiator (`risk_factor.RiskFactor`)   |
| `eps_auction`       | ε-auction agreement (`auction_baseline.EpsAuctionBaseline`) |
| `mean_field`        | bids and asks at the mean-field equilibrium price path (`mean_field.MeanFieldPolicy`) |
"""

from __future__ import annotations

from typing import Any, Callable

from .auction_baseline import EpsAuctionBaseline
from .mean_field import MeanFieldPolicy
from .base import Policy
from .risk_factor import RiskFactor
from .simple import FixedMarkup, RandomPolicy, Truthful, ZeroIntelligence

REGISTRY: dict[str, Callable[..., Policy]] = {
    "truthful": Truthful,
    "fixed_markup": FixedMarkup,
    "zero_intelligence": ZeroIntelligence,
    "random": RandomPolicy,
    "risk_factor": RiskFactor,
    "eps_auction": EpsAuctionBaseline,
    "mean_field": MeanFieldPolicy,
}
BASELINES = tuple(REGISTRY)


def make(name: str, **kwargs: Any) -> Policy:
    """A new policy by name; keyword arguments go to its constructor."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(REGISTRY)}")
    try:
        return REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise TypeError(f"policy {name!r}: {exc}") from None


def register(name: str, factory: Callable[..., Policy]) -> None:
    """Add a policy factory under `name` (e.g. a learned-policy loader)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"policy name must be a non-empty string, got {name!r}")
    if name in REGISTRY:
        raise ValueError(f"policy {name!r} is already registered")
    REGISTRY[name] = factory


__all__ = ["make", "register", "REGISTRY", "BASELINES"]
