"""External shocks: one at a time, each multiplying aggregate supply or demand for a duration.

A shock starts in one of three ways: `MarketCore.inject_shock` during an episode, a
`ShockEvent` in the scenario's schedule, or at random with `Scenario.shock_rate` per step
(only while none is active). A new injected or scheduled shock replaces the active one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np


class Shock(IntEnum):
    NONE = 0
    DEMAND_SURGE = 1     # demand x2 (heatwave, economic growth)
    DEMAND_DROP = 2      # demand x0.3 (downturn)
    SUPPLY_SURPLUS = 3   # generation x2 (ideal weather)
    SUPPLY_SHORTAGE = 4  # generation x0.3 (outages, poor weather)


SHOCK_NAMES = tuple(s.name for s in Shock)
N_SHOCKS = len(Shock)  # including NONE

# factor[kind] -> (supply multiplier, demand multiplier)
SUPPLY_FACTOR = np.array([1.0, 1.0, 1.0, 2.0, 0.3])
DEMAND_FACTOR = np.array([1.0, 2.0, 0.3, 1.0, 1.0])


def parse_shock(kind: Any) -> Shock:
    """A Shock from its name (case-insensitive) or int; NONE is not a shock to start."""
    if isinstance(kind, Shock):
        s = kind
    elif isinstance(kind, str):
        try:
            s = Shock[kind.upper()]
        except KeyError:
            raise ValueError(f"shock kind {kind!r}; allowed: {', '.join(SHOCK_NAMES[1:])}") from None
    elif isinstance(kind, (int, np.integer)) and not isinstance(kind, bool):
        if not 1 <= int(kind) < N_SHOCKS:
            raise ValueError(f"shock kind {kind!r}; allowed: 1..{N_SHOCKS - 1} or a name {SHOCK_NAMES[1:]}")
        s = Shock(int(kind))
    else:
        raise TypeError(f"shock kind must be a name or int, got {type(kind).__name__}")
    if s == Shock.NONE:
        raise ValueError(f"shock kind NONE is not a shock; allowed: {', '.join(SHOCK_NAMES[1:])}")
    return s


MAX_DURATION = int(np.iinfo(np.int64).max)   # the market keeps the remaining steps as an int64


def check_duration(duration: Any) -> int:
    """A shock duration as an int in 1..MAX_DURATION (NumPy integers too); ValueError naming the value otherwise."""
    if (isinstance(duration, (bool, np.bool_)) or not isinstance(duration, (int, np.integer))
            or not 1 <= duration <= MAX_DURATION):
        raise ValueError(f"shock duration {duration!r}; allowed: an integer number of steps >= 1 and <= {MAX_DURATION}")
    return int(duration)


@dataclass(frozen=True)
class ShockEvent:
    """A scheduled shock: starts at `step` (0-based step index) and lasts `duration` steps."""

    step: int
    kind: str
    duration: int

    def __post_init__(self) -> None:
        if isinstance(self.step, (bool, np.bool_)) or not isinstance(self.step, (int, np.integer)) or self.step < 0:
            raise ValueError(f"shock_schedule step = {self.step!r}; allowed: an integer >= 0")
        object.__setattr__(self, "step", int(self.step))
        object.__setattr__(self, "kind", parse_shock(self.kind).name)
        object.__setattr__(self, "duration", check_duration(self.duration))

    @classmethod
    def from_value(cls, v: Any) -> "ShockEvent":
        if isinstance(v, dict):
            extra = set(v) - {"step", "kind", "duration"}
            if extra:
                raise ValueError(f"shock_schedule entry has unknown keys {sorted(extra)}; allowed: step, kind, duration")
            return cls(**v)
        if isinstance(v, (list, tuple)) and len(v) == 3:
            return cls(*v)
        raise ValueError(f"shock_schedule entry {v!r}; allowed: {{step, kind, duration}} or (step, kind, duration)")

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "duration": self.duration}


def advance_shock(kind: int, remaining: int, step: int, schedule, rate: float,
                  duration_range: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """The shock active for interval `step`: the old one counts down, a scheduled one replaces it,
    a random one may start when none is active. Draws one uniform (and one integer when a random
    shock starts) from `rng` whenever `rate > 0`, so trajectories stay aligned."""
    if remaining > 0:
        remaining -= 1
        if remaining == 0:
            kind = 0
    for e in schedule:
        if e.step == step:
            kind, remaining = int(Shock[e.kind]), e.duration
    if rate > 0.0:
        u = rng.random()
        if kind == 0 and u < rate:
            kind = int(rng.integers(1, N_SHOCKS))
            remaining = int(rng.integers(duration_range[0], duration_range[1] + 1))
    return kind, remaining
