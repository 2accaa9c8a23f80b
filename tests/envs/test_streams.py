"""NumPy's PCG64 stream in compiled code (`envs.streams`): the doubles at chosen positions are the
generator's own, and the generator ends exactly where drawing the whole block leaves it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from channelmarket.envs import compiled, streams

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: the streams draw with NumPy")


def _pair(seed, spawn=None, uint32=False):
    """Two identical generators: from an int seed, or the `spawn`-th child of a SeedSequence (a
    different increment), optionally with the 32-bit buffer filled."""
    def make():
        if spawn is None:
            g = np.random.default_rng(seed)
        else:
            g = np.random.default_rng(np.random.SeedSequence(seed).spawn(spawn + 1)[spawn])
        if uint32:
            g.integers(0, 2**32, 3, dtype=np.uint32)   # an odd count of 32-bit draws: has_uint32 = 1
        return g
    return make(), make()


@needs_numba
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**63), spawn=st.one_of(st.none(), st.integers(0, 5)), uint32=st.booleans(),
       total=st.integers(0, 3000), data=st.data())
def test_uniforms_at_equal_numpy_and_leave_the_generator_where_numpy_does(seed, spawn, uint32, total, data):
    a, b = _pair(seed, spawn, uint32)
    pos = np.sort(np.array(data.draw(st.lists(st.integers(0, max(total - 1, 0)), max_size=50 if total else 0)),
                           dtype=np.int64))
    want = a.random(total)[pos]
    got = streams.uniforms_at(b, pos, total)
    assert np.array_equal(got, want)   # duplicates (a gap of 0), neighbours (1), anything up to the block
    assert b.bit_generator.state == a.bit_generator.state   # has_uint32 / uinteger untouched
    assert b.random() == a.random() and b.integers(0, 2**32, dtype=np.uint32) == a.integers(0, 2**32, dtype=np.uint32)


@needs_numba
@pytest.mark.parametrize("spawn", [None, 0, 3])
def test_every_double_of_a_block_and_huge_gaps(spawn):
    a, b = _pair(12345, spawn)
    total = 40_000
    assert np.array_equal(streams.uniforms_at(b, np.arange(total), total), a.random(total))
    # positions far beyond anything drawn: against numpy's own jump (`advance`; doubles ignore the
    # 32-bit buffer it resets)
    far = np.array([0, 1, 2**20 + 3, 2**40 + 7, 2**40 + 8, 2**62 + 11], dtype=np.int64)
    start = b.bit_generator.state
    got = streams.uniforms_at(b, far, 2**62 + 100)
    for p, x in zip(far, got):
        c = np.random.Generator(np.random.PCG64())
        c.bit_generator.state = start
        c.bit_generator.advance(int(p))
        assert c.random() == x
    c = np.random.Generator(np.random.PCG64())
    c.bit_generator.state = start
    c.bit_generator.advance(2**62 + 100)
    assert c.bit_generator.state["state"] == b.bit_generator.state["state"]


@pytest.mark.parametrize("bits", [np.random.MT19937, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64])
def test_other_bit_generators_draw_the_block_with_numpy(bits):
    a, b = np.random.Generator(bits(7)), np.random.Generator(bits(7))
    assert not streams.compiled_stream(b)
    pos = np.array([0, 5, 5, 99])
    assert np.array_equal(streams.uniforms_at(b, pos, 100), a.random(100)[pos])
    assert b.random() == a.random()
    rows = streams.claim_rows((b,), 2, 30, reserve_min=0)
    assert not rows.lazy and np.array_equal(rows.values, a.random((2, 30)))
    assert b.random() == a.random()


@pytest.mark.parametrize("bad,match", [(np.array([3, 1]), "sorted"), (np.array([0, 10]), r"\[0, 10\)"),
                                       (np.array([-1, 2]), r"\[0, 10\)"), (np.array([[1]]), "1-D"),
                                       (np.array([0.5]), "integer")])
def test_bad_positions_name_what_is_allowed_and_leave_the_generator(bad, match):
    g = np.random.default_rng(0)
    before = g.bit_generator.state
    with pytest.raises((ValueError, TypeError), match=match):
        streams.uniforms_at(g, bad, 10)
    assert g.bit_generator.state == before
    with pytest.raises(ValueError, match="total"):
        streams.uniforms_at(g, np.array([0]), -1)


@settings(max_examples=25, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**32), min_size=1, max_size=4), rows=st.integers(1, 3),
       width=st.integers(1, 400), data=st.data())
def test_reserved_rows_read_as_the_drawn_block(seeds, rows, width, data):
    """`claim_rows` reserves each generator's block ([rows, M * width] market-major columns): reading
    columns of it (`Rows.at`), or drawing it from the handles, gives numpy's block, and each
    generator ends where drawing it leaves it."""
    gens = [np.random.default_rng(np.random.SeedSequence(s)) for s in seeds]
    twins = [np.random.default_rng(np.random.SeedSequence(s)) for s in seeds]
    m = len(seeds)
    want = np.concatenate([g.random((rows, width)) for g in twins], axis=1)
    got = streams.claim_rows(gens, rows, width, reserve_min=0)
    assert got.lazy == compiled.USE_NUMBA
    cols = np.sort(np.array(data.draw(st.lists(st.integers(0, m * width - 1), max_size=40)), dtype=np.int64))
    assert np.array_equal(got.at(cols), want[:, cols])
    assert np.array_equal(got.drawn(), want)
    for g, t in zip(gens, twins):
        assert g.bit_generator.state == t.bit_generator.state


def test_small_blocks_are_drawn_large_ones_reserved():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    small = streams.claim_rows((b,), 2, streams.RESERVE_MIN // 2 - 1)
    assert not small.lazy and np.array_equal(small.values, a.random((2, streams.RESERVE_MIN // 2 - 1)))
    large = streams.claim_rows((b,), 2, streams.RESERVE_MIN // 2)
    assert large.lazy == compiled.USE_NUMBA
    assert np.array_equal(large.drawn(), a.random((2, streams.RESERVE_MIN // 2)))
    assert b.bit_generator.state == a.bit_generator.state
