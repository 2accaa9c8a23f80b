"""`MarketCore.state_dict` / `load_state_dict`: exact resume, and every corrupt field rejected
(naming it) before anything changes (issue 8, item 1)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from channelmarket.envs.core import MarketCore
from channelmarket.envs.state_io import BIT_GENERATORS, FORMAT_VERSION

from .state_checks import assert_untouched, same, snapshot

N_STEPS = 4


def stepped_core(steps: int = N_STEPS, scenario: str = "energy_small", **kw) -> MarketCore:
    core = MarketCore(scenario, shock_rate=0.3, **kw)
    core.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    return core


def run(core: MarketCore, steps: int) -> list:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(steps):
        obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        out.append((obs.copy(), rew.copy(), core.money_total()))
    return out


def test_round_trip_continues_bit_for_bit_and_survives_json():
    core = stepped_core()
    d = core.state_dict()
    assert d["format_version"] == FORMAT_VERSION
    twin = MarketCore("energy_small", shock_rate=0.3)  # never reset: loads into a fresh core
    twin.load_state_dict(d)
    # the same dict through JSON (arrays as lists) loads too
    js = MarketCore("energy_small", shock_rate=0.3)
    js.load_state_dict(json.loads(json.dumps(d, default=lambda a: a.tolist())))
    a, b, c = run(core, 6), run(twin, 6), run(js, 6)
    for (oa, ra, ma), (ob, rb, mb), (oc, rc, mc) in zip(a, b, c):
        assert oa.tobytes() == ob.tobytes() == oc.tobytes() and ra.tobytes() == rb.tobytes() == rc.tobytes()
        assert ma == mb == mc


def test_loaded_arrays_do_not_alias_the_dict():
    core = stepped_core()
    d = core.state_dict()
    twin = MarketCore("energy_small", shock_rate=0.3)
    twin.load_state_dict(d)
    before = twin.state_dict()
    d["state"]["wallet"][:] = 1e9
    d["agents"]["capacity"][:] = 1e9
    same(before, twin.state_dict())


@pytest.mark.parametrize("name", list(BIT_GENERATORS))
def test_every_allowlisted_bit_generator_loads(name):
    core = stepped_core(1)
    d = core.state_dict()
    d["generators"]["rng_exo"] = getattr(np.random, name)(5).state
    twin = MarketCore("energy_small", shock_rate=0.3)
    twin.load_state_dict(d)
    assert type(twin.state.rng_exo.bit_generator).__name__ == name
    assert twin.state.rng_exo.bit_generator.state["bit_generator"] == name


def _set(d, path, value):
    *head, last = path
    for k in head:
        d = d[k]
    if callable(value):
        d[last] = value(d[last])
    else:
        d[last] = value


def _setitem(i, x):
    def f(a):
        a = a.copy()
        a[i] = x
        return a
    return f


# (path into the state dict, new value or function of the old one, exception, words in the message)
CORRUPT = [
    (("state", "u"), _setitem(3, 12), ValueError, ["state_dict['state']['u'][3] = 12", "[0, 12)"]),
    (("state", "u"), _setitem(3, 100), ValueError, ["['u'][3] = 100", "channel endpoints"]),
    (("state", "v"), _setitem(0, -1), ValueError, ["['v'][0] = -1"]),
    (("state", "v"), lambda v: v.astype(np.int64) + 2**40, ValueError, ["['v']"]),
    (("state", "wallet"), _setitem(2, np.nan), ValueError, ["['wallet'][2]", "nan", "finite"]),
    (("state", "wallet"), _setitem(0, np.inf), ValueError, ["['wallet'][0]", "finite"]),
    (("state", "balance_u"), lambda b: b + 1e6, ValueError, ["['balance_u'][0]", "capacity"]),
    (("state", "balance_u"), _setitem(1, -0.5), ValueError, ["['balance_u'][1] = -0.5"]),
    (("state", "open"), lambda o: o.astype(np.int64), TypeError, ["['open']", "int64", "bool"]),
    (("state", "active"), lambda o: o.astype(np.float64), TypeError, ["['active']", "bool"]),
    (("state", "u"), lambda u: u.astype(np.float64), TypeError, ["['u']", "float64", "integer"]),
    (("state", "wallet"), lambda w: w.astype(np.int64), TypeError, ["['wallet']", "int64", "float"]),
    (("state", "wallet"), lambda w: w.astype(object), TypeError, ["['wallet']", "object"]),
    (("state", "wallet"), lambda w: w[:-1], ValueError, ["['wallet']", "shape (11,)", "(12,)"]),
    (("state", "capacity"), lambda c: np.concatenate([c, c]), ValueError, ["['capacity']", "shape"]),
    (("state", "price_history"), lambda h: np.zeros((0, 1)), ValueError, ["price_history", "shape (0, 1)"]),
    (("state", "price_history"), lambda h: np.repeat(h[:1], 30, axis=0), ValueError, ["price_history", "(30, 1)"]),
    (("state", "ref_price"), lambda p: p * 0 + 1e5, ValueError, ["['ref_price'][0]", "tariffs"]),
    (("state", "soc"), lambda s: s + 1e3, ValueError, ["['soc']", "charge"]),
    (("state", "soc"), _setitem(0, 0.5), ValueError, ["['soc'][0] = 0.5", "only storage"]),
    (("state", "cloud"), _setitem(0, 2.0), ValueError, ["['cloud'][0] = 2.0"]),
    (("state", "t"), -5, ValueError, ["['t'] = -5", "episode_steps"]),
    (("state", "t"), 10_000, ValueError, ["['t'] = 10000"]),
    (("state", "t"), 2.0, TypeError, ["['t'] = 2.0", "integer"]),
    (("state", "t"), True, TypeError, ["['t'] = True"]),
    (("state", "shock_kind"), 9, ValueError, ["['shock_kind'] = 9", "Shock"]),
    (("state", "shock_remaining"), -1, ValueError, ["['shock_remaining'] = -1"]),
    (("state", "fee_sink"), float("nan"), ValueError, ["['fee_sink']", "finite"]),
    (("state", "grid_account"), "0", TypeError, ["['grid_account']"]),
    (("state", "topology_version"), -3, ValueError, ["topology_version"]),
    (("agents", "kind"), _setitem(0, 3), ValueError, ["['agents']['kind'][0] = 3", "scenario"]),
    (("agents", "kind"), _setitem(0, 9), ValueError, ["['agents']['kind'][0] = 9"]),
    (("agents", "efficiency"), _setitem(5, 0.0), ValueError, ["['efficiency'][5]"]),
    (("agents", "capacity"), _setitem(0, -1.0), ValueError, ["['capacity'][0] = -1.0"]),
    (("agents", "xy"), _setitem((0, 1), np.nan), ValueError, ["['xy'][0, 1]"]),
    (("generators", "rng"), {"bit_generator": "PCG64", "state": {"state": 1, "inc": "x"}, "has_uint32": 0,
                             "uinteger": 0}, ValueError, ["['rng']", "PCG64", "inc"]),
    (("generators", "rng"), {"bit_generator": "PCG64"}, ValueError, ["['rng']", "PCG64", "missing"]),
    (("generators", "rng"), lambda g: dict(g, state={"state": 1, "inc": 2}), ValueError, ["PCG64", "odd"]),
    (("generators", "rng_exo"), lambda g: dict(g, uinteger=-1), ValueError, ["['rng_exo']", "uinteger"]),
    (("generators", "rng"), lambda g: dict(g, bit_generator="seed"), ValueError, ["'seed'", "PCG64, PCG64DXSM"]),
    (("generators", "rng"), lambda g: dict(g, bit_generator="RandomState"), ValueError, ["'RandomState'"]),
    (("generators", "rng"), ("PCG64", {}), TypeError, ["['rng']"]),
    (("generators", "rng"), lambda g: {**np.random.MT19937(0).state, "state": {"key": np.zeros(624, np.uint32),
                                                                               "pos": 0}}, ValueError, ["MT19937"]),
    (("generators", "rng"), lambda g: {**np.random.Philox(0).state, "buffer_pos": 9}, ValueError, ["Philox"]),
    (("scenario", "episode_steps"), 5, ValueError, ["scenario", "episode_steps"]),
    (("scenario", "n_dragons"), 5, TypeError, ["n_dragons"]),
    (("seed_stream",), {"entropy": -1, "spawn_key": [], "pool_size": 4, "seedless": 0}, ValueError, ["seed_stream"]),
    (("seed_stream",), {"entropy": 1}, ValueError, ["seed_stream"]),
    (("format_version",), 0, ValueError, ["format_version", "0", str(FORMAT_VERSION)]),
    (("format_version",), "1", ValueError, ["format_version"]),
    (("state", "extra_field"), 1, ValueError, ["'extra_field'", "unknown"]),
    (("agents",), [], TypeError, ["['agents']", "list"]),
]


@pytest.mark.parametrize("path,value,exc,words", CORRUPT, ids=[f"{'.'.join(p)}-{i}" for i, (p, *_) in enumerate(CORRUPT)])
def test_corrupt_state_dict_is_rejected_naming_the_field_and_changes_nothing(path, value, exc, words):
    core = stepped_core()
    d = core.state_dict()
    _set(d, path, value)
    snap = snapshot(core)
    global_rng = np.random.get_state()[1].copy()
    with pytest.raises(exc) as ei:
        core.load_state_dict(d)
    msg = str(ei.value)
    for w in words:
        assert w in msg, (w, msg)
    assert_untouched(core, snap)
    assert np.array_equal(np.random.get_state()[1], global_rng), "NumPy's global generator was touched"
    # the core still steps as if nothing happened
    core.step(np.zeros((core.n_agents, 4)))


@pytest.mark.parametrize("drop", ["format_version", "state", "generators", "seed_stream"])
def test_missing_top_level_key_is_rejected(drop):
    core = stepped_core(1)
    d = core.state_dict()
    del d[drop]
    snap = snapshot(core)
    with pytest.raises(ValueError, match=drop):
        core.load_state_dict(d)
    assert_untouched(core, snap)


def test_missing_field_and_non_dict_are_rejected():
    core = stepped_core(1)
    d = core.state_dict()
    del d["state"]["wallet"]
    with pytest.raises(ValueError, match=r"state_dict\['state'\]: missing 'wallet'"):
        core.load_state_dict(d)
    with pytest.raises(TypeError, match="dict"):
        core.load_state_dict([1, 2])  # type: ignore[arg-type]


def test_rejected_load_into_a_fresh_core_leaves_it_without_state():
    core = stepped_core(1)
    d = core.state_dict()
    d["state"]["u"] = d["state"]["u"].copy()
    d["state"]["u"][0] = core.n_agents
    fresh = MarketCore("energy_small", shock_rate=0.3)
    with pytest.raises(ValueError, match=r"\['u'\]\[0\] = 12"):
        fresh.load_state_dict(d)
    assert fresh.state is None and fresh.agents is None


def test_endpoint_far_out_of_range_does_not_crash_the_process():
    """Before the checks a numba kernel read past the arrays (exit 139); run in a child process."""
    code = (
        "import numpy as np\n"
        "from channelmarket.envs.core import MarketCore\n"
        "core = MarketCore('energy_small'); core.reset(seed=0)\n"
        "d = core.state_dict(); d['state']['u'][3] = 10**9\n"
        "try:\n"
        "    core.load_state_dict(d)\n"
        "except ValueError as e:\n"
        "    print('rejected:', e)\n"
        "core.step(np.zeros((core.n_agents, 4)))\n"
        "print('stepped')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rejected: state_dict['state']['u'][3] = 1000000000" in out.stdout and "stepped" in out.stdout


def test_endpoint_equal_to_n_would_lose_money_and_is_rejected():
    core = stepped_core()
    money = core.money_total()
    d = core.state_dict()
    d["state"]["v"][0] = core.n_agents
    with pytest.raises(ValueError, match=r"\['v'\]\[0\] = 12; channel endpoints must be in \[0, 12\)"):
        core.load_state_dict(d)
    run(core, 3)
    assert abs(core.money_total() - money) < 1e-6


def test_state_dict_is_a_snapshot_not_a_view():
    core = stepped_core(1)
    d = core.state_dict()
    keep = copy.deepcopy(d)
    run(core, 2)
    same(keep, d)


def test_state_after_a_step_without_trades_round_trips():
    """A step with no trade left `volume` int64 (NumPy's empty bincount), and the live state then
    failed its own load_state_dict (found when IPPO checkpoints went through the validator)."""
    import numpy as np

    from channelmarket import MarketCore

    core = MarketCore("energy_small", episode_steps=4)
    core.reset(seed=0)
    core.step(np.full((core.n_agents, 4), -1.0))  # lowest quantities: nothing offered
    assert core.state.volume.dtype == np.float64
    d = core.state_dict()
    other = MarketCore("energy_small", episode_steps=4)
    other.load_state_dict(d)
    assert other.state.volume.dtype == np.float64
