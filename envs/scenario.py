"""Scenario: the frozen, validated parameters of one market (who trades, over which channels, at which tariffs).

A scenario is static for an episode; everything that changes during an episode lives in
`MarketState`. Units: energy in MWh, power in MW, money in EUR, prices in EUR/MWh, time in steps
of `step_minutes`. Presets are named (`energy_small`, `energy_default`, `energy_1k`, `energy_10k`,
`energy_100k`) and every scenario round-trips through dicts, JSON and YAML.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from . import mechanisms
from .goods import GOOD_NAMES
from .goods import PARAMS as _GOOD_PARAMS
from .goods import PRESETS as _GOOD_PRESETS
from .kinds import COUNT_FIELDS, KINDS, PARAMS
from .kinds import PRESETS as _KIND_PRESETS
from .shocks import SHOCK_NAMES, ShockEvent
from .topology import TOPOLOGIES

MECHANISMS = mechanisms.names()
CHANNEL_SIZINGS = ("uniform", "spend")
GRID_BILLINGS = ("wallet", "energy_account")
AUCTION_PRICINGS = ("midpoint", "auction")  # the built-in mechanisms; `mechanisms.names()` lists every registered one

# Share of each agent count in a population built from a total count (`Scenario.with_agents`):
# the kinds' default counts.
_KIND_SHARES = {c.field: c.default / sum(cc.default for s in KINDS for cc in s.counts)
                for s in KINDS for c in s.counts}


def _kind_fields(cls):
    """Add every registered kind's count and parameter fields (kinds.KindSpec) and every good's
    parameter fields (goods.GoodSpec) to the Scenario class before it becomes a dataclass; they
    come after the market's own fields."""
    declared = [f for spec in KINDS for f in spec.fields()] + [(p.field, p.default) for p in _GOOD_PARAMS]
    for name, default in declared:
        cls.__annotations__[name] = "tuple[float, float]" if isinstance(default, tuple) else type(default).__name__
        setattr(cls, name, field(default=default))
    return cls


def _range_field(lo: float, hi: float):
    return field(default=(lo, hi))


