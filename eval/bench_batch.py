"""Benchmark of batched markets: one `MarketCore(scenario, n_markets=M)` against M cores in a loop.
End-to-end training throughput before and after batching (IPPO, SB3 PPO) is added by
`channelmarket.training.bench_batch` (training sits above eval), which `make bench` runs.

    python -m channelmarket.eval.bench_batch            # the env table (a few minutes)
    python -m channelmarket.eval.bench_batch --quick    # seconds, small sizes

Every number is agent-steps per second (one agent acting in one market step), twice: per wall
second, and per CPU second of this process (`time.process_time`, all its threads), which is what
one core delivers when nothing else runs on it. The two sides of a comparison run interleaved,
`--repeats` times, and the best run of each is reported (the machine may be shared: the best of
interleaved runs is the least disturbed estimate).
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from typing import Any

import numpy as np

from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import get_scenario

TARGETS = {"batched_256_default": 3_000_000, "speedup_256_default": 10.0, "ippo_batched_default": 500_000}


def _env_batched(name: str, m: int, steps: int, seed: int = 0) -> float:
    sc = get_scenario(name, episode_steps=10_000_000)
    core = MarketCore(sc, n_markets=m)
    core.reset(seed=seed)
    acts = np.random.default_rng(seed).uniform(-1, 1, (4, core.n_agents, 4))
    for i in range(3):
        core.step(acts[i % 4])
    t, c = time.perf_counter(), time.process_time()
    for i in range(steps):
        core.step(acts[i % 4])
    return _rates(core.n_agents * steps, t, c)


def _rates(n: int, t: float, c: float) -> tuple[float, float]:
    """(per wall second, per CPU second) since wall time `t` and CPU time `c`."""
    return n / (time.perf_counter() - t), n / max(time.process_time() - c, 1e-9)


def _env_loop(name: str, m: int, steps: int, seed: int = 0) -> float:
    sc = get_scenario(name, episode_steps=10_000_000)
    cores = [MarketCore(sc) for _ in range(m)]
    for i, c in enumerate(cores):
        c.reset(seed=seed + i)
    n = sc.n_agents
    acts = np.random.default_rng(seed).uniform(-1, 1, (4, n, 4))
    for c in cores:
        c.step(acts[0])
    t, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        for c in cores:
            c.step(acts[i % 4])
    return _rates(m * n * steps, t, cpu)


def batched_vs_loop(name: str, m: int, steps: int, repeats: int = 1, seed: int = 0) -> dict:
    """Random actions in `m` markets of `name`: one batched core vs `m` cores stepped in a loop.
    Returns {"batched": (wall, CPU) agent-steps/s, "loop": (wall, CPU), "speedup": wall ratio}."""
    best = _best_interleaved({
        "batched": functools.partial(_env_batched, name, m, steps, seed),
        "loop": functools.partial(_env_loop, name, m, steps, seed),
    }, repeats)
    return {**best, "speedup": best["batched"][0] / best["loop"][0]}


def _best_interleaved(fns: dict, repeats: int) -> dict:
    """{name: (best wall rate, best CPU rate)} over `repeats` interleaved runs of every function."""
    best = {k: (0.0, 0.0) for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            w, c = f()
            best[k] = (max(best[k][0], w), max(best[k][1], c))
    return best


def _row(name: str, v) -> str:
    if isinstance(v, tuple):
        return f"{name:52s} {v[0]:14,.0f} {v[1]:14,.0f}"
    return f"{name:52s} {v:14,.1f}x"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, seconds")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    return run(a)


def run(a: argparse.Namespace, train: Any = None) -> dict:
    """The env rows (and, given `train(a, quick, out)`, the training rows after them)."""
    q = a.quick
    steps = 3 if q else 10
    m_default, m_small = (16, 64) if q else (256, 1024)
    print(f"# batched markets benchmark  ({platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}; best of {a.repeats} interleaved runs)")
    print(f"{'agent-steps per second':52s} {'wall':>14s} {'CPU':>14s}")
    out: dict = {}
    if getattr(a, "train_only", False):
        return train(a, q, out)
    env = _best_interleaved({
        "batched": functools.partial(_env_batched, "energy_default", m_default, steps),
        "loop": functools.partial(_env_loop, "energy_default", m_default, steps),
    }, a.repeats)
    out[f"env {m_default} x energy_default batched"] = env["batched"]
    out[f"env {m_default} x energy_default loop of cores"] = env["loop"]
    out[f"env {m_default} x energy_default speedup (wall)"] = env["batched"][0] / env["loop"][0]
    small = _best_interleaved({
        "batched": functools.partial(_env_batched, "energy_small", m_small, steps),
        "loop": functools.partial(_env_loop, "energy_small", m_small, max(1, steps // 2)),
    }, a.repeats)
    out[f"env {m_small} x energy_small batched"] = small["batched"]
    out[f"env {m_small} x energy_small loop of cores"] = small["loop"]
    out[f"env {m_small} x energy_small speedup (wall)"] = small["batched"][0] / small["loop"][0]
    m_light = 8 if q else 256   # the Lightning market (routes, fees, rebalancing, splicing, accounts)
    light = _best_interleaved({
        "batched": functools.partial(_env_batched, "energy_lightning", m_light, steps),
        "loop": functools.partial(_env_loop, "energy_lightning", m_light, max(1, steps // 2)),
    }, a.repeats)
    out[f"env {m_light} x energy_lightning batched"] = light["batched"]
    out[f"env {m_light} x energy_lightning loop of cores"] = light["loop"]
    out[f"env {m_light} x energy_lightning speedup (wall)"] = light["batched"][0] / light["loop"][0]
    for k, v in out.items():
        print(_row(k, v))
    n_light = get_scenario("energy_lightning").n_agents * m_light
    print(f"step time {m_light} x energy_lightning batched: {1e3 * n_light / light['batched'][0]:.1f} ms wall, "
          f"{1e3 * n_light / light['batched'][1]:.1f} ms CPU")
    if train is not None and not getattr(a, "no_train", False):
        train(a, q, out)
    if not q:
        print(f"targets: 256 x energy_default >= {TARGETS['batched_256_default']:,} agent-steps/s and >= "
              f"{TARGETS['speedup_256_default']:g}x the loop; IPPO batched >= {TARGETS['ippo_batched_default']:,}")
    return out


if __name__ == "__main__":
    main()
