"""`prefetch(arr, i)`: a hint that the compiled loop will soon read element i of `arr` (flat index, C order).

The day's random reads (the traded slots' history and the buyers' lots, in the buyers' order; rows scattered
over several MB, in the L3 cache or memory) stall the loop when it meets them one at a time; asking for the
lines a few items ahead lets those misses overlap. Compiled, it is LLVM's `llvm.prefetch` (read, high
locality, data cache): no effect on any value, and no fault on any address. In plain Python (numba off, or a
twin run by Python) it does nothing. Kept here, not in `envs/compiled.py` (another helper's file).
"""

from __future__ import annotations

from ..compiled import USE_NUMBA


def prefetch(arr, i) -> None:  # pragma: no cover - a hint: nothing to do in Python
    """Hint that `arr.flat[i]` will be read soon (compiled: `llvm.prefetch`; Python: nothing)."""


if USE_NUMBA:
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _prefetch(typingctx, arr, i):
        if not isinstance(arr, types.Array) or not isinstance(i, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            idx = context.cast(builder, args[1], signature.args[1], types.intp)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = builder.module.declare_intrinsic(        # named for this LLVM's pointers (p0i8, or p0)
                "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
            ptr = builder.bitcast(builder.gep(ary.data, [idx]), i8p)   # an address only: never dereferenced
            builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(arr, i), codegen

    @overload(prefetch, inline="always")
    def _prefetch_overload(arr, i):
        if isinstance(arr, types.Array) and isinstance(i, types.Integer):
            return lambda arr, i: _prefetch(arr, i)
        return None


__all__ = ["prefetch"]
