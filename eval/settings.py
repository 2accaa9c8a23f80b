"""Evaluation settings: seeds, scenarios, mechanisms, shock settings and populations, read and
checked before any job runs (the first layer of the evaluation pipeline: settings -> jobs ->
runs -> statistics -> report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..envs import mechanisms
from ..envs.scenario import PRESETS, Scenario, get_scenario
from ..envs.shocks import SHOCK_NAMES, ShockEvent
from .markets import is_supply_chain, supply_chain_mechanism, supply_chain_shocks
from .populations import PopulationSpec, check_policy, homogeneous
from .seeds import parse_seeds  # noqa: F401  (seed lists are settings too)

DEFAULT_RANDOM_SHOCK_RATE = 0.02
SHOCK_FORMS = ("scenario", "none", "random", "random:RATE", "unseen", "KIND@STEP:DURATION[+...]")


# ---- settings --------------------------------------------------------------------------------------

def scenario_names() -> tuple[str, ...]:
    """Every preset a tournament accepts: the energy market's, then the supply chain's (`supply_chain_v0`)."""
    from ..envs.supply_chain.scenario import PRESETS as SUPPLY_CHAIN_PRESETS

    return tuple(PRESETS) + tuple(SUPPLY_CHAIN_PRESETS)


def resolve_scenario(spec: Any) -> tuple[str, Scenario]:
    """(label, Scenario) from a preset name, a .yaml/.json path, a dict or a Scenario; a supply-chain
    preset name or `SupplyChainScenario` gives (label, SupplyChainScenario); ValueError naming the
    value and the presets for anything else."""
    from ..envs.supply_chain.scenario import PRESETS as SUPPLY_CHAIN_PRESETS
    from ..envs.supply_chain.scenario import SupplyChainScenario, make_scenario

    if isinstance(spec, SupplyChainScenario):
        return spec.name, spec
    if isinstance(spec, str) and spec in SUPPLY_CHAIN_PRESETS and spec not in PRESETS:
        return spec, make_scenario(spec)
    if isinstance(spec, (str, Path)) and str(spec) not in PRESETS and not Path(spec).is_file():
        raise ValueError(f"unknown scenario {str(spec)!r}; allowed: {', '.join(scenario_names())} or a .yaml/.json "
                         "scenario file")
    try:
        sc = get_scenario(spec)
    except (ValueError, TypeError, OSError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
            mark = exc.problem_mark
            detail = f"not valid YAML: {exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
        raise ValueError(f"scenario {str(spec)!r}: {detail}; fix the file or use a preset "
                         f"({', '.join(PRESETS)})") from None
    if isinstance(spec, str) and spec in PRESETS:
        return spec, sc
    if isinstance(spec, (str, Path)) and sc.name == "custom":
        return Path(spec).stem, sc
    return sc.name, sc


def check_mechanism(name: str) -> str:
    """`name` if it is a registered clearing mechanism; ValueError naming the registered ones."""
    if name not in mechanisms.names():
        raise ValueError(f"unknown mechanism {name!r}; allowed: {', '.join(mechanisms.names())}")
    return name


def unseen_schedule(sc: Scenario) -> tuple[ShockEvent, ...]:
    """Shocks at times and durations a policy trained with the default random shocks never saw:
    a SUPPLY_SHORTAGE over the solar midday (10:00-15:00) and a DEMAND_SURGE over the evening peak
    (17:00-22:00), 5 h each (longer than the 4-16 steps of random shocks at 15-minute steps),
    on the first day of the episode; events past its end are dropped."""
    out = []
    for kind, hour in (("SUPPLY_SHORTAGE", 10.0), ("DEMAND_SURGE", 17.0)):
        step = int(round(((hour - sc.start_hour) % 24.0) / sc.step_hours))
        dur = max(1, int(round(5.0 / sc.step_hours)))
        if step < sc.episode_steps:
            out.append(ShockEvent(step, kind, dur))
    return tuple(out)


def apply_shocks(sc: Scenario, setting: str) -> Scenario:
    """The scenario under a shock setting (see the module docstring); ValueError naming the
    setting and the allowed forms. A supply-chain scenario takes its own forms
    (`eval.markets.SHOCK_FORMS`: scenario, none, move_key@DAY)."""
    if is_supply_chain(sc):
        return supply_chain_shocks(sc, setting)
    s = setting.strip()
    try:
        if s == "scenario":
            return sc
        if s == "none":
            return sc.replace(shock_rate=0.0, shock_schedule=())
        if s == "random" or s.startswith("random:"):
            rate = DEFAULT_RANDOM_SHOCK_RATE if s == "random" else float(s.split(":", 1)[1])
            return sc.replace(shock_rate=rate, shock_schedule=())
        if s == "unseen":
            return sc.replace(shock_rate=0.0, shock_schedule=unseen_schedule(sc))
        events = []
        for part in s.split("+"):
            kind, rest = part.split("@")
            step, dur = rest.split(":")
            events.append(ShockEvent(int(step), kind.strip().upper(), int(dur)))
        return sc.replace(shock_rate=0.0, shock_schedule=tuple(events))
    except (ValueError, TypeError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise ValueError(f"shock setting {setting!r}{detail}; allowed: {', '.join(SHOCK_FORMS)} with KIND one of "
                         f"{', '.join(SHOCK_NAMES[1:])}") from None


def variant(sc: Scenario, mechanism: str, shocks: str) -> Scenario:
    """`sc` with its clearing mechanism and shock setting replaced (a supply-chain scenario has one
    mechanism, its own offers and answers: `eval.markets.MECHANISM`)."""
    if is_supply_chain(sc):
        supply_chain_mechanism(mechanism)
        return apply_shocks(sc, shocks)
    return apply_shocks(sc.replace(mechanism=check_mechanism(mechanism)), shocks)


def as_population(p: "PopulationSpec | str") -> PopulationSpec:
    """A spec, or a policy spec string for a homogeneous population of it."""
    if isinstance(p, PopulationSpec):
        return p
    return homogeneous(check_policy(p))


__all__ = ["parse_seeds", "resolve_scenario", "scenario_names", "check_mechanism", "unseen_schedule", "apply_shocks", "variant",
           "as_population", "SHOCK_FORMS", "DEFAULT_RANDOM_SHOCK_RATE"]
