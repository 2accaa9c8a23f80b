"""The plain-data codec of checkpoints: round trips exactly, never pickles, builds only allow-listed types."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from channelmarket.envs.core import MarketCore
from channelmarket.policies.registry import REGISTRY, make
from channelmarket.training.ippo import _STATE_DATACLASSES
from channelmarket.training.state_codec import decode, encode, load_arrays, save_arrays


def roundtrip(value, types=_STATE_DATACLASSES):
    arrays: dict = {}
    doc = encode(value, arrays, types)
    import json

    doc = json.loads(json.dumps(doc))
    return decode(doc, load_arrays(io.BytesIO(save_arrays(arrays))), types)


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape \
            and a.flags.f_contiguous == b.flags.f_contiguous and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, np.generic):
        return type(a) is type(b) and (a == b or (a != a and b != b))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and a != a:
        return b != b
    return type(a) is type(b) and a == b


arrays_st = hnp.arrays(st.sampled_from([np.float64, np.float32, np.int32, np.int64, np.bool_, np.int8]),
                       hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=5),
                 arrays_st, arrays_st.map(np.asfortranarray), st.floats(width=32).map(np.float32), st.integers(-5, 5).map(np.int64))
values = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=3), st.tuples(c, c),
                                                 st.dictionaries(st.text("abc_", min_size=1, max_size=4), c, max_size=3)),
                      max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(values)
def test_roundtrip_is_exact(v):
    assert same(v, roundtrip(v))


def test_generators_continue_their_stream():
    for cls in (np.random.PCG64, np.random.MT19937, np.random.Philox, np.random.SFC64, np.random.PCG64DXSM):
        g = np.random.Generator(cls(7))
        g.random(3)
        h = roundtrip({"g": g})["g"]
        assert np.array_equal(g.random(5), h.random(5)), cls.__name__


def test_refuses_what_needs_pickle_and_unknown_types():
    with pytest.raises(TypeError, match="dtype object"):
        encode(np.array([{}], dtype=object), {})
    with pytest.raises(TypeError, match="cannot store a set"):
        encode({1, 2}, {})
    with pytest.raises(TypeError, match="marker keys"):
        encode({"__array__": "a0"}, {})
    with pytest.raises(TypeError, match="non-string keys"):
        encode({1: 2}, {})
    with pytest.raises(TypeError, match="not an allow-listed dataclass"):
        from channelmarket.policies.risk_factor import RiskParams

        encode(RiskParams(), {}, {})
    with pytest.raises(ValueError, match="allowed: PCG64"):
        decode({"__generator__": {"bit_generator": "seed", "state": {}}}, {})
    with pytest.raises(ValueError, match="not allow-listed"):
        decode({"__dataclass__": "Popen", "fields": {}}, {})
    with pytest.raises(ValueError, match="missing array"):
        decode({"__array__": "a9"}, {})


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_baseline_continues_exactly_from_its_saved_state(name):
    """What an IPPO checkpoint saves of a background policy (its attributes but `core`) restores a
    fresh policy that acts exactly as the original from then on."""
    core = MarketCore("energy_small")
    obs = core.reset(seed=0)
    idx = np.arange(core.n_agents)
    pol = make(name)
    pol.bind(core, idx, seed=1)
    for _ in range(3):
        obs, *_ = core.step(pol.act(obs[idx]))
        pol.update(core)
    saved = roundtrip({k: v for k, v in vars(pol).items() if k != "core"})
    twin_core = MarketCore("energy_small")
    twin_core.load_state_dict(roundtrip(core.state_dict()))
    twin = make(name)
    twin.core = twin_core
    for k, v in saved.items():
        setattr(twin, k, v)
    o1, o2 = obs.copy(), obs.copy()
    for _ in range(4):
        a1, a2 = pol.act(o1[idx]), twin.act(o2[idx])
        np.testing.assert_array_equal(a1, a2)
        o1, *_ = core.step(a1)
        o2, *_ = twin_core.step(a2)
        pol.update(core)
        twin.update(twin_core)
    np.testing.assert_array_equal(o1, o2)
