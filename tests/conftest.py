"""The test run builds and checks the multi-threaded kernel builds: two threads unless the caller
chose (the package's default is one thread, which leaves them unbuilt). Set before anything imports
`channelmarket.envs.compiled`, which reads it once.

`make test` runs the suite in two pytest-xdist workers (`-n 2 --dist worksteal`; a module fixture may
be built in each worker, so tests write only under tmp_path). Both workers step the same markets first,
so on a fresh clone (numba's on-disk cache empty) they would compile the same kernels at the same
time, each for itself. `_one_compile_per_kernel` makes a worker that is about to compile a kernel
wait while another worker compiles it, then load the other's build from the on-disk cache: each
kernel is compiled once per run instead of once per worker. Nothing changes in a run without xdist."""

from __future__ import annotations

import os

os.environ.setdefault("CHANNELMARKET_THREADS", "2")


def pytest_configure(config) -> None:
    if hasattr(config, "workerinput"):   # an xdist worker; its basetemp is <the run's basetemp>/<worker>
        base = config.option.basetemp
        if base:
            folder = os.path.join(os.path.dirname(str(base)), "numba-locks")
        else:
            import tempfile

            folder = os.path.join(tempfile.gettempdir(), f"channelmarket-numba-locks-{config.workerinput['testrunuid']}")
        _one_compile_per_kernel(folder)


def _one_compile_per_kernel(folder: str) -> None:
    """In an xdist worker: numba's `Dispatcher.compile` holds a lock file per kernel (shared by the
    run's workers) around numba's own compile, whose first step is loading the build from the
    on-disk cache, so the worker that waited loads the build the other one saved. The locks are
    taken inside numba's in-process compiler lock (one compiling thread per process) and in the
    order of the call graph (a kernel's compile takes the locks of the kernels it calls), so no two
    workers wait for each other. Test-only: the package never takes these locks."""
    if os.environ.get("CHANNELMARKET_NUMBA", "1") == "0":
        return
    try:
        import fcntl
        import hashlib

        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.dispatcher import Dispatcher
    except ImportError:   # no numba (the twins run) or no fcntl (not POSIX): nothing to share
        return
    os.makedirs(folder, exist_ok=True)
    compile_ = Dispatcher.compile
    held: dict[str, int] = {}   # kernel -> depth of this process's compiles of it (a recursive kernel)

    def compile(self, sig):
        fn = self.py_func
        key = hashlib.sha1(f"{fn.__module__}:{fn.__qualname__}".encode()).hexdigest()
        with global_compiler_lock:
            if held.get(key):
                held[key] += 1
                try:
                    return compile_(self, sig)
                finally:
                    held[key] -= 1
            with open(os.path.join(folder, key), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                held[key] = 1
                try:
                    return compile_(self, sig)
                finally:
                    held[key] = 0
                    fcntl.flock(lock, fcntl.LOCK_UN)

    Dispatcher.compile = compile
