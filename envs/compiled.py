"""One dispatch for compiled kernels: every numba kernel registered beside its NumPy twin.

A `Kernel` is a name, a NumPy (or plain Python) twin and, optionally, a compiled implementation
taking the same arguments in the same order. Callers pass keywords (`kernels.pay_trades(channel=...,
...)`); the kernel maps them onto the positional call numba needs (about a microsecond). Which
implementation runs is decided once, here, by the environment variable CHANNELMARKET_NUMBA
(`0` selects the twins everywhere, the ε-auction solver included) and by whether numba imports.
`KERNELS` lists them all, so one test checks each compiled kernel against its twin.

numba is imported only here (and only if enabled), so `envs` still imports with numpy alone.
"""

from __future__ import annotations

import inspect
import operator
import os
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


def jit(fn: Callable, inline: bool = False) -> "Callable | None":
    """`fn` compiled with the project's options (numba.njit, cached, no GIL), or None when the
    compiled kernels are off; plain Python in numba's subset. `inline=True`: inlined into the
    compiled callers (small rules called with functions as arguments: the compiled caller then
    holds no pointer to a Python object and can be cached)."""
    if _NUMBA is None:
        return None
    if inline:
        return _NUMBA.njit(cache=True, nogil=True, inline="always")(fn)
    return _NUMBA.njit(cache=True, nogil=True)(fn)


class Kernel:
    """A kernel: `twin(*args)` and, when numba is on, `compiled(*args)` giving the same result
    (to float round-off). Call it with keywords; `impl` is the implementation in use."""

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
        fn = self.twin if which == "twin" else self.compiled
        if fn is None:
            raise RuntimeError(f"kernel {self.name!r} has no compiled implementation (numba off)")
        return fn(*self.args(kw))

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, {'compiled' if self.compiled is not None else 'twin'})"


KERNELS: dict[str, Kernel] = {}


def register(name: str, twin: Callable, compiled: "Callable | None" = None) -> Kernel:
    """Register a kernel (ValueError if the name is taken) and return it."""
    if name in KERNELS:
        raise ValueError(f"kernel {name!r} is already registered")
    k = KERNELS[name] = Kernel(name, twin, compiled)
    return k


__all__ = ["Kernel", "KERNELS", "register", "jit", "USE_NUMBA"]
