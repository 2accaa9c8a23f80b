"""The dashboard's WebSocket protocol: what a page may send, checked before anything acts on it.

Every message is one JSON object of at most `MAX_MESSAGE` bytes with a `type`:

| type      | fields (all optional but `kind`)                          | does                                         |
|-----------|-----------------------------------------------------------|----------------------------------------------|
| `execute` | `scenario`, `population`, `steps`, `interval`, `seed`     | initializes the agents and starts trading     |
| `pause`   |                                                           | stops the simulation and resets the market    |
| `shock`   | `kind` (DEMAND_SURGE, DEMAND_DROP, SUPPLY_SURPLUS, SUPPLY_SHORTAGE), `duration` | one shock at a time |
| `speed`   | `interval` (seconds between steps)                        | changes the pace of a running simulation     |
| `replay`  | `recording` (a name the server offers), `interval`        | plays a recording instead of a live market   |

`parse(text, options)` returns a `Command` or raises `ProtocolError` (a ValueError) whose message
names the field, the value and what is allowed; the server sends that message back to the page as
`{"type": "error", "message": ...}` and carries on. Scenario, population and recording names are
checked against the `Options` the server offers (so a page can never name a file on disk).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ...envs.shocks import Shock

MAX_MESSAGE = 4096
SHOCKS = tuple(s.name for s in Shock if s.name != "NONE")
MIN_INTERVAL, MAX_INTERVAL = 0.02, 10.0   # seconds between steps; the seed's pace is 1 s
DEFAULT_INTERVAL = 1.0
DEFAULT_STEPS = 100                       # the seed runs 100 steps
MAX_STEPS = 10_000
DEFAULT_SHOCK_STEPS = 10
MAX_SHOCK_STEPS = 1_000
FIELDS = {
    "execute": ("scenario", "population", "steps", "interval", "seed"),
    "pause": (),
    "shock": ("kind", "duration"),
    "speed": ("interval",),
    "replay": ("recording", "interval"),
}


class ProtocolError(ValueError):
    """A message the server refuses; its text goes back to the page."""


@dataclass(frozen=True)
class Options:
    """What a page may choose from: scenario names, population names (baselines and the trained
    models the server was started with) and recording names."""

    scenarios: tuple[str, ...]
    populations: tuple[str, ...]
    recordings: tuple[str, ...] = ()
    default_scenario: str = "energy_default"
    default_population: str = "risk_factor"

    def as_message(self) -> dict[str, Any]:
        return {"type": "options", "scenarios": list(self.scenarios), "populations": list(self.populations),
                "recordings": list(self.recordings), "shocks": list(SHOCKS), "scenario": self.default_scenario,
                "population": self.default_population, "steps": DEFAULT_STEPS, "interval": DEFAULT_INTERVAL,
                "intervals": [MIN_INTERVAL, MAX_INTERVAL]}


@dataclass(frozen=True)
class Command:
    """A checked message."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)


def _choice(msg: dict, key: str, allowed: tuple[str, ...], default: "str | None") -> "str | None":
    val = msg.get(key, default)
    if not isinstance(val, str) or val not in allowed:
        shown = ", ".join(allowed[:12]) + (", ..." if len(allowed) > 12 else "")
        raise ProtocolError(f"{key} = {val!r:.80}; allowed: {shown or 'none offered'}")
    return val


def _number(msg: dict, key: str, lo: float, hi: float, default: float, integer: bool = False) -> "float | int":
    val = msg.get(key, default)
    ok = isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val)
    if ok and integer:
        ok = float(val).is_integer()
    if not ok or not lo <= val <= hi:
        what = "an integer" if integer else "a number"
        raise ProtocolError(f"{key} = {val!r:.80}; allowed: {what} in [{lo:g}, {hi:g}]")
    return int(val) if integer else float(val)


def parse(text: Any, options: Options) -> Command:
    """The `Command` a page's message asks for, or `ProtocolError` saying what is wrong."""
    if isinstance(text, (bytes, bytearray)):
        raise ProtocolError("messages are JSON text, not binary")
    if not isinstance(text, str):
        raise ProtocolError(f"messages are JSON text, got {type(text).__name__}")
    if len(text.encode("utf-8", "replace")) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(text)} characters; allowed: at most {MAX_MESSAGE} bytes")
    try:
        msg = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ProtocolError(f"non-finite number {c}")))
    except json.JSONDecodeError as err:
        raise ProtocolError(f"not JSON ({err.msg} at character {err.pos})") from None
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message is a JSON object with a 'type', got {type(msg).__name__}")
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ProtocolError(f"type = {kind!r:.80}; allowed: {', '.join(FIELDS)}")
    extra = sorted(set(msg) - {"type", *FIELDS[kind]})
    if extra:
        raise ProtocolError(f"{kind}: unknown field(s) {extra!r:.120}; allowed: {', '.join(FIELDS[kind]) or 'none'}")
    if kind == "execute":
        return Command(kind, {
            "scenario": _choice(msg, "scenario", options.scenarios, options.default_scenario),
            "population": _choice(msg, "population", options.populations, options.default_population),
            "steps": _number(msg, "steps", 1, MAX_STEPS, DEFAULT_STEPS, integer=True),
            "interval": _number(msg, "interval", MIN_INTERVAL, MAX_INTERVAL, DEFAULT_INTERVAL),
            "seed": _number(msg, "seed", 0, 2**32 - 1, 0, integer=True)})
    if kind == "shock":
        if "kind" not in msg:
            raise ProtocolError(f"shock: field 'kind' is missing; allowed: {', '.join(SHOCKS)}")
        return Command(kind, {"kind": _choice(msg, "kind", SHOCKS, None),
                              "duration": _number(msg, "duration", 1, MAX_SHOCK_STEPS, DEFAULT_SHOCK_STEPS,
                                                  integer=True)})
    if kind == "speed":
        if "interval" not in msg:
            raise ProtocolError("speed: field 'interval' is missing (seconds between steps)")
        return Command(kind, {"interval": _number(msg, "interval", MIN_INTERVAL, MAX_INTERVAL, DEFAULT_INTERVAL)})
    if kind == "replay":
        return Command(kind, {"recording": _choice(msg, "recording", options.recordings, None),
                              "interval": _number(msg, "interval", MIN_INTERVAL, MAX_INTERVAL, DEFAULT_INTERVAL)})
    return Command(kind)


__all__ = ["parse", "Command", "Options", "ProtocolError", "SHOCKS", "MAX_MESSAGE", "DEFAULT_INTERVAL",
           "DEFAULT_STEPS", "MIN_INTERVAL", "MAX_INTERVAL", "DEFAULT_SHOCK_STEPS"]
