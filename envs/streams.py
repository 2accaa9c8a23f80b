"""NumPy's PCG64 stream computed in compiled code: a generator's doubles at chosen positions.

A step that draws a fixed block of uniforms but reads only a few of them (the channel lifecycle's
reopening candidates: two rows of E doubles, a few hundred read) can skip the rest. NumPy's
`default_rng` is PCG64: a 128-bit LCG, s' = s * MULT + inc (mod 2^128), stepped before each
output; the output is XSL-RR (x = hi64(s') ^ lo64(s'), rotated right by s' >> 122) and a double
(out >> 11) * 2^-53. The LCG jumps d steps at once as the affine map (A^d, C_d); with the maps of
0 .. 2^b - 1 steps and of the larger powers of two tabled per increment, a jump of d costs one
128-bit multiply-add for its low b bits and one per set higher bit (a gap of one is one step).
128-bit numbers are (hi, lo) uint64 pairs.

`uniforms_at(rng, positions, total)` gives the doubles `rng.random(total)` would give at
`positions` and leaves `rng` exactly where that call would (the state set; the 32-bit buffer
`has_uint32`/`uinteger`, which doubles do not use, untouched). `claim_rows(rngs, rows, width)`
reserves a block of rows of each generator without drawing it: compiled kernels read the reserved
doubles they need from its handles (`table_bits`, `handle_table`, `jump`, `double_of`, inlined).
A generator other than PCG64, numba off, or a block too small to pay, is drawn with NumPy
instead: the same values. (numba caches a compiled kernel by its own file: after editing this one,
clear the `__pycache__/*.nbi` caches of the kernels that inline it.)
"""

from __future__ import annotations

import ctypes
import math
from typing import NamedTuple

import numpy as np

from .compiled import USE_NUMBA, affine_u128, jit

MULT = 0x2360ED051FC65DA44385DF649FCCF645   # PCG64's 128-bit multiplier (numpy's PCG_DEFAULT_MULTIPLIER_128)
_MASK64 = (1 << 64) - 1
_MULT_HI, _MULT_LO = np.uint64(MULT >> 64), np.uint64(MULT & _MASK64)
_M32 = np.uint64(0xFFFFFFFF)
_S32, _S11, _S58, _S63 = np.uint64(32), np.uint64(11), np.uint64(58), np.uint64(63)
_ONE, _ZERO = np.uint64(1), np.uint64(0)
_HALF53 = 1.0 / 9007199254740992.0          # 2^-53
JUMP_BITS = 63                               # jumps of up to 2^63 - 1 steps (positions are int64)


# ---- 128-bit arithmetic on (hi, lo) uint64 pairs, compiled and inlined into the callers ---------------

def _mulhi_py(a, b):  # pragma: no cover - compiled
    """High 64 bits of the 128-bit product of two uint64 (through 32-bit halves)."""
    a0, a1 = a & _M32, a >> _S32
    b0, b1 = b & _M32, b >> _S32
    p0, p1, p2, p3 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p0 >> _S32) + (p1 & _M32) + (p2 & _M32)   # < 3 * 2^32: no overflow
    return p3 + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32)


_mulhi = jit(_mulhi_py, inline=True)


def _affine_py(sh, sl, ah, al, ch, cl):  # pragma: no cover - compiled
    """s * a + c (mod 2^128) as (hi, lo)."""
    lo = sl * al
    hi = _mulhi(sl, al) + sh * al + sl * ah
    lo2 = lo + cl
    carry = _ONE if lo2 < lo else _ZERO
    return hi + ch + carry, lo2


# LLVM's 128-bit integers where numba is on (one wide multiply); the 32-bit halves are its reference
_affine = affine_u128 if affine_u128 is not None else jit(_affine_py, inline=True)


