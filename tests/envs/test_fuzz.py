"""Fuzz (hypothesis) over everything a user hands the market: state dicts, actions (arrays and
dicts), scenario fields, shocks, seeds. Nothing may crash with anything but ValueError/TypeError,
and after every rejection the core is bit-identical (state dict and generator states) to before.
Accepted input must give a market that steps with observations inside their space.

Deterministic and small by default (it runs in `make test`); a longer random search:
`CHANNELMARKET_FUZZ_EXAMPLES=5000 python -m pytest tests/envs/test_fuzz.py`."""

from __future__ import annotations

import copy
import dataclasses
import os
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from channelmarket.envs.channel_market import ChannelMarketEnv
from channelmarket.envs.core import MarketCore
from channelmarket.envs.observations import OBS_HIGH, OBS_LOW
from channelmarket.envs.scenario import PRESETS, Scenario

from .state_checks import assert_untouched, snapshot

_LONG = int(os.environ.get("CHANNELMARKET_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_LONG or 120, deadline=None, derandomize=not _LONG, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
SCENARIO = PRESETS["energy_small"].replace(shock_rate=0.3, mechanism="bilateral")
N = SCENARIO.n_agents
ALLOWED = (ValueError, TypeError)

# NumPy warns when hypothesis builds an np.matrix (one of the action containers tried); nothing else is
# filtered: a RuntimeWarning from our code on any input fails (pyproject's filterwarnings)
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass is not the recommended way:PendingDeprecationWarning")


@lru_cache(maxsize=1)
def base_dict() -> dict:
    core = MarketCore(SCENARIO)
    core.reset(seed=11)
    core.inject_shock("DEMAND_SURGE", 3)
    rng = np.random.default_rng(2)
    for _ in range(3):
        core.step(rng.uniform(-1, 1, (N, 4)))
    return core.state_dict()


def fresh_core() -> MarketCore:
    core = MarketCore(SCENARIO)
    core.load_state_dict(copy.deepcopy(base_dict()))
    return core


def leaf_paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += leaf_paths(v, prefix + (k,))
    return out


PATHS = leaf_paths(base_dict())

odd_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.integers(-3, 30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.sampled_from([np.bool_(True), np.int64(3), np.int8(-1), np.uint64(2**63), np.float32(np.nan),
                     np.float64(1e308), [], {}, (), [1, 2], {"a": 1}, "PCG64", "seed", b"x", 1j, object()]),
)
DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64, np.complex128]


def odd_arrays(shapes) -> st.SearchStrategy:
    return st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, shapes, elements=None if dt is not np.float64 else st.floats(
            -1e6, 1e6) | st.sampled_from([0.0, -0.0, 1.0, 1e308, np.nan, np.inf, -np.inf])))


def _get(d, path):
    for k in path:
        d = d[k]
    return d


@st.composite
def mutated_dicts(draw):
    d = copy.deepcopy(base_dict())
    path = draw(st.sampled_from(PATHS))
    *head, last = path
    parent = _get(d, head)
    old = parent[last]
    op = draw(st.sampled_from(["replace", "element", "dtype", "scale", "delete", "add", "shape"]))
    if op == "replace":
        parent[last] = draw(st.one_of(odd_scalars, odd_arrays(st.sampled_from([(), (0,), (N,), (3,), (N, 2)]))))
    elif op == "element" and isinstance(old, np.ndarray) and old.size:
        a = old.copy().astype(np.float64) if draw(st.booleans()) else old.copy()
        i = draw(st.integers(0, a.size - 1))
        val = draw(st.sampled_from([np.nan, np.inf, -1, -1e-12, N, N + 7, 2**31 - 1, 1e300, 0, 1, True, 0.5]))
        try:
            a.flat[i] = val
        except (ValueError, TypeError, OverflowError):
            pass
        parent[last] = a
    elif op == "dtype" and isinstance(old, np.ndarray):
        with np.errstate(all="ignore"):
            parent[last] = old.astype(draw(st.sampled_from(DTYPES + [object])))
    elif op == "scale" and isinstance(old, np.ndarray) and old.dtype.kind == "f":
        with np.errstate(all="ignore"):
            parent[last] = old * draw(st.sampled_from([-1.0, 0.0, 0.5, 2.0, 1e10])) + draw(st.sampled_from([0.0, 1.0]))
    elif op == "scale" and isinstance(old, (int, float)) and not isinstance(old, bool):
        parent[last] = type(old)(old * draw(st.sampled_from([-1, 0, 2, 10**6])) + draw(st.sampled_from([0, 1])))
    elif op == "delete":
        del parent[last]
    elif op == "add":
        parent[draw(st.sampled_from(["extra", 0, None, "t"]))] = draw(odd_scalars)
    elif op == "shape" and isinstance(old, np.ndarray):
        parent[last] = draw(st.sampled_from([old[:-1], np.concatenate([old, old[:1]]), old.reshape(-1)[:0],
                                             old.reshape(1, -1), old.T.copy()]))
    else:  # an op that does not apply to this leaf: a plain replacement
        parent[last] = draw(odd_scalars)
    return path, op, d