@dataclass(frozen=True)
@_kind_fields
class Scenario:
    """Parameters of one market. Every field is validated on construction.

    Agent counts are per kind; consumers come in two demand profiles (residential double
    peak, industrial daytime). Ranges `(low, high)` are sampled uniformly per agent at reset.
    The kinds' counts and parameters (`n_solar`, `solar_capacity`, ...) are declared by the
    kinds themselves (`channelmarket.envs.kinds`) and appended to these fields.
    """

    name: str = "custom"
    # --- payment channels -----------------------------------------------------------
    mean_degree: float = 6.0          # channels per agent at reset (graph is connected)
    channel_capacity: tuple[float, float] = _range_field(50.0, 200.0)   # EUR per channel
    initial_split: float = 0.5        # share of capacity on the opener's side
    channel_open_rate: float = 0.08   # probability a closed channel slot reopens, per step
    channel_close_rate: float = 0.05  # probability an open channel closes, per step
    onchain_fee: float = 0.05         # EUR per channel open or close, to the fee sink
    initial_wallet: float = 5000.0    # EUR on-chain per agent at reset
    # --- time -------------------------------------------------------------------------
    step_minutes: float = 15.0
    episode_steps: int = 96
    start_hour: float = 0.0
    # --- tariffs and price dynamics -------------------------------------------------------
    feed_in_tariff: float = 30.0      # EUR/MWh the grid pays for exported energy
    retail_tariff: float = 150.0      # EUR/MWh the grid charges for imported energy
    base_price: float = 70.0          # EUR/MWh, daily mean of the time-of-day level
    price_reversion: float = 0.2      # per step, pull toward the time-of-day level
    price_imbalance_gain: float = 0.15# relative move per unit of (D-S)/(D+S)
    price_vwap_weight: float = 0.2    # per step, pull toward the last clearing price
    price_volatility: float = 0.02    # relative std of the price noise per step
    volatility_bound: float = 3.0     # noise clipped to this many std
    # --- goods -------------------------------------------------------------------------------
    goods: tuple[str, ...] = ("energy",)   # goods traded, energy first (`channelmarket.envs.goods`)
    # --- clearing -------------------------------------------------------------------------
    mechanism: str = "bilateral"
    negotiation_rounds: int = 8       # K alternating-offer rounds per channel
    auction_eps: float = 0.01         # EUR/MWh, bid increment floor of the eps-auction mechanism
    # --- grid backstop ----------------------------------------------------------------------
    grid_export_share: float = 0.5    # grid takes at most this share of a generator's rating
    grid_import_share: float = 1.5    # grid serves at most this multiple of a consumer's base load
    # --- shocks -------------------------------------------------------------------------------
    shock_schedule: tuple[ShockEvent, ...] = ()
    shock_rate: float = 0.0           # probability a random shock starts, per step with none active
    shock_duration: tuple[int, int] = (4, 16)  # steps, random shocks
    # --- payments: routes, routing fees, liquidity, background payments, faults (envs/payments) ---
    # Every default reproduces the direct one-hop payments of channel_market_v0 (no draws, no routes).
    max_hops: int = 1                 # longest route a payment may take (1 = direct channels only)
    routing_fee_base: tuple[float, float] = _range_field(0.0, 0.0)  # EUR per forwarded payment, per channel
    routing_fee_rate: tuple[float, float] = _range_field(0.0, 0.0)  # share of the forwarded amount, per channel
    max_fee_share: float = 0.05       # most a buyer pays in routing fees, as a share of the payment
    rebalance_below: float = 0.0      # own side under this share of capacity: rebalance by a circular payment (0 = never)
    splice_below: float = 0.0         # own side under this share (and no cheaper rebalance): splice in from the wallet (0 = never)
    splice_above: float = 1.0         # own side over this share: splice the excess out to the wallet (1 = never)
    liquidity_target: float = 0.5     # share of capacity a rebalance or splice restores a side to
    splice_fee: float = 0.05          # EUR on-chain cost of one splice, to the fee sink
    background_payment_rate: float = 0.0  # probability an agent sends a payment without energy, per step
    background_payment_size: tuple[float, float] = _range_field(1.0, 10.0)  # EUR per background payment
    agent_fault_rate: float = 0.0     # probability an active agent fails, per step (its channels force-close)
    channel_fault_rate: float = 0.0   # probability an open channel fails without its agents, per step
    # --- g-econ: topology, channel sizing, partners, accounting, mechanism fidelity (issue 10) ---
    # Defaults reproduce the legacy market exactly; SOUND_MARKET holds the sound Lightning values.
    topology: str = "random"          # channel graph at reset (envs/topology.py, TOPOLOGIES)
    topology_file: str = ""           # `lncli describegraph` JSON for topology="file" ("" = the bundled example)
    channel_sizing: str = "uniform"   # "uniform": channel_capacity EUR; "spend": x the endpoints' spend per step
    channel_sizing_steps: float = 8.0  # "spend": capacity = this many steps of the larger endpoint's spend
    partner_channel_share: float = 0.0  # share of channel reopenings made to the opener's regular partner
    grid_billing: str = "wallet"      # "wallet" (legacy) or "energy_account": grid bills off the channel wallet
    value_of_lost_load: float = 0.0   # EUR/MWh a consumer loses per MWh unserved
    network_charge: float = 0.0       # EUR/MWh the buyer pays the network operator per P2P MWh
    auction_pricing: str = "midpoint" # eps_auction trade price: "midpoint" (legacy) or "auction" (its prices)
    negotiation_probability: float = 1.0  # per open channel and step, chance it negotiates (seed: 0.3)
    partner_action: bool = False      # an action column `open_partner`: > 0 asks for a channel to the regular partner

    # ------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        # normalise containers so YAML/JSON lists become tuples (hashable, frozen), and NumPy
        # numbers (np.int64(5), np.float32(0.5)) Python numbers; np.bool_ stays and is refused
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list) and f.name != "shock_schedule":
                v = tuple(v)
            if isinstance(v, tuple) and f.name != "shock_schedule":
                v = tuple(_py_number(x) for x in v)
            object.__setattr__(self, f.name, _py_number(v))
        raw = self.shock_schedule
        if not isinstance(raw, (list, tuple)):
            raise TypeError(
                f"scenario.shock_schedule = {raw!r}; allowed: a list of {{step, kind, duration}} or (step, kind, duration)"
            )
        sched = []
        for i, e in enumerate(raw):
            try:
                sched.append(e if isinstance(e, ShockEvent) else ShockEvent.from_value(e))
            except (TypeError, ValueError) as err:  # name the field and the entry
                raise type(err)(f"scenario.shock_schedule[{i}] = {e!r}: {err}") from None
        object.__setattr__(self, "shock_schedule", tuple(sched))
        self._validate()

    def _validate(self) -> None:
        _check_str(self, "name")
        for k in COUNT_FIELDS:
            _check_int(self, k, 0, 10_000_000)
        if self.n_agents < 2:
            raise ValueError(f"scenario: n_agents = {self.n_agents}; a market needs at least 2 agents")
        if self.n_sellers == 0 or self.n_buyers == 0:
            raise ValueError(
                f"scenario: {self.n_sellers} sellers and {self.n_buyers} buyers; a market needs at least one of each "
                "(storage counts as both)"
            )
        _check_num(self, "mean_degree", 2.0, 1000.0)
        _check_pair(self, "channel_capacity", 1e-9, 1e12)
        _check_num(self, "initial_split", 0.0, 1.0)
        _check_num(self, "channel_open_rate", 0.0, 1.0)
        _check_num(self, "channel_close_rate", 0.0, 1.0)
        _check_num(self, "onchain_fee", 0.0, 1e9)
        _check_num(self, "initial_wallet", 0.0, 1e15)
        _check_num(self, "step_minutes", 1e-6, 24 * 60.0)
        _check_int(self, "episode_steps", 1, 10_000_000)
        _check_num(self, "start_hour", 0.0, 24.0, hi_open=True)
        _check_num(self, "feed_in_tariff", 0.0, 1e6)
        _check_num(self, "retail_tariff", 0.0, 1e6)
        if not self.retail_tariff > self.feed_in_tariff:
            raise ValueError(
                f"scenario.retail_tariff = {self.retail_tariff!r} must be greater than "
                f"feed_in_tariff = {self.feed_in_tariff!r}"
            )
        _check_num(self, "base_price", self.feed_in_tariff, self.retail_tariff)
        _check_num(self, "price_reversion", 0.0, 1.0)
        _check_num(self, "price_imbalance_gain", 0.0, 10.0)
        _check_num(self, "price_vwap_weight", 0.0, 1.0)
        _check_num(self, "price_volatility", 0.0, 1.0)
        _check_num(self, "volatility_bound", 0.0, 100.0)
        mech = mechanisms.get(self.mechanism) if self.mechanism in mechanisms.names() else None
        if mech is None:
            raise ValueError(f"scenario.mechanism = {self.mechanism!r}; allowed: {', '.join(mechanisms.names())}")
        _check_int(self, "negotiation_rounds", 1, 1000)
        _check_num(self, "auction_eps", 1e-9, 1e6)
        _check_num(self, "grid_export_share", 0.0, 100.0)
        _check_num(self, "grid_import_share", 0.0, 100.0)
        g = self.goods
        if (not isinstance(g, tuple) or not g or g[0] != "energy" or len(set(g)) != len(g)
                or not all(isinstance(x, str) and x in GOOD_NAMES for x in g)):
            raise ValueError(f"scenario.goods = {g!r}; allowed: distinct goods of {', '.join(GOOD_NAMES)}, "
                             "energy first")
        for p in PARAMS + _GOOD_PARAMS:
            (_check_pair if p.shape == "pair" else _check_num)(self, p.field, p.lo, p.hi)
        _check_num(self, "shock_rate", 0.0, 1.0)
        sd = self.shock_duration
        allowed = "a pair (low, high) of integers 1 <= low <= high (steps; (5, 5) for a fixed duration)"
        ints = isinstance(sd, tuple) and len(sd) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in sd)
        if not ints or not 1 <= sd[0] <= sd[1]:
            raise ValueError(f"scenario.shock_duration = {sd!r}; allowed: {allowed}")
        _check_payments(self)
        if mech.validate is not None:
            mech.validate(self)
        self._validate_econ()
        for e in self.shock_schedule:
            if e.step >= self.episode_steps:
                raise ValueError(
                    f"scenario.shock_schedule: event at step {e.step} is past the episode "
                    f"(episode_steps = {self.episode_steps})"
                )

    def _validate_econ(self) -> None:
        """The g-econ block: topology, sizing, partners, accounting, pricing, negotiation."""
        _check_choice(self, "topology", TOPOLOGIES)
        _check_str(self, "topology_file")
        if self.topology_file and self.topology != "file":
            raise ValueError(f"scenario.topology_file = {self.topology_file!r} needs topology = 'file' "
                             f"(topology = {self.topology!r})")
        _check_choice(self, "channel_sizing", CHANNEL_SIZINGS)
        _check_num(self, "channel_sizing_steps", 1e-6, 1e6)
        _check_num(self, "partner_channel_share", 0.0, 1.0)
        _check_choice(self, "grid_billing", GRID_BILLINGS)
        _check_num(self, "value_of_lost_load", 0.0, 1e7)
        _check_num(self, "network_charge", 0.0, 1e6)
        _check_choice(self, "auction_pricing", AUCTION_PRICINGS)
        _check_num(self, "negotiation_probability", 0.0, 1.0)
        if not isinstance(self.partner_action, bool):
            raise ValueError(f"scenario.partner_action = {self.partner_action!r}; allowed: True, False "
                             "(adds the action column open_partner)")

    # ---- derived values ----------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return sum(getattr(self, k) for k in COUNT_FIELDS)

    def count(self, kind: str) -> int:
        """Agents of kind `kind` (a registered kind name)."""
        return next(s for s in KINDS if s.name == kind).count(self)

    @property
    def n_consumers(self) -> int:
        return sum(s.count(self) for s in KINDS if s.grid_import)

    @property
    def n_sellers(self) -> int:
        return sum(s.count(self) for s in KINDS if s.sells_any)

    @property
    def n_buyers(self) -> int:
        return sum(s.count(self) for s in KINDS if s.buys_any)

    @property
    def n_channels(self) -> int:
        """Channel slots E: enough for the mean degree, at least a spanning tree."""
        return max(self.n_agents - 1, int(round(self.n_agents * self.mean_degree / 2)))

    @property
    def step_hours(self) -> float:
        return self.step_minutes / 60.0

    @property
    def routing_fees_on(self) -> bool:
        """Channels carry routing fee policies (drawn per channel from the channel generator)."""
        return self.routing_fee_base[1] > 0.0 or self.routing_fee_rate[1] > 0.0

    @property
    def payments_aftermath(self) -> bool:
        """Anything the payment layer does after the trades are paid: background payments, faults,
        rebalancing or splicing (routes alone need none of it)."""
        return (self.rebalance_below > 0.0 or self.splice_below > 0.0 or self.splice_above < 1.0
                or self.background_payment_rate > 0.0 or self.agent_fault_rate > 0.0 or self.channel_fault_rate > 0.0)

    @property
    def payments_on(self) -> bool:
        """Anything beyond direct one-hop payments: routes, liquidity management, background
        payments or faults (`envs/payments`); False reproduces channel_market_v0 exactly."""
        return (self.max_hops > 1 or self.rebalance_below > 0.0 or self.splice_below > 0.0
                or self.splice_above < 1.0 or self.background_payment_rate > 0.0 or self.agent_fault_rate > 0.0
                or self.channel_fault_rate > 0.0)

    # ---- construction helpers ----------------------------------------------------------------
    def replace(self, **changes: Any) -> "Scenario":
        """A copy with some fields changed (validated); unknown names raise TypeError."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    def with_agents(self, n_agents: int) -> "Scenario":
        """The same market with `n_agents` in this scenario's kind proportions."""
        if isinstance(n_agents, (bool, np.bool_)) or not isinstance(n_agents, (int, np.integer)) or n_agents < 5:
            raise ValueError(f"n_agents = {n_agents!r}; allowed: an integer >= 5 (one of each kind)")
        n_agents = int(n_agents)
        if n_agents < sum(1 for k in COUNT_FIELDS if getattr(self, k) > 0):
            raise ValueError(f"n_agents = {n_agents!r}; allowed: at least one agent per count present in the scenario")
        counts = {k: getattr(self, k) for k in COUNT_FIELDS}
        total = sum(counts.values())
        shares = {k: v / total for k, v in counts.items()}
        new = {k: max(1 if counts[k] > 0 else 0, int(math.floor(n_agents * s))) for k, s in shares.items()}
        # hand the rounding remainder to the largest kinds
        remainder = n_agents - sum(new.values())
        order = sorted((k for k in new if counts[k] > 0), key=lambda k: -shares[k])  # absent kinds stay absent
        i = 0
        while remainder != 0:
            k = order[i % len(order)]
            step = 1 if remainder > 0 else -1
            if new[k] + step >= (1 if counts[k] > 0 else 0):
                new[k] += step
                remainder -= step
            i += 1
        return dataclasses.replace(self, **new)

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "shock_schedule":
                v = [e.to_dict() for e in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scenario":
        if not isinstance(data, dict):
            raise TypeError(f"scenario data must be a mapping, got {type(data).__name__}")
        _reject_unknown(data)
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "scenario JSON") -> "Scenario":
        """Parse and validate; a syntax error is a ValueError naming `source`, the line and column."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: line {err.lineno}, column {err.colno}: {err.msg} (not valid JSON)") from None
        return _from_parsed(data, source)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "scenario YAML") -> "Scenario":
        """Parse (yaml.safe_load: no code runs) and validate; a syntax error is a ValueError naming
        `source`, the line and column."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ValueError(f"{source}: {where}{problem} (not valid YAML)") from None
        return _from_parsed(data, source)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix not in (".json", ".yaml", ".yml"):  # what `load` reads back
            raise ValueError(f"scenario file {str(path)!r}: unknown suffix {path.suffix!r}; allowed: .json, .yaml, .yml")
        from .files import atomic_write_text

        atomic_write_text(path, self.to_json() if path.suffix == ".json" else self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> "Scenario":
        """Read a .json/.yaml/.yml scenario file; every error (syntax, unknown or invalid field) is a
        ValueError/TypeError naming the file (and, for syntax errors, the line)."""
        path = Path(path)
        if path.suffix not in (".json", ".yaml", ".yml"):
            raise ValueError(f"scenario file {str(path)!r}: unknown suffix {path.suffix!r}; allowed: .json, .yaml, .yml")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"scenario file {str(path)!r}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        source = f"scenario file {str(path)!r}"
        return cls.from_json(text, source) if path.suffix == ".json" else cls.from_yaml(text, source)


# ---- validation helpers ----------------------------------------------------------------------

_FIELD_NAMES = {f.name for f in fields(Scenario)}


def _from_parsed(data: Any, source: str) -> Scenario:
    """`Scenario.from_dict` of parsed file content, its errors prefixed with the source."""
    try:
        return Scenario.from_dict(data)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{source}: {err}") from None


def _py_number(v: Any) -> Any:
    """np.integer -> int, np.floating -> float; anything else unchanged (np.bool_ included)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _reject_unknown(keys) -> None:
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise TypeError(f"scenario field names must be strings, got {', '.join(map(repr, bad))}")
    unknown = sorted(set(keys) - _FIELD_NAMES)
    if unknown:
        raise TypeError(
            f"unknown scenario field(s): {', '.join(unknown)}; see channelmarket.envs.Scenario for the allowed fields"
        )


def _check_str(sc: Scenario, name: str) -> None:
    v = getattr(sc, name)
    if not isinstance(v, str):
        raise TypeError(f"scenario.{name} = {v!r}; allowed: a string")


def _check_choice(sc: Scenario, name: str, allowed) -> None:
    v = getattr(sc, name)
    if not isinstance(v, str) or v not in allowed:
        raise ValueError(f"scenario.{name} = {v!r}; allowed: {', '.join(map(repr, allowed))}")


def _check_int(sc: Scenario, name: str, lo: int, hi: int) -> None:
    v = getattr(sc, name)
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"scenario.{name} = {v!r}; allowed: an integer in [{lo}, {hi}]")
    if not lo <= v <= hi:
        raise ValueError(f"scenario.{name} = {v!r}; allowed: an integer in [{lo}, {hi}]")


def _check_num(sc: Scenario, name: str, lo: float, hi: float, hi_open: bool = False) -> None:
    v = getattr(sc, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"scenario.{name} = {v!r}; allowed: a number in [{lo}, {hi}{')' if hi_open else ']'}")
    ok = math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ValueError(f"scenario.{name} = {v!r}; allowed: a number in [{lo}, {hi}{')' if hi_open else ']'}")


def _check_pair(sc: Scenario, name: str, lo: float, hi: float) -> None:
    v = getattr(sc, name)
    ok = (
        isinstance(v, tuple)
        and len(v) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
        and lo <= v[0] <= v[1] <= hi
    )
    if not ok:
        raise ValueError(f"scenario.{name} = {v!r}; allowed: a pair (low, high) with {lo} <= low <= high <= {hi}")


def _check_payments(sc: Scenario) -> None:
    """The payment block's fields (envs/payments)."""
    _check_int(sc, "max_hops", 1, 16)
    _check_pair(sc, "routing_fee_base", 0.0, 1e6)
    _check_pair(sc, "routing_fee_rate", 0.0, 1.0)
    _check_num(sc, "max_fee_share", 0.0, 1.0)
    _check_num(sc, "rebalance_below", 0.0, 1.0)
    _check_num(sc, "splice_below", 0.0, 1.0)
    _check_num(sc, "splice_above", 0.0, 1.0)
    _check_num(sc, "liquidity_target", 0.0, 1.0)
    for low in ("rebalance_below", "splice_below"):
        if getattr(sc, low) > sc.liquidity_target:
            raise ValueError(f"scenario.{low} = {getattr(sc, low)!r}; allowed: at most liquidity_target = "
                             f"{sc.liquidity_target!r} (a side is restored up to the target)")
    if sc.splice_above < sc.liquidity_target:
        raise ValueError(f"scenario.splice_above = {sc.splice_above!r}; allowed: at least liquidity_target = "
                         f"{sc.liquidity_target!r} (a side is spliced down to the target)")
    _check_num(sc, "splice_fee", 0.0, 1e9)
    _check_num(sc, "background_payment_rate", 0.0, 1.0)
    _check_pair(sc, "background_payment_size", 1e-9, 1e12)
    _check_num(sc, "agent_fault_rate", 0.0, 1.0)
    _check_num(sc, "channel_fault_rate", 0.0, 1.0)


# The payment layer of the sound Lightning market (g-pay's fields of SOUND_MARKET): three-hop
# routes at Lightning-like fees (base up to 0.001 EUR, 0.01-0.1 % of the amount), buyers paying at
# most 1 % in fees, channels rebalanced under 20 % and spliced in under 5 % of their capacity.
PAYMENTS_SOUND_MARKET: dict[str, Any] = dict(
    max_hops=3, routing_fee_base=(0.0, 0.001), routing_fee_rate=(0.0001, 0.001), max_fee_share=0.01,
    rebalance_below=0.2, splice_below=0.05, liquidity_target=0.5)


# ---- presets -------------------------------------------------------------------------------

PRESETS: dict[str, Scenario] = {
    "energy_small": Scenario(
        name="energy_small", n_solar=3, n_wind=2, n_storage=2, n_residential=3, n_industrial=2,
        mean_degree=4.0, episode_steps=24, step_minutes=60.0,
    ),
    "energy_default": Scenario(name="energy_default"),
}
PRESETS["energy_1k"] = Scenario(name="energy_1k", mean_degree=10.0).with_agents(1_000)
PRESETS["energy_10k"] = Scenario(name="energy_10k", mean_degree=10.0).with_agents(10_000)
PRESETS["energy_100k"] = Scenario(name="energy_100k", mean_degree=10.0).with_agents(100_000)
for _name, _kw in {**_KIND_PRESETS, **_GOOD_PRESETS}.items():   # presets the kinds declare (e.g. energy_ev)
    _base = PRESETS[_kw.pop("base", "energy_default")]
    PRESETS[_name] = _base.replace(name=_name, **_kw)
DEFAULT_SCENARIO = "energy_default"

# ---- the sound Lightning market (issue 10) ------------------------------------------------------
# The overrides that turn the legacy market into the sound one; `channel_market_v1` and the
# `energy_lightning*` presets apply them. g-econ's part: kind-aware channels sized in the money the
# trades move, channels reopened to regular partners, grid bills on an energy account apart from
# the channel wallet, unserved energy valued at a value of lost load, a network charge on P2P trade,
# the eps-auction at its own prices; and the payment layer's routes, fees and liquidity management.
SOUND_MARKET: dict[str, Any] = {
    **PAYMENTS_SOUND_MARKET,
    "topology": "kind_aware",
    "channel_sizing": "spend",
    "channel_sizing_steps": 8.0,
    "partner_channel_share": 0.5,
    "grid_billing": "energy_account",
    "value_of_lost_load": 3000.0,
    "network_charge": 10.0,
    "auction_pricing": "auction",
}
# The seed's own channel dynamics (../shared/seeds/000): 50-200 capacity split evenly, channels open
# at 8 % and close at 5 % per step, each channel negotiates with a 30 % chance per step, and random
# payment flows without energy (background payments, routed over up to three hops).
SEED000: dict[str, Any] = {
    "channel_capacity": (50.0, 200.0), "initial_split": 0.5, "channel_open_rate": 0.08,
    "channel_close_rate": 0.05, "negotiation_probability": 0.3, "background_payment_rate": 0.1,
    "background_payment_size": (1.0, 10.0), "max_hops": 3,
}
PRESETS["energy_lightning"] = PRESETS["energy_default"].replace(name="energy_lightning", **SOUND_MARKET)
PRESETS["energy_lightning_10k"] = PRESETS["energy_10k"].replace(name="energy_lightning_10k", **SOUND_MARKET)
PRESETS["energy_lightning_scale_free"] = PRESETS["energy_lightning"].replace(
    name="energy_lightning_scale_free", topology="scale_free")
PRESETS["energy_lightning_real"] = PRESETS["energy_lightning"].replace(
    name="energy_lightning_real", topology="file", mean_degree=5.0)   # the bundled 300-node describegraph file
PRESETS["seed000"] = PRESETS["energy_default"].replace(name="seed000", **SEED000)


def get_scenario(spec: "str | Path | Scenario | dict | None" = None, **overrides: Any) -> Scenario:
    """Resolve a preset name, a YAML/JSON path, a dict or a Scenario; then apply field overrides.

    `n_agents=` is accepted as an override and rescales the population in the same proportions.
    """
    if spec is None:
        spec = DEFAULT_SCENARIO
    if isinstance(spec, Scenario):
        sc = spec
    elif isinstance(spec, dict):
        sc = Scenario.from_dict(spec)
    elif isinstance(spec, (str, Path)):
        s = str(spec)
        if s in PRESETS:
            sc = PRESETS[s]
        elif Path(s).suffix in (".json", ".yaml", ".yml"):
            sc = Scenario.load(s)
        else:
            raise ValueError(
                f"scenario {s!r} is neither a preset nor a .yaml/.json file; presets: {', '.join(PRESETS)}"
            )
    else:
        raise TypeError(f"scenario must be a name, path, dict or Scenario, got {type(spec).__name__}")
    n_agents = overrides.pop("n_agents", None)
    if overrides:
        sc = sc.replace(**overrides)
    if n_agents is not None:
        sc = sc.with_agents(n_agents)
    return sc


__all__ = ["Scenario", "PRESETS", "PAYMENTS_SOUND_MARKET", "DEFAULT_SCENARIO", "MECHANISMS", "get_scenario",
           "SHOCK_NAMES", "SOUND_MARKET", "SEED000"]
