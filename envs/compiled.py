"""One dispatch for compiled kernels: every numba kernel registered beside its NumPy twin.

A `Kernel` is a name, a NumPy (or plain Python) twin and, optionally, a compiled implementation
taking the same arguments in the same order. Callers pass keywords (`kernels.pay_trades(channel=...,
...)`); the kernel maps them onto the positional call numba needs (about a microsecond). Which
implementation runs is decided once, here, by the environment variable CHANNELMARKET_NUMBA
(`0` selects the twins everywhere, the ε-auction solver included) and by whether numba imports.
`KERNELS` lists them all, so one test checks each compiled kernel against its twin.

Some kernels also have a multi-threaded build (`jit(fn, parallel=True)`, numba's `prange`), used
when the work is large enough (`register(..., parallel=..., split=..., min_items=...)`). They are
written so that every thread writes only its own items (no float sums across threads), so the
result is bit for bit the serial one whatever the thread count. Threads: CHANNELMARKET_THREADS, a
whole number or `auto` (numba's NUMBA_NUM_THREADS, the core count); the default is 1, which turns
the parallel builds off: measured on a 2-core machine, two threads lose at 10,000 agents (starting
them costs 10-40 µs a pass, and any other process on the machine makes them wait on each other) and
won only from ~100,000 agents on cores nobody else uses (on the project's later VM they lose there too:
README, Threads), while RL users usually run one env process per core already.
The threading layer is numba's built-in `workqueue` (fork-safe: evaluation and vectorized envs fork
or spawn workers; GNU OpenMP is not) unless NUMBA_THREADING_LAYER names another; it is not
thread-safe, so parallel calls are serialized by one lock (an env stepped from several Python
threads still works, one parallel kernel at a time).

numba is imported only here (and only if enabled), so `envs` still imports with numpy alone.
"""

from __future__ import annotations

import inspect
import operator
import os
import threading
import types
from typing import Any, Callable


def _load_numba() -> Any:
    if os.environ.get("CHANNELMARKET_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except Exception:  # ImportError, or a broken llvmlite  # pragma: no cover - depends on the install
        return None
    return numba


_NUMBA = _load_numba()
USE_NUMBA = _NUMBA is not None  # the compiled implementations run (numba imports and is not disabled)


def _threads() -> int:
    """Threads for the parallel builds: CHANNELMARKET_THREADS (a whole number >= 1, or `auto` for
    numba's count), 1 by default; never more than NUMBA_NUM_THREADS."""
    raw = os.environ.get("CHANNELMARKET_THREADS", "1")
    if raw.strip().lower() == "auto":
        n = None
    else:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"CHANNELMARKET_THREADS={raw!r}: expected a whole number >= 1 or 'auto'") from None
        if n < 1:
            raise ValueError(f"CHANNELMARKET_THREADS={raw!r}: expected a whole number >= 1 or 'auto'")
    if _NUMBA is None:
        return 1
    cores = max(1, int(_NUMBA.config.NUMBA_NUM_THREADS))
    return cores if n is None else min(n, cores)


THREADS = _threads()  # threads the parallel builds use; 1 = they are off
prange = _NUMBA.prange if _NUMBA is not None else range   # the parallel loop (`range` in serial builds and twins)
if THREADS > 1 and "NUMBA_THREADING_LAYER" not in os.environ:
    _NUMBA.config.THREADING_LAYER = "workqueue"
_PARALLEL_LOCK = threading.Lock()


