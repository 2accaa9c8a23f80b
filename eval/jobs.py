"""Running evaluation jobs: in this process or a spawn pool of single-threaded workers, with an
optional progress bar. A job is any picklable object with an `index` and a `run()` method.

The jobs layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report): it
consumes jobs (`eval.runs.EpisodeJob`, `eval.exploitability.ExploitJob`, built by
`eval.tournament` from checked settings) and produces their results in job order, whatever the
number of workers; it knows nothing of what a job does.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

# ---- running many jobs ----------------------------------------------------------------------------------

def _call(job: Any) -> tuple[int, Any]:
    """Pool worker: run a job (a top-level dataclass with a `run` method, so spawn can pickle it)."""
    return job.index, job.run()


def _init_worker() -> None:
    """Pool initializer: keep each worker on one thread, so the processes do not fight over the
    cores and results do not depend on thread counts. The pool starts with OMP_NUM_THREADS and
    friends at 1 (`run_jobs`), which numpy's BLAS, numba and torch read when they load; torch is
    not imported here (seconds per worker), only capped if something already imported it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def run_jobs(jobs: Sequence[Any], workers: int = 1, progress: bool = True, desc: str = "eval") -> list[Any]:
    """Run jobs (objects with `index` and `run()`), in a spawn pool when `workers` > 1; results in
    job order. A progress bar (tqdm) on stderr when `progress`."""
    results: dict[int, Any] = {}
    bar = _progress(len(jobs), progress, desc)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                i, r = _call(job)
                results[i] = r
                bar.update(1)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            saved = {k: os.environ.get(k) for k in _THREAD_VARS}
            for k in _THREAD_VARS:
                os.environ[k] = "1"
            try:
                pool = ctx.Pool(min(workers, len(jobs)), initializer=_init_worker)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            with pool:
                for i, r in pool.imap_unordered(_call, jobs, chunksize=1):
                    results[i] = r
                    bar.update(1)
    finally:
        bar.close()
    return [results[j.index] for j in jobs]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    try:
        import tqdm  # noqa: F401
    except ImportError:  # pragma: no cover - tqdm comes with the train extra
        return _NoBar()
    from .progress import progress_bar

    return progress_bar(total, desc=desc, unit="job", file=sys.stderr, dynamic_ncols=True)


__all__ = ["run_jobs"]