def _table_py(inc_hi, inc_lo, bits):  # pragma: no cover - compiled
    """The LCG's maps for jumps, (A hi, A lo, C hi, C lo) a row: rows 0 .. S - 1 (S = 2^bits) the
    maps for 0 .. S - 1 steps, then row S + i the map for S * 2^i steps (i < 63 - bits)."""
    small = 1 << bits
    t = np.empty((small + JUMP_BITS - bits, 4), dtype=np.uint64)
    ah, al, ch, cl = _ZERO, _ONE, _ZERO, _ZERO   # identity
    for d in range(small):                         # d + 1 steps: one step after d
        t[d, 0], t[d, 1], t[d, 2], t[d, 3] = ah, al, ch, cl
        ah, al = _affine(ah, al, _MULT_HI, _MULT_LO, _ZERO, _ZERO)
        ch, cl = _affine(ch, cl, _MULT_HI, _MULT_LO, inc_hi, inc_lo)
    for i in range(JUMP_BITS - bits):
        t[small + i, 0], t[small + i, 1], t[small + i, 2], t[small + i, 3] = ah, al, ch, cl
        # C_{2d} = C_d * (A_d + 1), A_{2d} = A_d^2
        ph, pl = _affine(ah, al, _ZERO, _ONE, _ZERO, _ONE)   # A_d + 1 (a carry into hi when al wraps)
        ch, cl = _affine(ch, cl, ph, pl, _ZERO, _ZERO)
        ah, al = _affine(ah, al, ah, al, _ZERO, _ZERO)
    return t


jump_table = jit(_table_py, inline=True)


def table_bits(gap: int) -> int:
    """Bits of the small maps' table for jumps of about `gap` steps: a jump under 2^bits is one
    table map, so the table pays when it is used often (at most 256 maps: 8 bits)."""
    b = 0
    while b < 8 and (1 << b) < gap:
        b += 1
    return b


table_bits_nb = jit(table_bits, inline=True)


def _jump_py(sh, sl, table, bits, d):  # pragma: no cover - compiled
    """The state `d` >= 0 steps on: the small map of d's low bits, then the maps of its set high
    bits (powers of one map commute)."""
    small = 1 << bits
    r = d & (small - 1)
    sh, sl = _affine(sh, sl, table[r, 0], table[r, 1], table[r, 2], table[r, 3])
    d >>= bits
    i = small
    while d > 0:
        if d & 1:
            sh, sl = _affine(sh, sl, table[i, 0], table[i, 1], table[i, 2], table[i, 3])
        d >>= 1
        i += 1
    return sh, sl


jump = jit(_jump_py, inline=True)


def _output_py(sh, sl):  # pragma: no cover - compiled
    """The uint64 PCG64 outputs for the (already stepped) state: XSL-RR."""
    x = sh ^ sl
    rot = sh >> _S58
    return (x >> rot) | (x << ((_S63 + _ONE - rot) & _S63))


output_of = jit(_output_py, inline=True)


def _double_py(sh, sl):  # pragma: no cover - compiled
    """The double PCG64 outputs for the (already stepped) state: XSL-RR, top 53 bits, times 2^-53."""
    return np.float64(output_of(sh, sl) >> _S11) * _HALF53


double_of = jit(_double_py, inline=True)


def _handle_table_py(handles, i, bits):  # pragma: no cover - compiled
    """The jump table of handle row `i` (its generator's increment)."""
    return jump_table(handles[i, 2], handles[i, 3], bits)


handle_table = jit(_handle_table_py, inline=True)


def _values_py(sh, sl, inc_hi, inc_lo, positions, total, bits):  # pragma: no cover - compiled
    table = jump_table(inc_hi, inc_lo, bits)
    out = np.empty(positions.shape[0])
    at = -1
    for j in range(positions.shape[0]):
        p = positions[j]
        sh, sl = jump(sh, sl, table, bits, p - at)
        at = p
        out[j] = double_of(sh, sl)
    sh, sl = jump(sh, sl, table, bits, total - 1 - at)
    return out, sh, sl


_values_nb = jit(_values_py)


def _advance_py(sh, sl, inc_hi, inc_lo, d):  # pragma: no cover - compiled
    return jump(sh, sl, jump_table(inc_hi, inc_lo, 0), 0, d)


_advance_nb = jit(_advance_py)


# ---- generators -------------------------------------------------------------------------------------------

def compiled_stream(rng: np.random.Generator) -> bool:
    """Whether `rng`'s doubles can be computed here: numba on and the bit generator exactly PCG64."""
    return USE_NUMBA and isinstance(rng, np.random.Generator) and type(rng.bit_generator) is np.random.PCG64