def _parallel_copy(fn: Callable) -> Callable:
    """`fn` as a new function object named `<name>__parallel`: numba's on-disk cache keys a build
    by the function's qualified name and bytecode, not by `parallel=`, so without its own name the
    multi-threaded build and the serial one would load each other's cached machine code."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "__parallel", fn.__defaults__,
                              fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "__parallel"
    twin.__kwdefaults__, twin.__doc__, twin.__module__ = fn.__kwdefaults__, fn.__doc__, fn.__module__
    return twin


def jit(fn: Callable, inline: bool = False, parallel: bool = False) -> "Callable | None":
    """`fn` compiled with the project's options (numba.njit, cached, no GIL), or None when the
    compiled kernels are off; plain Python in numba's subset. `inline=True`: inlined into the
    compiled callers (small rules called with functions as arguments: the compiled caller then
    holds no pointer to a Python object and can be cached). `parallel=True`: the multi-threaded
    build (`prange` loops split over threads), or None when there is one thread; compile the same
    function once without it too (`prange` is `range` there) for the serial build."""
    if _NUMBA is None:
        return None
    if parallel:
        if THREADS <= 1:
            return None
        return _NUMBA.njit(cache=True, nogil=True, parallel=True)(_parallel_copy(fn))
    if inline:
        return _NUMBA.njit(cache=True, nogil=True, inline="always")(fn)
    return _NUMBA.njit(cache=True, nogil=True)(fn)


def _u128_affine() -> "Callable | None":
    """numba intrinsic `affine_u128(sh, sl, ah, al, ch, cl)`: s * a + c (mod 2^128) on (hi, lo) uint64
    pairs, in LLVM's native 128-bit integers (one 64x64->128 multiply and two 64-bit ones on x86-64,
    instead of the 32-bit halves plain numba needs); None when numba is off."""
    if _NUMBA is None:
        return None
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    u64 = types.uint64

    @intrinsic
    def affine_u128(typingctx, sh, sl, ah, al, ch, cl):
        sig = types.UniTuple(u64, 2)(u64, u64, u64, u64, u64, u64)

        def codegen(context, builder, signature, args):
            wide = ir.IntType(128)
            shift = ir.Constant(wide, 64)

            def join(hi, lo):
                return builder.or_(builder.shl(builder.zext(hi, wide), shift), builder.zext(lo, wide))

            r = builder.add(builder.mul(join(args[0], args[1]), join(args[2], args[3])), join(args[4], args[5]))
            hi = builder.trunc(builder.lshr(r, shift), ir.IntType(64))
            return context.make_tuple(builder, signature.return_type, (hi, builder.trunc(r, ir.IntType(64))))

        return sig, codegen

    return affine_u128


affine_u128 = _u128_affine()


class Kernel:
    """A kernel: `twin(*args)` and, when numba is on, `compiled(*args)` giving the same result
    (to float round-off). Call it with keywords; `impl` is the implementation in use."""

    parallel: "Callable | None" = None

    def __init__(self, name: str, twin: Callable, compiled: "Callable | None" = None) -> None:
        self.name = name
        self.twin = twin
        self.params = tuple(inspect.signature(twin).parameters)
        self.compiled = compiled if USE_NUMBA else None
        if self.compiled is not None:
            src = getattr(self.compiled, "py_func", self.compiled)
            got = tuple(inspect.signature(src).parameters)
            if got != self.params and not any(p.kind == p.VAR_POSITIONAL
                                              for p in inspect.signature(src).parameters.values()):
                raise TypeError(f"kernel {name!r}: compiled arguments {got} differ from the twin's {self.params}")
        self.impl = self.compiled if self.compiled is not None else twin
        self._pick = operator.itemgetter(*self.params) if len(self.params) > 1 else (lambda kw: (kw[self.params[0]],))

    def args(self, kw: dict[str, Any]) -> tuple:
        """The positional arguments of `kw`; TypeError naming what is missing or unknown."""
        if len(kw) == len(self.params):
            try:
                return self._pick(kw)
            except KeyError:
                pass
        missing = [p for p in self.params if p not in kw]
        unknown = [k for k in kw if k not in self.params]
        raise TypeError(f"kernel {self.name!r}: missing {missing}, unknown {unknown}; "
                        f"allowed: {', '.join(self.params)}")

    def __call__(self, **kw: Any) -> Any:
        if len(kw) != len(self.params):
            return self.impl(*self.args(kw))  # raises the TypeError naming what is wrong
        try:
            args = self._pick(kw)
        except KeyError:
            args = self.args(kw)
        return self.impl(*args)

    def run(self, which: str, **kw: Any) -> Any:
        """Run one implementation, "twin" or "compiled" (tests compare the two)."""
        fn = {"twin": self.twin, "compiled": self.compiled, "parallel": self.parallel}[which]
        if fn is None:
            raise RuntimeError(f"kernel {self.name!r} has no {which} implementation "
                               f"(numba off, or one thread)")
        if which == "parallel":
            with _PARALLEL_LOCK:
                return fn(*self.args(kw))
        return fn(*self.args(kw))

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, {'compiled' if self.compiled is not None else 'twin'})"


class ParallelKernel(Kernel):
    """A kernel with a multi-threaded build, run when the argument `split` has at least
    `min_items` items (below that, starting the threads costs more than they save)."""

    def __init__(self, name: str, twin: Callable, compiled: "Callable | None", parallel: "Callable | None",
                 split: str, min_items: int) -> None:
        super().__init__(name, twin, compiled)
        if split not in self.params:
            raise TypeError(f"kernel {name!r}: split={split!r} is not an argument; allowed: {', '.join(self.params)}")
        self.parallel = parallel if self.compiled is not None else None
        self.split = self.params.index(split)
        self.min_items = int(min_items)

    def __call__(self, **kw: Any) -> Any:
        if len(kw) != len(self.params):
            return self.impl(*self.args(kw))
        try:
            args = self._pick(kw)
        except KeyError:
            args = self.args(kw)
        if self.parallel is not None and len(args[self.split]) >= self.min_items:
            with _PARALLEL_LOCK:
                return self.parallel(*args)
        return self.impl(*args)


KERNELS: dict[str, Kernel] = {}


def register(name: str, twin: Callable, compiled: "Callable | None" = None, *,
             parallel: "Callable | None" = None, split: "str | None" = None,
             min_items: int = 20_000) -> Kernel:
    """Register a kernel (ValueError if the name is taken) and return it. `parallel`: its
    multi-threaded build (`jit(fn, parallel=True)`), used when the argument named `split` has at
    least `min_items` items; the one test of the registry checks it against the twin as well."""
    if name in KERNELS:
        raise ValueError(f"kernel {name!r} is already registered")
    if split is None and parallel is not None:
        raise TypeError(f"kernel {name!r}: a parallel build needs split=<the argument whose length decides>")
    if split is not None:
        k: Kernel = ParallelKernel(name, twin, compiled, parallel, split, min_items)
    else:
        k = Kernel(name, twin, compiled)
    KERNELS[name] = k
    return k


def call_parallel(fn: Callable, *args: Any) -> Any:
    """Call a parallel build directly (from code that picks its own build), under the one lock."""
    with _PARALLEL_LOCK:
        return fn(*args)


__all__ = ["Kernel", "ParallelKernel", "KERNELS", "register", "jit", "call_parallel", "prange", "USE_NUMBA", "THREADS",
           "affine_u128"]