def assert_healthy(core: MarketCore) -> None:
    """An accepted market keeps stepping with observations in their space."""
    for _ in range(2):
        if core.done:
            break
        obs, rew, *_ = core.step(np.zeros((core.n_agents, 4)))
        assert obs.dtype == np.float32 and np.isfinite(obs).all()
        assert ((obs >= OBS_LOW) & (obs <= OBS_HIGH)).all()


@FUZZ
@given(mutated_dicts())
def test_fuzz_load_state_dict(case):
    path, op, d = case
    core = fresh_core()
    snap = snapshot(core)
    try:
        core.load_state_dict(d)
    except ALLOWED:
        assert_untouched(core, snap)
        return
    assert_healthy(core)  # the mutation happened to be valid


action_values = st.one_of(
    odd_arrays(st.sampled_from([(N, 4), (N, 4), (4, N), (N,), (N, 4, 1), (0, 4), ()])),
    hnp.arrays(np.float64, (N, 4), elements=st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda a: np.ma.masked_array(a, mask=a > 0.5), hnp.arrays(np.float64, (N, 4), elements=st.floats(0, 1))),
    st.builds(np.matrix, hnp.arrays(np.float64, (N, 4), elements=st.floats(-2, 2))),
    st.lists(st.lists(st.one_of(st.floats(-2, 2), odd_scalars), min_size=3, max_size=5), min_size=N - 1, max_size=N + 1),
    odd_scalars,
)


@FUZZ
@given(action_values)
def test_fuzz_array_actions(acts):
    core = fresh_core()
    snap = snapshot(core)
    try:
        core.step(acts)
    except ALLOWED:
        assert_untouched(core, snap)
        return
    assert_healthy(core)


row_values = st.one_of(
    odd_arrays(st.sampled_from([(4,), (4,), (3,), (1, 4), ()])),
    st.lists(st.one_of(st.floats(-2, 2), odd_scalars), min_size=3, max_size=5),
    st.tuples(*[st.floats(allow_nan=True, allow_infinity=True)] * 4),
    odd_scalars,
)


@FUZZ
@given(st.data())
def test_fuzz_dict_actions(data):
    env = ChannelMarketEnv(SCENARIO, history_len=4)
    env.core.load_state_dict(copy.deepcopy(base_dict()))
    env.agents = list(env.possible_agents)
    acts = {a: np.zeros(4, dtype=np.float32) for a in env.agents}
    for a in data.draw(st.lists(st.sampled_from(env.agents), max_size=3)):
        acts[a] = data.draw(row_values)
    if data.draw(st.booleans()):
        acts.pop(env.agents[data.draw(st.integers(0, N - 1))], None)
    if data.draw(st.booleans()):
        acts[data.draw(st.sampled_from(["ghost_0", 7, None]))] = np.zeros(4)
    snap = snapshot(env.core)
    try:
        env.step(acts)
    except ALLOWED:
        assert_untouched(env.core, snap)
        return
    assert_healthy(env.core)


FIELDS = [f.name for f in dataclasses.fields(Scenario)]


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS + ["n_dragons"]),
                       st.one_of(odd_scalars, st.tuples(odd_scalars, odd_scalars),
                                 st.lists(st.tuples(st.integers(-1, 50), st.sampled_from(["DEMAND_SURGE", "x", 1]),
                                                    st.integers(-1, 5)), max_size=2),
                                 st.integers(0, 8), st.floats(0, 2)), max_size=4))
def test_fuzz_scenario_fields(kw):
    base = PRESETS["energy_small"].to_dict()
    try:
        sc = Scenario(**dict(base, **kw))
    except ALLOWED:
        return
    assert Scenario.from_dict(sc.to_dict()) == sc and Scenario.from_yaml(sc.to_yaml()) == sc
    if sc.n_agents <= 60 and sc.n_channels <= 5_000:
        core = MarketCore(sc)
        obs = core.reset(seed=0)
        assert ((obs >= core.obs_low) & (obs <= core.obs_high)).all()   # the scenario's columns (an EV adds one)
        assert_healthy(core)


@FUZZ
@given(st.one_of(odd_scalars, st.sampled_from(["DEMAND_SURGE", "supply_shortage", 1, 4, np.int64(2)])),
       st.one_of(odd_scalars, st.integers(-2, 2**40), st.just(np.int64(3))),
       st.one_of(odd_scalars, st.lists(st.integers(-1, 5), max_size=3), st.just(np.int64(3))),
       st.one_of(odd_scalars, odd_arrays(st.sampled_from([(2,), (0,), (1, 1)]))))
def test_fuzz_shocks_seeds_and_removals(kind, duration, seed, removed):
    core = fresh_core()
    for call in (lambda: core.inject_shock(kind, duration), lambda: core.reset(seed=seed),
                 lambda: core.remove_agents(removed)):
        snap = snapshot(core)
        try:
            call()
        except ALLOWED:
            assert_untouched(core, snap)
            continue
        assert_healthy(core)
