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

from typing import NamedTuple

import numpy as np

from .compiled import USE_NUMBA, jit

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


_affine = jit(_affine_py, inline=True)


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


def _double_py(sh, sl):  # pragma: no cover - compiled
    """The double PCG64 outputs for the (already stepped) state: XSL-RR, top 53 bits, times 2^-53."""
    x = sh ^ sl
    rot = sh >> _S58
    out = (x >> rot) | (x << ((_S63 + _ONE - rot) & _S63))
    return np.float64(out >> _S11) * _HALF53


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


__all__ = ["uniforms_at", "claim_rows", "RESERVE_MIN", "draw_rows", "Rows", "compiled_stream", "jump_table",
           "table_bits", "jump", "double_of", "handle_table", "MULT"]
