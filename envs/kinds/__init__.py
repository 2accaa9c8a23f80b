"""The registry of agent kinds: every module of this package that defines `SPEC` is a kind.

Everything kind-specific elsewhere derives from `KINDS` (registry order = `SPEC.order`): kind
names and codes (`state.Kind`), the aliases and the seller/buyer sets, the scenario's count and
parameter fields with their validation, the block layout of the agents, the draws at reset,
the observation's kind one-hot, per-kind metrics. Adding a kind is adding one module here.

Kinds belong to one economy (`KindSpec.market`): `KINDS` and everything derived from it are the
energy market's; `market_kinds("supply_chain")` are the MASER production loop's (farmer, miller,
baker, seller), declared the same way and read by `envs.supply_chain`.
"""

from __future__ import annotations

from ..plugins import declared_specs
from .base import Count, Draw, KindSpec, Param, Profile, Role


def _discover_all() -> tuple[KindSpec, ...]:
    specs = declared_specs(__name__, __path__, KindSpec)
    keys = [(s.market, s.name) for s in specs]
    if len(set(keys)) != len(keys):
        raise RuntimeError(f"agent kinds: duplicate names in {keys}")
    return tuple(specs)


ALL_KINDS: tuple[KindSpec, ...] = _discover_all()


def market_kinds(market: str) -> tuple[KindSpec, ...]:
    """The kinds of economy `market` ("energy", "supply_chain", ...), in registry order."""
    specs = tuple(s for s in ALL_KINDS if s.market == market)
    if not specs:
        raise ValueError(f"market = {market!r}; allowed: {', '.join(sorted({s.market for s in ALL_KINDS}))}")
    return specs


def _discover() -> tuple[KindSpec, ...]:
    specs = market_kinds("energy")
    names = [s.name for s in specs]
    orders = [s.order for s in specs]
    if len(set(names)) != len(names) or len(set(orders)) != len(orders):
        raise RuntimeError(f"agent kinds: duplicate names or orders in {list(zip(names, orders))}")
    return tuple(specs)


KINDS: tuple[KindSpec, ...] = _discover()
KIND_NAMES: tuple[str, ...] = tuple(s.name for s in KINDS)
BY_NAME: dict[str, KindSpec] = {s.name: s for s in KINDS}

# Group names, shared by training ("which kinds learn") and evaluation ("which are focal").
KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "all": KIND_NAMES,
    "sellers": tuple(s.name for s in KINDS if s.sells_any),
    "generators": tuple(s.name for s in KINDS if s.generator),
    "buyers": tuple(s.name for s in KINDS if s.buys_any),
    "consumers": tuple(s.name for s in KINDS if s.grid_import),
    "stores": tuple(s.name for s in KINDS if s.stores),
}

# Goods in order of first mention (energy first): good index = position.
GOODS: tuple[str, ...] = tuple(dict.fromkeys(g for s in KINDS for g in s.sells + s.buys))

# Per-agent columns of AgentParams.extra, in registry order.
EXTRA_COLUMNS: tuple[str, ...] = tuple(c for s in KINDS for c in s.extra)
EXTRA_INDEX: dict[str, int] = {c: i for i, c in enumerate(EXTRA_COLUMNS)}

COUNT_FIELDS: tuple[str, ...] = tuple(c.field for s in KINDS for c in s.counts)
PARAMS: tuple[Param, ...] = tuple(p for s in KINDS for p in s.params)
PRESETS: dict[str, dict] = {name: dict(kw) for s in KINDS for name, kw in s.presets.items()}


def _check_fields() -> None:
    seen: dict[str, str] = {}
    for s in KINDS:
        for name, _ in s.fields():
            if name in seen:
                raise RuntimeError(f"agent kinds {seen[name]!r} and {s.name!r} both declare scenario field {name!r}")
            seen[name] = s.name
    if len(set(EXTRA_COLUMNS)) != len(EXTRA_COLUMNS):
        raise RuntimeError(f"agent kinds: duplicate extra columns {EXTRA_COLUMNS}")


_check_fields()


def observed_kinds(sc) -> tuple[str, ...]:
    """Kinds with a one-hot column in `sc`'s observation: every standard kind, and the optional
    ones the scenario has (so the standard layout stays the same whatever kinds exist)."""
    return tuple(s.name for s in KINDS if not s.optional) + tuple(
        s.name for s in KINDS if s.optional and s.count(sc) > 0)


__all__ = ["KINDS", "KIND_NAMES", "KIND_ALIASES", "BY_NAME", "GOODS", "EXTRA_COLUMNS", "EXTRA_INDEX",
           "COUNT_FIELDS", "PARAMS", "PRESETS", "KindSpec", "Count", "Param", "Draw", "Role", "Profile",
           "observed_kinds", "ALL_KINDS", "market_kinds"]