def _check(positions, total: int) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.ndim != 1 or not (pos.dtype.kind in "iu" or pos.shape[0] == 0):
        raise TypeError(f"positions: expected a 1-D integer array, got {pos.dtype} of shape {pos.shape}")
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
        raise ValueError(f"total={total!r}: expected a whole number >= 0")
    pos = pos.astype(np.int64, copy=False)
    if pos.shape[0]:
        if pos[0] < 0 or pos[-1] >= total:
            raise ValueError(f"positions: expected offsets in [0, {total}), got {int(pos.min())}..{int(pos.max())}")
        if (np.diff(pos) < 0).any():
            raise ValueError("positions: expected sorted (non-decreasing) offsets")
    return pos


def _split(x: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(x >> 64), np.uint64(x & _MASK64)


def uniforms_at(rng: np.random.Generator, positions, total: int) -> np.ndarray:
    """The doubles `rng.random(total)` would give at the sorted `positions` (duplicates allowed),
    leaving `rng` where that call would. Only the asked doubles are computed (PCG64 and numba);
    otherwise the whole block is drawn with NumPy."""
    pos = _check(positions, total)
    if not compiled_stream(rng):
        return rng.random(total)[pos]
    bg = rng.bit_generator
    st = bg.state
    sh, sl = _split(st["state"]["state"])
    ih, il = _split(st["state"]["inc"])
    out, nh, nl = _values_nb(sh, sl, ih, il, pos, int(total), table_bits(total // max(pos.shape[0], 1)))
    st["state"]["state"] = (int(nh) << 64) | int(nl)
    bg.state = st    # has_uint32 / uinteger as they were
    return out


class Rows(NamedTuple):
    """`rows` rows of `width` doubles reserved from each of M generators (the next rows * width
    doubles of generator i, row-major), as a [rows, M * width] block (column i * width + c: row
    of generator i, column c). Either drawn (`values`, and `handles` empty) or only reserved
    (`handles` [M, 4] uint64: each generator's state hi, lo and increment hi, lo before the block;
    `values` empty). `at` reads columns of it."""

    values: np.ndarray
    handles: np.ndarray
    rows: int
    width: int

    @property
    def lazy(self) -> bool:
        return self.handles.shape[0] > 0

    def at(self, cols: np.ndarray) -> np.ndarray:
        """[rows, k] the block's columns `cols` (sorted)."""
        cols = np.asarray(cols, dtype=np.int64)
        if not self.lazy:
            return self.values[:, cols]
        gap = self.width * self.handles.shape[0] // max(cols.shape[0], 1)
        return _rows_at_nb(self.handles, self.rows, self.width, cols, table_bits(gap))

    def drawn(self) -> np.ndarray:
        """The whole [rows, M * width] block (drawn now from the handles with NumPy if reserved)."""
        if not self.lazy:
            return self.values
        return draw_rows(self.handles, self.rows, self.width)


def _rows_at_py(handles, rows, width, cols, bits):  # pragma: no cover - compiled
    k = cols.shape[0]
    out = np.empty((rows, k))
    j = 0
    while j < k:   # one generator's columns at a time: each row walks its own cursor over them
        i = cols[j] // width
        stop = j
        while stop < k and cols[stop] // width == i:
            stop += 1
        table = handle_table(handles, i, bits)
        base = i * width
        for r in range(rows):
            sh, sl = handles[i, 0], handles[i, 1]
            at = -1
            for q in range(j, stop):
                pos = r * width + cols[q] - base
                sh, sl = jump(sh, sl, table, bits, pos - at)
                at = pos
                out[r, q] = double_of(sh, sl)
        j = stop
    return out


_rows_at_nb = jit(_rows_at_py)


def _generator(handle: np.ndarray) -> np.random.Generator:
    bg = np.random.PCG64()
    st = bg.state
    st["state"] = {"state": (int(handle[0]) << 64) | int(handle[1]), "inc": (int(handle[2]) << 64) | int(handle[3])}
    bg.state = st
    return np.random.Generator(bg)


def draw_rows(handles: np.ndarray, rows: int, width: int) -> np.ndarray:
    """The reserved block of `handles` drawn with NumPy ([rows, M * width]; the NumPy twin of
    reading it in compiled code)."""
    m = handles.shape[0]
    block = np.empty((m, rows, width))
    for i in range(m):
        _generator(handles[i]).random(out=block[i])
    return block.transpose(1, 0, 2).reshape(rows, m * width)


# Doubles per generator from which `claim_rows` reserves rather than draws: reserving costs ~7 µs a
# generator (its state read and set), drawing ~2.5 ns a double (measured on the 2-core VM).
RESERVE_MIN = 4096


def claim_rows(rngs, rows: int, width: int, reserve_min: "int | None" = None) -> Rows:
    """Reserve the next `rows` x `width` doubles of each generator in `rngs` (in order): each is
    left where `rng.random((rows, width))` would leave it. Drawn instead (the same doubles) when
    the block is under `reserve_min` doubles (default `RESERVE_MIN`: drawing is cheaper), some
    generator is not PCG64 or numba is off."""
    rngs = tuple(rngs)
    m = len(rngs)
    small = rows * width < (RESERVE_MIN if reserve_min is None else reserve_min)
    if small or not all(compiled_stream(g) for g in rngs):
        block = np.empty((m, rows, width))
        for i, g in enumerate(rngs):
            g.random(out=block[i])
        return Rows(block.transpose(1, 0, 2).reshape(rows, m * width), np.zeros((0, 4), dtype=np.uint64), rows, width)
    handles = np.empty((m, 4), dtype=np.uint64)
    for i, g in enumerate(rngs):
        bg = g.bit_generator
        st = bg.state
        sh, sl = _split(st["state"]["state"])
        ih, il = _split(st["state"]["inc"])
        handles[i] = sh, sl, ih, il
        nh, nl = _advance_nb(sh, sl, ih, il, rows * width)
        st["state"]["state"] = (int(nh) << 64) | int(nl)
        bg.state = st
    return Rows(np.zeros((rows, 0)), handles, rows, width)


# ---- live generator states: whole blocks drawn in compiled code, the generator advanced in place -----------

_STATE_WORDS = ctypes.c_uint64 * 4
_VIEWS: dict = {}        # id(bit generator) -> (bit generator, its state view or None)
_VIEWS_MAX = 4096


def state_view(rng) -> "np.ndarray | None":
    """The live state of `rng`'s PCG64 as uint64 [state lo, state hi, increment lo, increment hi]: a
    view of the bit generator's own C struct (NumPy's ctypes interface, `ctypes.state_address`), so
    compiled code draws from it and leaves it advanced in place without reading and setting
    `bit_generator.state` (~7 µs). None when `rng` is not a `compiled_stream` or the struct does not
    hold what `bit_generator.state` says (another layout, e.g. NumPy's emulated 128-bit arithmetic).
    Cached per bit generator (the cache holds it alive; cleared past 4096 generators)."""
    if not compiled_stream(rng):
        return None
    bg = rng.bit_generator
    hit = _VIEWS.get(id(bg))
    if hit is not None and hit[0] is bg:
        return hit[1]
    if len(_VIEWS) >= _VIEWS_MAX:
        _VIEWS.clear()
    ptr = ctypes.c_void_p.from_address(bg.ctypes.state_address).value   # pcg64_state.pcg_state
    view = np.frombuffer(_STATE_WORDS.from_address(ptr), dtype=np.uint64) if ptr else None
    st = bg.state["state"]
    words = [st["state"] & _MASK64, st["state"] >> 64, st["inc"] & _MASK64, st["inc"] >> 64]
    if view is not None and [int(x) for x in view] != words:
        view = None
    _VIEWS[id(bg)] = (bg, view)
    return view


def live_states(rngs) -> "tuple[np.ndarray, list | None] | None":
    """(states [M, 4] uint64 as `state_view`, views to write them back to with `put_states`): one
    generator's view itself (nothing to write back), more generators' views stacked; None when some
    generator has no view (then draw with NumPy)."""
    views = [state_view(g) for g in rngs]
    if not views or any(v is None for v in views):
        return None
    if len(views) == 1:
        return views[0].reshape(1, 4), None
    return np.stack(views), views


def put_states(states: np.ndarray, views: "list | None") -> None:
    """Write stacked states back into their generators (`live_states`)."""
    if views is not None:
        for i, v in enumerate(views):
            v[:] = states[i]


def _step_py(sh, sl, ih, il):  # pragma: no cover - compiled
    """The state one step on (the state of the next output)."""
    return _affine(sh, sl, _MULT_HI, _MULT_LO, ih, il)


step = jit(_step_py, inline=True)


def generator_of(state: np.ndarray) -> np.random.Generator:
    """A NumPy generator at the live state `state` ([lo, hi, increment lo, hi], `state_view`): the
    NumPy twin of drawing from it in compiled code (`put_generator` writes its state back)."""
    bg = np.random.PCG64()
    st = bg.state
    st["state"] = {"state": (int(state[1]) << 64) | int(state[0]), "inc": (int(state[3]) << 64) | int(state[2])}
    bg.state = st
    return np.random.Generator(bg)


def put_generator(state: np.ndarray, g: np.random.Generator) -> None:
    """Write the state of `g` (from `generator_of`) back into the live state row `state`."""
    s = g.bit_generator.state["state"]["state"]
    state[0], state[1] = np.uint64(s & _MASK64), np.uint64(s >> 64)

def _fill_doubles_py(sh, sl, ih, il, out):  # pragma: no cover - compiled
    """out[:] = the stream's next doubles from state (sh, sl), increment (ih, il); returns the state
    after them. Four interleaved chains, each stepping four states at once (the map A^4, C_4), so
    the wide multiplies overlap instead of waiting on each other."""
    a4h, a4l, c4h, c4l = _ZERO, _ONE, _ZERO, _ZERO
    for _ in range(4):
        a4h, a4l = _affine(a4h, a4l, _MULT_HI, _MULT_LO, _ZERO, _ZERO)
        c4h, c4l = _affine(c4h, c4l, _MULT_HI, _MULT_LO, ih, il)
    h0, l0 = _affine(sh, sl, _MULT_HI, _MULT_LO, ih, il)
    h1, l1 = _affine(h0, l0, _MULT_HI, _MULT_LO, ih, il)
    h2, l2 = _affine(h1, l1, _MULT_HI, _MULT_LO, ih, il)
    h3, l3 = _affine(h2, l2, _MULT_HI, _MULT_LO, ih, il)
    n = out.shape[0]
    i = 0
    while i + 4 <= n:
        out[i] = double_of(h0, l0)
        out[i + 1] = double_of(h1, l1)
        out[i + 2] = double_of(h2, l2)
        out[i + 3] = double_of(h3, l3)
        sh, sl = h3, l3
        h0, l0 = _affine(h0, l0, a4h, a4l, c4h, c4l)
        h1, l1 = _affine(h1, l1, a4h, a4l, c4h, c4l)
        h2, l2 = _affine(h2, l2, a4h, a4l, c4h, c4l)
        h3, l3 = _affine(h3, l3, a4h, a4l, c4h, c4l)
        i += 4
    if i < n:
        out[i] = double_of(h0, l0)
        sh, sl = h0, l0
    if i + 1 < n:
        out[i + 1] = double_of(h1, l1)
        sh, sl = h1, l1
    if i + 2 < n:
        out[i + 2] = double_of(h2, l2)
        sh, sl = h2, l2
    return sh, sl


fill_doubles = _fill_doubles = jit(_fill_doubles_py, inline=True)


def _rows_py(states, out, width, skip):  # pragma: no cover - compiled
    """Generator i (its live state `states[i]`) fills out[i * width:(i + 1) * width] with its next doubles,
    then reserves the next `skip` doubles: returns the handles [M, 4] (state hi, lo, increment hi, lo)
    of the reserved rows, each state left after them."""
    m = states.shape[0]
    handles = np.empty((m, 4), dtype=np.uint64)
    for i in range(m):
        ih, il = states[i, 3], states[i, 2]
        sh, sl = _fill_doubles(states[i, 1], states[i, 0], ih, il, out[i * width:(i + 1) * width])
        handles[i, 0], handles[i, 1], handles[i, 2], handles[i, 3] = sh, sl, ih, il
        sh, sl = jump(sh, sl, jump_table(ih, il, 0), 0, skip)
        states[i, 1], states[i, 0] = sh, sl
    return handles


_rows_nb = jit(_rows_py)


def draw_and_claim(rngs, rows: int, width: int, reserve_min: "int | None" = None) -> "tuple[np.ndarray, Rows]":
    """Row 0 of each generator's block of `rows` x `width` doubles drawn ([M * width], generator-major),
    rows 1.. reserved (`claim_rows`): each generator is left where `rng.random((rows, width))` would
    leave it. Compiled from the live states (`live_states`) when the reserved rows are at least
    `reserve_min` (default `RESERVE_MIN`) doubles; otherwise NumPy draws row 0 and `claim_rows` the rest."""
    rngs = tuple(rngs)
    live = None
    if (rows - 1) * width >= (RESERVE_MIN if reserve_min is None else reserve_min):
        live = live_states(rngs)
    if live is None:
        first = np.empty(len(rngs) * width)
        for i, g in enumerate(rngs):
            g.random(out=first[i * width:(i + 1) * width])
        return first, claim_rows(rngs, rows - 1, width, reserve_min)
    states, views = live
    first = np.empty(len(rngs) * width)
    handles = _rows_nb(states, first, int(width), int((rows - 1) * width))
    put_states(states, views)
    return first, Rows(np.zeros((rows - 1, 0)), handles, rows - 1, width)


# NumPy's standard normals (`Generator.standard_normal`): the 256-layer ziggurat of Marsaglia and Tsang
# on 64-bit draws (8 bits the layer, 1 the sign, 52 the magnitude), and its tail past R by
# logarithms of two doubles. The layers' widths are read off NumPy itself (`_probe_ziggurat`): a draw
# of magnitude 1 in layer i gives its width; its thresholds and heights follow from the widths.
_R = 3.6541528853610088   # where the tail starts
_INV_R = 1.0 / _R
_MAG = np.uint64(0x000FFFFFFFFFFFFF)
_S1, _S8, _M8 = np.uint64(1), np.uint64(8), np.uint64(0xFF)
_MULT_INV = pow(MULT, -1, 1 << 128)


def _normals_py(sh, sl, ih, il, out, wi, ki, fi):  # pragma: no cover - compiled
    """out[:] = the stream's next standard normals (as NumPy's `random_standard_normal`); returns the
    state after them."""
    for j in range(out.shape[0]):
        while True:
            sh, sl = _affine(sh, sl, _MULT_HI, _MULT_LO, ih, il)
            r = output_of(sh, sl)
            idx = r & _M8
            r >>= _S8
            rabs = (r >> _S1) & _MAG
            x = np.float64(rabs) * wi[idx]
            if r & _S1:
                x = -x
            if rabs < ki[idx]:   # inside the layer's rectangle: 99.3% of draws
                break
            if idx == 0:   # the tail
                while True:
                    sh, sl = _affine(sh, sl, _MULT_HI, _MULT_LO, ih, il)
                    xx = -_INV_R * math.log1p(-double_of(sh, sl))
                    sh, sl = _affine(sh, sl, _MULT_HI, _MULT_LO, ih, il)
                    yy = -math.log1p(-double_of(sh, sl))
                    if yy + yy > xx * xx:
                        break
                x = -(_R + xx) if (rabs >> _S8) & _S1 else _R + xx
                break
            sh, sl = _affine(sh, sl, _MULT_HI, _MULT_LO, ih, il)
            if (fi[idx - 1] - fi[idx]) * double_of(sh, sl) + fi[idx] < math.exp(-0.5 * x * x):
                break
        out[j] = x
    return sh, sl


_normals = jit(_normals_py, inline=True)


def _normal_rows_py(states, out, wi, ki, fi):  # pragma: no cover - compiled
    for i in range(states.shape[0]):
        sh, sl = _normals(states[i, 1], states[i, 0], states[i, 3], states[i, 2], out[i], wi, ki, fi)
        states[i, 1], states[i, 0] = sh, sl


_normal_rows_nb = jit(_normal_rows_py)


def _probe_ziggurat() -> "tuple[np.ndarray, np.ndarray, np.ndarray] | None":
    """(wi, ki, fi) of NumPy's ziggurat read off NumPy itself, or None when its normals do not follow
    this ziggurat. A generator is set (through its live state) so that its next 64-bit draw is a
    chosen one: a draw of magnitude 1 in layer i gives the layer's width wi[i]; the threshold ki[i]
    is the smallest magnitude NumPy does not accept in one draw (searched from floor(2^52 x_(i-1) /
    x_i), which NumPy's table exceeds by one in about a quarter of the layers); the heights
    fi[i] = exp(-x_i^2 / 2), x_i = 2^52 wi[i]. About 800 single draws, once per process."""
    g = np.random.Generator(np.random.PCG64(0))
    view = state_view(g)
    if view is None:
        return None
    inc = (int(view[3]) << 64) | int(view[2])
    full = (1 << 128) - 1

    def draw(raw: int) -> "tuple[float, bool]":
        """The normal NumPy makes of the 64-bit draw `raw`, and whether it took that one draw only."""
        s = ((raw - inc) * _MULT_INV) & full   # the state before: stepped, it is `raw` (high word 0)
        view[0], view[1] = np.uint64(s & _MASK64), np.uint64(s >> 64)
        x = g.standard_normal()
        return x, int(view[0]) == raw and int(view[1]) == 0

    wi = np.empty(256)
    for i in range(256):
        wi[i] = draw(i | (1 << 9))[0]   # sign 0, magnitude 1
    ki = np.zeros(256, dtype=np.uint64)
    fi = np.ones(256)
    for i in range(256):
        if i == 1:   # the first layer above the base strip has no rectangle
            if draw(1)[1]:
                return None
            continue
        t = int(2.0 ** 52 * _R / (wi[0] * 2.0 ** 52)) if i == 0 else int(2.0 ** 52 * wi[i - 1] / wi[i])
        for _ in range(8):
            if not draw(i | ((t - 1) << 9))[1]:
                t -= 1
            elif draw(i | (t << 9))[1]:
                t += 1
            else:
                break
        x, one = draw(i | ((t - 1) << 9))
        if not one or draw(i | (t << 9))[1] or x != (t - 1) * wi[i]:
            return None
        ki[i] = t
    for i in range(1, 256):
        x = wi[i] * 2.0 ** 52
        fi[i] = math.exp(-0.5 * x * x)
    return wi, ki, fi


_ZIGGURAT: list = []   # [(wi, ki, fi)] once probed, [None] when NumPy's normals are not this ziggurat


def _ziggurat():
    if not _ZIGGURAT:
        tables = _probe_ziggurat() if USE_NUMBA else None
        if tables is not None:   # and a block of them as NumPy draws it
            a, b = np.random.Generator(np.random.PCG64(12345)), np.random.Generator(np.random.PCG64(12345))
            ref, got = a.standard_normal((1, 4096)), np.empty((1, 4096))
            states, _ = live_states((b,))
            _normal_rows_nb(states, got, *tables)
            if not (np.array_equal(ref, got) and a.bit_generator.state == b.bit_generator.state):
                tables = None
        _ZIGGURAT.append(tables)
    return _ZIGGURAT[0]


def standard_normals(rngs, k: int) -> np.ndarray:
    """[M, k]: row i the next k standard normals of generator i, as `rng.standard_normal(k)` draws
    them (the same doubles; the generator left where that call leaves it). Compiled from the live
    states (`live_states`; about 4 ns a normal against NumPy's ~17 on the 2-core VM), else NumPy."""
    rngs = tuple(rngs)
    z = np.empty((len(rngs), k))
    live = live_states(rngs) if k > 0 else None
    tables = _ziggurat() if live is not None else None
    if tables is None:
        for i, g in enumerate(rngs):
            g.standard_normal(out=z[i])
        return z
    states, views = live
    _normal_rows_nb(states, z, *tables)
    put_states(states, views)
    return z


__all__ = ["uniforms_at", "claim_rows", "RESERVE_MIN", "draw_rows", "Rows", "compiled_stream", "jump_table",
           "table_bits", "jump", "double_of", "output_of", "handle_table", "MULT", "state_view", "live_states",
           "put_states", "draw_and_claim", "standard_normals", "step", "generator_of", "put_generator"]
