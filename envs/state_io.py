"""The state-dict format of `MarketCore`: writing it, and reading it back only after every field is checked.

A state dict is plain data (arrays, numbers, strings, dicts; no pickles):

    {"format_version": 1, "scenario": {...}, "agents": {field: array}, "state": {field: array or number},
     "generators": {"rng": bit_generator.state, "rng_exo": ...}, "seed_stream": {...}}

`load` checks the whole dict before building anything: the version, that every field is there
(and nothing else), shapes against the scenario (N agents, E channel slots, G goods, the price
history window), dtypes (bool is bool, ints are ints, floats are floats; no object arrays),
ranges (finite money and prices, balances within capacity, endpoints in [0, N), u != v, state of
charge within [0, capacity], t within the episode, a valid shock), the kind codes against the
scenario's counts, and the generator states. Bit generators come from an allowlist, never from
`getattr(np.random, name)`. Errors name the field and the index, the value and what is allowed.
The arrays returned are fresh copies: the caller's dict can change afterwards without effect.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from .prices import PRICE_HISTORY
from .scenario import Scenario
from .seeding import SeedStream, stream_from_dict
from .shocks import N_SHOCKS, SHOCK_NAMES
from .state import AgentParams, MarketState, flow_columns_of, flow_ring

FORMAT_VERSION = 1
TOP_KEYS = ("format_version", "scenario", "agents", "state", "generators", "seed_stream")

# The bit generators a state dict may name, and the structure of each one's `.state`:
# ("int", bits) a Python/NumPy integer in [0, 2**bits); ("range", lo, hi) an integer in [lo, hi];
# ("array", bits, n) n unsigned integers of `bits` bits; a dict, the same structure nested.
_U32, _U128, _BIT = ("int", 32), ("int", 128), ("range", 0, 1)
_A64 = lambda n: ("array", 64, n)  # noqa: E731
BIT_GENERATORS: dict[str, tuple[type, dict]] = {
    "PCG64": (np.random.PCG64, {"state": {"state": _U128, "inc": _U128}, "has_uint32": _BIT, "uinteger": _U32}),
    "PCG64DXSM": (np.random.PCG64DXSM,
                  {"state": {"state": _U128, "inc": _U128}, "has_uint32": _BIT, "uinteger": _U32}),
    "Philox": (np.random.Philox, {"state": {"counter": _A64(4), "key": _A64(2)}, "buffer": _A64(4),
                                  "buffer_pos": ("range", 0, 4), "has_uint32": _BIT, "uinteger": _U32}),
    "SFC64": (np.random.SFC64, {"state": {"state": _A64(4)}, "has_uint32": _BIT, "uinteger": _U32}),
    "MT19937": (np.random.MT19937, {"state": {"key": ("array", 32, 624), "pos": ("range", 0, 624)}}),
}


# ---- writing -------------------------------------------------------------------------------------

def dump(scenario: Scenario, agents: AgentParams, state: MarketState, stream: "SeedStream | None") -> dict[str, Any]:
    """The state dict of a core (arrays copied, so later steps do not change it)."""
    st, gens = {}, {}
    for f in dataclasses.fields(state):
        v = getattr(state, f.name)
        if isinstance(v, np.random.Generator):
            gens[f.name] = v.bit_generator.state
        elif f.name in FLOW_FIELDS:   # stored as the one ring buffer `flow_history`
            if f.name == FLOW_FIELDS[0]:
                st["flow_history"] = flow_ring(state.flow_columns, state.flow_reopened, state.t)
        else:
            st[f.name] = v.copy() if isinstance(v, np.ndarray) else v
    return {
        "format_version": FORMAT_VERSION,
        "scenario": scenario.to_dict(),
        "agents": {f.name: getattr(agents, f.name).copy() for f in dataclasses.fields(agents)},
        "state": st,
        "generators": gens,
        "seed_stream": None if stream is None else stream.to_dict(),
    }


# ---- reading -------------------------------------------------------------------------------------

def load(d: Any, scenario: Scenario, template: tuple[AgentParams, MarketState]
         ) -> tuple[AgentParams, MarketState, "SeedStream | None"]:
    """(agents, state, seed stream) from a state dict, or ValueError/TypeError naming the bad field.

    `template` is any (agents, state) of `scenario` (its dtypes, shapes and kind codes are the
    reference); nothing outside the returned objects is changed."""
    if not isinstance(d, dict):
        raise TypeError(f"state_dict must be a dict (from MarketCore.state_dict()), got {type(d).__name__}")
    if "format_version" not in d:
        raise ValueError(f"state_dict has no 'format_version'; this channelmarket reads format {FORMAT_VERSION} "
                         "(save it again with MarketCore.state_dict())")
    ver = d["format_version"]
    if isinstance(ver, bool) or not isinstance(ver, (int, np.integer)) or ver != FORMAT_VERSION:
        raise ValueError(f"state_dict['format_version'] = {ver!r}; this channelmarket reads format {FORMAT_VERSION}")
    _exact_keys(d, TOP_KEYS, "state_dict")
    try:
        saved = Scenario.from_dict(d["scenario"])
    except (TypeError, ValueError) as err:
        raise type(err)(f"state_dict['scenario']: {err}") from None
    if saved != scenario:
        diff = [f.name for f in dataclasses.fields(Scenario) if getattr(saved, f.name) != getattr(scenario, f.name)]
        raise ValueError(f"state_dict['scenario'] differs from this core's scenario in {', '.join(diff)}; "
                         "build MarketCore with the saved scenario first")
    t_agents, t_state = template
    agents = AgentParams(**_arrays(d["agents"], t_agents, "state_dict['agents']"))
    _check_agents(agents, t_agents, scenario)
    gens = _generators(d["generators"], [f.name for f in dataclasses.fields(t_state)
                                         if isinstance(getattr(t_state, f.name), np.random.Generator)])
    fields = _arrays(d["state"], _StateTemplate(t_state), "state_dict['state']", skip=set(gens))
    _check_state(fields, agents, scenario)
    fields["flow_columns"], fields["flow_reopened"] = flow_columns_of(fields.pop("flow_history"), fields["t"])
    state = MarketState(**fields, **gens)
    stream = None if d["seed_stream"] is None else stream_from_dict(d["seed_stream"], "state_dict['seed_stream']")
    return agents, state, stream


FLOW_FIELDS = ("flow_columns", "flow_reopened")   # a state's flow history, one ring buffer in the dict


class _StateTemplate:
    """A state's fields as the state dict holds them: the flow history as the ring buffer
    `flow_history` [E, FLOW_HISTORY] float32 (step s in column s % FLOW_HISTORY) in place of the
    per-step columns, so dicts written before the columns existed load unchanged."""

    def __init__(self, state: MarketState) -> None:
        self.state = state
        self.names = [f.name for f in dataclasses.fields(state) if f.name not in FLOW_FIELDS] + ["flow_history"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["state"], name)


def _exact_keys(d: Any, keys, where: str) -> None:
    if not isinstance(d, dict):
        raise TypeError(f"{where} must be a dict, got {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    unknown = [repr(k) for k in d if k not in keys]
    if missing or unknown:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else [])
        raise ValueError(f"{where}: {'; '.join(parts)}; expected exactly {', '.join(keys)}")


def _arrays(d: Any, template: Any, where: str, skip: set = frozenset()) -> dict[str, Any]:
    """Every field of the template dataclass from `d`, as fresh values of the template's dtype,
    shape and Python type (the price history may hold 1..PRICE_HISTORY rows)."""
    names = [n for n in (template.names if isinstance(template, _StateTemplate)
                         else [f.name for f in dataclasses.fields(template)]) if n not in skip]
    _exact_keys(d, names, where)
    out: dict[str, Any] = {}
    for name in names:
        ref, v, w = getattr(template, name), d[name], f"{where}['{name}']"
        if isinstance(ref, np.ndarray):
            out[name] = _array(v, ref, w, name)
        elif isinstance(ref, (int, np.integer)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{w} = {v!r} ({type(v).__name__}); allowed: an integer")
            out[name] = int(v)
        elif isinstance(ref, (float, np.floating)):
            if not isinstance(v, (float, np.floating)):
                raise TypeError(f"{w} = {v!r} ({type(v).__name__}); allowed: a float")
            if not np.isfinite(v):
                raise ValueError(f"{w} = {v!r}; allowed: a finite float")
            out[name] = float(v)
        else:  # pragma: no cover - a new field type needs a rule here
            raise TypeError(f"{w}: no loader for {type(ref).__name__} fields")
    return out


def _array(v: Any, ref: np.ndarray, w: str, name: str) -> np.ndarray:
    if isinstance(v, np.ma.MaskedArray) or not isinstance(v, (np.ndarray, list, tuple)):
        raise TypeError(f"{w} is a {type(v).__name__}; allowed: a numpy array (or list) of {ref.dtype}")
    try:
        a = np.array(v)  # a copy: the caller's dict may change later
    except (ValueError, TypeError) as err:
        raise TypeError(f"{w} is not a rectangular numeric array ({err}); allowed: {ref.dtype}") from None
    want = ref.dtype.kind
    ok = a.dtype.kind == want or (want in "iu" and a.dtype.kind in "iu") or (a.size == 0 and a.dtype.kind == "f")
    if not ok:
        kinds = {"b": "bool", "i": "integer", "u": "integer", "f": "float"}
        raise TypeError(f"{w} has dtype {a.dtype}; allowed: {kinds.get(want, ref.dtype)} ({ref.dtype})")
    shape_ok = a.shape == ref.shape
    if name == "price_history":
        shape_ok = a.ndim == 2 and 1 <= a.shape[0] <= PRICE_HISTORY and a.shape[1:] == ref.shape[1:]
    if not shape_ok:
        want_shape = f"(1..{PRICE_HISTORY}, {ref.shape[1]})" if name == "price_history" else str(ref.shape)
        raise ValueError(f"{w} has shape {a.shape}; expected {want_shape} for this scenario")
    if want == "f":
        _where_bad(w, a, ~np.isfinite(a), "must be finite")
    if want in "iu":
        info = np.iinfo(ref.dtype)
        _where_bad(w, a, (a < info.min) | (a > info.max), f"must fit {ref.dtype}")
    return a.astype(ref.dtype, copy=False)


def _where_bad(w: str, a: np.ndarray, bad: np.ndarray, what: str) -> None:
    """ValueError naming the first element of `a` where `bad` holds."""
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{w}[{', '.join(map(str, idx))}] = {a[idx].item()!r}; {what}")


def _in(w: str, a: np.ndarray, lo: float, hi: float, what: str, hi_open: bool = False) -> None:
    hi_bad = a >= hi if hi_open else a > hi
    _where_bad(w, a, (a < lo) | hi_bad, f"{what} must be in [{lo:g}, {hi:g}{')' if hi_open else ']'}")


def _check_agents(ag: AgentParams, ref: AgentParams, sc: Scenario) -> None:
    w = "state_dict['agents']"
    counts = ", ".join(f"{k[2:]}={getattr(sc, k)}" for k in ("n_solar", "n_wind", "n_storage", "n_residential",
                                                               "n_industrial") if hasattr(sc, k))
    for f in dataclasses.fields(ag):  # integer codes (kind, profile, goods) are the scenario's
        a, r = getattr(ag, f.name), getattr(ref, f.name)
        if a.dtype.kind in "iu" and not np.array_equal(a, r):
            i = int(np.flatnonzero(a != r)[0])
            raise ValueError(f"{w}['{f.name}'][{i}] = {a[i]}; expected {r[i]}: the codes must match the scenario "
                             f"({counts}, laid out in blocks)")
    checks: dict[str, Callable[[str, np.ndarray], None]] = {
        "capacity": lambda w, a: _where_bad(w, a, ~(a > 0), "capacities must be > 0"),
        "power": lambda w, a: _in(w, a, 0.0, np.inf, "power"),
        "efficiency": lambda w, a: _where_bad(w, a, ~((a > 0) & (a <= 1)), "efficiency must be in (0, 1]"),
        "marginal_cost": lambda w, a: _in(w, a, 0.0, np.inf, "marginal cost"),
        "reserve": lambda w, a: _in(w, a, 0.0, np.inf, "reserve price"),
        "limit": lambda w, a: _in(w, a, 0.0, np.inf, "limit price"),
        "grid_limit": lambda w, a: _in(w, a, 0.0, np.inf, "grid limit"),
        "xy": lambda w, a: _in(w, a, 0.0, 1.0, "positions"),
    }
    for name, check in checks.items():
        if hasattr(ag, name):
            check(f"{w}['{name}']", getattr(ag, name))
    if hasattr(ag, "initial_soc"):
        _soc_check(f"{w}['initial_soc']", ag.initial_soc, ag)


def _soc_check(w: str, soc: np.ndarray, ag: AgentParams) -> None:
    sto = ag.is_storage
    _where_bad(w, soc, sto & ((soc < 0) | (soc > ag.capacity)), "a store's charge must be in [0, its capacity]")
    _where_bad(w, soc, ~sto & (soc != 0), "only storage agents hold charge (0 for every other kind)")


def _check_state(st: dict[str, Any], ag: AgentParams, sc: Scenario) -> None:
    w = "state_dict['state']"
    n = ag.n
    fi, rt = sc.feed_in_tariff, sc.retail_tariff
    if "soc" in st:
        _soc_check(f"{w}['soc']", st["soc"], ag)
    nonneg = ("wind_speed", "generation", "demand", "last_sold", "last_bought", "utilization", "supply",
              "demand_total", "volume", "clearing_price", "fee_base", "fee_rate")
    for name in nonneg:
        if name in st:
            _in(f"{w}['{name}']", st[name], 0.0, np.inf, name.replace("_", " "))
    if "cloud" in st:
        _in(f"{w}['cloud']", st["cloud"], 0.0, 1.0, "cloud cover")
    for name in ("u", "v"):
        if name in st:
            _in(f"{w}['{name}']", st[name], 0, n, "channel endpoints", hi_open=True)
    if "u" in st and "v" in st:
        _where_bad(f"{w}['v']", st["v"], st["u"] == st["v"], "a channel joins two different agents (u != v)")
    if "capacity" in st:
        _where_bad(f"{w}['capacity']", st["capacity"], ~(st["capacity"] > 0), "channel capacities must be > 0")
        if "balance_u" in st:
            b = st["balance_u"]
            _where_bad(f"{w}['balance_u']", b, (b < 0) | (b > st["capacity"]),
                       "balance_u must be in [0, the channel's capacity]")
    if "partner" in st:
        _in(f"{w}['partner']", st["partner"], -1, n, "partners (an agent index, or -1 for none)", hi_open=True)
    if "partner_value" in st:
        _in(f"{w}['partner_value']", st["partner_value"], 0.0, np.inf, "partner value")
    if "flow_history" in st and "capacity" in st:
        _where_bad(f"{w}['flow_history']", st["flow_history"],
                   np.abs(st["flow_history"]) > st["capacity"][:, None] * (1 + 1e-6),
                   "a channel's flow is at most its capacity")
    for name in ("ref_price", "price_history"):
        if name in st:
            _in(f"{w}['{name}']", st[name], fi, rt, "reference prices (between the feed-in and retail tariffs)")
    scalars = {
        "t": (0, sc.episode_steps, f"t must be in [0, episode_steps = {sc.episode_steps}]"),
        "shock_kind": (0, N_SHOCKS - 1, f"shock_kind must be a Shock code 0..{N_SHOCKS - 1} {SHOCK_NAMES}"),
        "shock_remaining": (0, np.inf, "shock_remaining must be >= 0"),
        "topology_version": (0, np.inf, "topology_version must be >= 0"),
        "fee_sink": (0.0, np.inf, "fee_sink must be >= 0"),
    }
    for name, (lo, hi, what) in scalars.items():
        if name in st and not lo <= st[name] <= hi:
            raise ValueError(f"{w}['{name}'] = {st[name]!r}; {what}")
    if "shock_kind" in st and "shock_remaining" in st and (st["shock_kind"] == 0) != (st["shock_remaining"] == 0):
        raise ValueError(f"{w}['shock_remaining'] = {st['shock_remaining']} with shock_kind = {st['shock_kind']}; "
                         "an active shock has >= 1 step left and no shock has 0")


def _generators(d: Any, names: list[str]) -> dict[str, np.random.Generator]:
    _exact_keys(d, names, "state_dict['generators']")
    return {name: build_generator(d[name], f"state_dict['generators']['{name}']") for name in names}


def build_generator(st: Any, where: str = "generator state") -> np.random.Generator:
    """A Generator from a `bit_generator.state` dict of an allowlisted bit generator, its
    structure checked first (a garbage state is a ValueError naming the generator)."""
    if not isinstance(st, dict):
        raise TypeError(f"{where} must be a bit_generator.state dict, got {type(st).__name__}")
    name = st.get("bit_generator")
    if not isinstance(name, str) or name not in BIT_GENERATORS:
        raise ValueError(f"{where}['bit_generator'] = {name!r}; allowed: {', '.join(BIT_GENERATORS)}")
    cls, schema = BIT_GENERATORS[name]
    clean = {"bit_generator": name, **_structure(st, schema, f"{where} ({name})", top=True)}
    # states a generator can never reach and that would stall it (a draw loop on constant zeros)
    if name.startswith("PCG64") and clean["state"]["inc"] % 2 == 0:
        raise ValueError(f"{where}: not a valid {name} state (the increment must be odd)")
    if name == "MT19937" and not (clean["state"]["key"][0] & 0x80000000 or clean["state"]["key"][1:].any()):
        raise ValueError(f"{where}: not a valid {name} state (the key is all zeros)")
    bitgen = cls()
    try:
        bitgen.state = clean
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"{where}: not a valid {name} state ({err})") from None
    return np.random.Generator(bitgen)


def _structure(d: Any, schema: dict, where: str, top: bool = False) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a dict, got {type(d).__name__}")
    keys = tuple(schema) + (("bit_generator",) if top else ())
    _exact_keys(d, keys, where)
    out: dict[str, Any] = {}
    for k, spec in schema.items():
        v, w = d[k], f"{where}['{k}']"
        if isinstance(spec, dict):
            out[k] = _structure(v, spec, w)
        elif spec[0] == "array":
            bits, n = spec[1], spec[2]
            items = v.tolist() if isinstance(v, np.ndarray) else v
            if not isinstance(items, (list, tuple)) or len(items) != n or not all(_uint(x, bits) for x in items):
                raise ValueError(f"{w}: expected {n} unsigned {bits}-bit integers")
            out[k] = np.array([int(x) for x in items], dtype=np.uint64 if bits == 64 else np.uint32)
        else:
            lo, hi = (0, (1 << spec[1]) - 1) if spec[0] == "int" else spec[1:]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{w} = {v!r}; expected an integer in [{lo}, {hi}]")
            out[k] = int(v)
    return out


def _uint(x: Any, bits: int) -> bool:
    return not isinstance(x, (bool, np.bool_)) and isinstance(x, (int, np.integer)) and 0 <= x < (1 << bits)


__all__ = ["FORMAT_VERSION", "BIT_GENERATORS", "dump", "load", "build_generator"]
