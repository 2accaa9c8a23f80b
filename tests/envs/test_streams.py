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


# ---- whole blocks from the live states: normals and the first row of a block ----------------------------

def _next_raw(g: np.random.Generator, raw: int) -> None:
    """Set PCG64 `g` so that its next 64-bit draw is `raw` (stepped state: high word 0, low word `raw`)."""
    st_ = g.bit_generator.state
    inverse = pow(streams.MULT, -1, 1 << 128)
    st_["state"]["state"] = ((raw - st_["state"]["inc"]) * inverse) % (1 << 128)
    g.bit_generator.state = st_


@needs_numba
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**63), m=st.integers(1, 3), k=st.integers(0, 5000), uint32=st.booleans())
def test_standard_normals_equal_numpy_and_leave_the_generators_where_numpy_does(seed, m, k, uint32):
    pairs = [_pair(seed, spawn, uint32) for spawn in range(m)]
    want = np.stack([a.standard_normal(k) for a, _ in pairs])
    got = streams.standard_normals([b for _, b in pairs], k)
    assert got.shape == (m, k) and np.array_equal(got, want)
    for a, b in pairs:
        assert b.bit_generator.state == a.bit_generator.state   # has_uint32 / uinteger untouched
        assert b.standard_normal() == a.standard_normal()


@needs_numba
def test_standard_normals_many_draws_cover_the_wedges_and_the_tail():
    # ~2 million normals: ~14,000 wedge tests and ~500 tail draws, each against NumPy's
    for seed in (0, 7):
        a, b = _pair(seed, 2)
        assert np.array_equal(streams.standard_normals((b,), 1_000_000)[0], a.standard_normal(1_000_000))
        assert b.bit_generator.state == a.bit_generator.state


@needs_numba
def test_standard_normals_at_every_layer_edge():
    # the 64-bit draw sets layer (8 bits), sign (1) and magnitude (52): at each layer's threshold and one
    # under it (one draw or the wedge / tail), the largest magnitude, both signs, as NumPy
    wi, ki, _ = streams._ziggurat()
    a, b = _pair(3)
    for layer in range(256):
        for mag in {max(int(ki[layer]) - 1, 0), int(ki[layer]), int(ki[layer]) + 1, 2**52 - 1, 0}:
            for sign in (0, 1):
                raw = layer | (sign << 8) | (mag << 9)
                _next_raw(a, raw)
                _next_raw(b, raw)
                want = a.standard_normal()
                assert streams.standard_normals((b,), 1)[0, 0] == want, (layer, mag, sign)
                assert b.bit_generator.state == a.bit_generator.state


def test_standard_normals_other_bit_generators_and_numba_off(monkeypatch):
    for make in (lambda: np.random.Generator(np.random.MT19937(5)), lambda: np.random.Generator(np.random.SFC64(5))):
        a, b = make(), make()
        assert streams.state_view(b) is None
        assert np.array_equal(streams.standard_normals((b,), 1001), a.standard_normal((1, 1001)))
        assert b.random() == a.random()
    monkeypatch.setattr(streams, "USE_NUMBA", False)
    a, b = _pair(9)
    assert streams.state_view(b) is None
    assert np.array_equal(streams.standard_normals((b, ), 7), a.standard_normal((1, 7)))


@needs_numba
def test_state_view_is_the_live_state():
    a, b = _pair(11)
    view = streams.state_view(b)
    assert view is streams.state_view(b)   # cached per bit generator
    b.random(5)   # drawn by NumPy: the view sees it
    a.random(5)
    st_ = a.bit_generator.state["state"]
    assert [int(x) for x in view] == [st_["state"] % 2**64, st_["state"] >> 64, st_["inc"] % 2**64, st_["inc"] >> 64]
    c = np.random.default_rng(99)
    b.bit_generator.state = c.bit_generator.state   # a state set from Python: the compiled draws follow it
    assert np.array_equal(streams.standard_normals((b,), 10)[0], c.standard_normal(10))


@needs_numba
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**63), m=st.integers(1, 3), width=st.integers(0, 3000), rows=st.integers(1, 4),
       uint32=st.booleans())
def test_draw_and_claim_equal_the_block(seed, m, width, rows, uint32):
    pairs = [_pair(seed, spawn, uint32) for spawn in range(m)]
    want = np.stack([a.random((rows, width)) for a, _ in pairs])   # [m, rows, width]
    first, rest = streams.draw_and_claim([b for _, b in pairs], rows, width, reserve_min=0)
    assert np.array_equal(first, want[:, 0].reshape(-1))
    assert rest.rows == rows - 1 and rest.width == width
    assert np.array_equal(rest.drawn(), want[:, 1:].transpose(1, 0, 2).reshape(rows - 1, m * width))
    for a, b in pairs:
        assert b.bit_generator.state == a.bit_generator.state
        assert b.random() == a.random()


@needs_numba
@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.integers(0, 2**64 - 1), min_size=6, max_size=6))
def test_wide_multiply_add_equals_the_32_bit_halves(words):
    w = [np.uint64(x) for x in words]
    s, a, c = (words[0] << 64) | words[1], (words[2] << 64) | words[3], (words[4] << 64) | words[5]
    want = (s * a + c) % (1 << 128)
    got = _affine_pair(*w)
    assert (int(got[0]) << 64) | int(got[1]) == want
    halves = compiled.jit(streams._affine_py)   # the reference rule (its inlined helper compiled too)
    h = halves(*w)
    assert (int(h[0]) << 64) | int(h[1]) == want


_affine_pair = compiled.jit(lambda sh, sl, ah, al, ch, cl: streams._affine(sh, sl, ah, al, ch, cl)) if compiled.USE_NUMBA else None
