"""Benchmark of the market step: array API, PettingZoo dict API and the dict face's cost, 100 to 100,000 agents.

    python -m channelmarket.eval.bench_env            # full table (about a minute)
    python -m channelmarket.eval.bench_env --quick    # seconds

Scenarios are `energy_10k` rescaled to each size (mean degree 10, so E ~ 5 N channel slots),
random actions. The two faces step alternately in one process: each round times a block of array
steps (`MarketCore.step`) and then a block of dict steps (`ChannelMarketEnv.step`, default infos,
a fresh dict of fresh float32 row views per step, built before the block, as a policy's output
is), so both see the same machine load. Per face it prints the fastest and the median block in ms
per step, wall clock and CPU (`time.process_time`); the face's cost is the dict minus the array
time (fastest: fastest dict block minus fastest array block; median: median over the rounds of
each round's difference). The face's own time is also measured inside the dict steps: the dict
block's time minus the time its `core.step` calls took (no block-to-block noise of the market
step in it). On a shared VM the fastest block is the steadiest figure and the spread between
fastest and median says how noisy the run was; the load average is printed with it. Then steps/s,
agent-steps/s and the exponent of a log-log fit of the array API's median time against N over the
sizes >= 1,000.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import NamedTuple

import numpy as np

from channelmarket.envs.channel_market import ChannelMarketEnv
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import PRESETS

TARGETS = {"array_10k_ms": 5.0, "dict_10k_ms": 25.0, "exponent": 1.1}


class Spread(NamedTuple):
    """ms per step of one measure over the rounds: the fastest block and the median block."""

    fastest: float
    median: float

    @classmethod
    def of(cls, per_round) -> "Spread":
        x = np.asarray(per_round, dtype=np.float64)
        return cls(float(x.min()), float(np.median(x)))


class FaceTiming(NamedTuple):
    """One size's interleaved timing (every figure in ms per step)."""

    n: int
    channels: int
    array_wall: Spread
    array_cpu: Spread
    dict_wall: Spread
    dict_cpu: Spread
    face_wall: Spread   # dict - array
    face_cpu: Spread
    own_wall: Spread    # dict step minus the core.step inside it
    own_cpu: Spread


class _CoreClock:
    """Wraps a `MarketCore.step` and adds up the wall and CPU time spent in it."""

    def __init__(self, step) -> None:
        self.step, self.wall, self.cpu = step, 0.0, 0.0

    def __call__(self, actions):
        w, c = time.perf_counter(), time.process_time()
        try:
            return self.step(actions)
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def face_cost(array_ms, dict_ms) -> Spread:
    """The dict face's cost over the array API from per-round block times of both faces: fastest dict
    block minus fastest array block, and the median over the rounds of each round's difference."""
    a, d = np.asarray(array_ms, dtype=np.float64), np.asarray(dict_ms, dtype=np.float64)
    if a.shape != d.shape or a.size == 0:
        raise ValueError(f"face_cost needs one array and one dict time per round, got {a.shape} and {d.shape}")
    return Spread(float(d.min() - a.min()), float(np.median(d - a)))


def time_faces(n: int, rounds: int, block: int, seed: int = 0, with_dict: bool = True) -> FaceTiming:
    """Array and dict API at `n` agents, alternately, `rounds` blocks of `block` steps each."""
    sc = PRESETS["energy_10k"].with_agents(n).replace(episode_steps=10_000_000)
    core = MarketCore(sc)
    core.reset(seed)
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1, 1, (8, n, 4))
    env = clock = None
    if with_dict:
        env = ChannelMarketEnv(sc)
        env.reset(seed=seed)
        clock = env.core.step = _CoreClock(env.core.step)   # an instance attribute: the env calls it
    names = None if env is None else env.agents

    def dicts(start: int) -> list[dict]:   # fresh row views per step, built outside the timing
        return [dict(zip(names, acts[(start + i) % 8].astype(np.float32))) for i in range(block)]

    for i in range(3):   # warm-up (numba kernels compile or load on the first step)
        core.step(acts[i])
        if env is not None:
            env.step(dicts(i)[0])
    aw, ac, dw, dc, ow, oc = [], [], [], [], [], []
    for r in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        for i in range(block):
            core.step(acts[(r + i) % 8])
        aw.append((time.perf_counter() - w) * 1e3 / block)
        ac.append((time.process_time() - c) * 1e3 / block)
        if env is None:
            continue
        todo = dicts(r)
        clock.wall = clock.cpu = 0.0
        w, c = time.perf_counter(), time.process_time()
        for d in todo:
            env.step(d)
        w, c = time.perf_counter() - w, time.process_time() - c
        dw.append(w * 1e3 / block)
        dc.append(c * 1e3 / block)
        ow.append((w - clock.wall) * 1e3 / block)
        oc.append((c - clock.cpu) * 1e3 / block)
        del todo
    if env is None:
        nan = Spread(float("nan"), float("nan"))
        return FaceTiming(n, sc.n_channels, Spread.of(aw), Spread.of(ac), nan, nan, nan, nan, nan, nan)
    return FaceTiming(n, sc.n_channels, Spread.of(aw), Spread.of(ac), Spread.of(dw), Spread.of(dc),
                      face_cost(aw, dw), face_cost(ac, dc), Spread.of(ow), Spread.of(oc))


def fit_exponent(ns, ms) -> float:
    """Slope of log(time) against log(N)."""
    return float(np.polyfit(np.log(ns), np.log(ms), 1)[0])


def plan(n: int, steps: int) -> tuple[int, int]:
    """(rounds, steps per block) for `n` agents and about `steps` timed steps of each face."""
    if n >= 100_000:
        return max(3, steps // 12), 3
    block = 4 if n >= 10_000 else (8 if n >= 1_000 else 16)
    return max(3, steps // block), block


def _ms(s: Spread) -> str:
    return f"{s.fastest:.3f} / {s.median:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    p.add_argument("--steps", type=int, default=60, help="timed steps of each face per size (fewer at 100k)")
    p.add_argument("--quick", action="store_true", help="sizes 100 and 1,000 and few steps")
    p.add_argument("--no-dict", action="store_true", help="skip the dict API")
    args = p.parse_args(argv)
    sizes = [100, 1_000] if args.quick else args.sizes
    steps = 12 if args.quick else args.steps
    if steps < 1 or any(n < 1 for n in sizes):
        p.error(f"--steps and --sizes must be positive, got {steps} and {sizes}")

    print(f"channelmarket step benchmark  ({platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, numpy {np.__version__}, "
          f"CHANNELMARKET_THREADS={os.environ.get('CHANNELMARKET_THREADS', 'default')})")
    load0 = os.getloadavg()[0]
    rows = [time_faces(n, *plan(n, steps), with_dict=not args.no_dict) for n in sizes]
    print(f"load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
          "ms per step, fastest / median block, faces stepped alternately")
    print()
    print("wall clock:\n")
    print("| agents | channels | array API ms/step | dict API ms/step | dict - array | the face in the step "
          "| array agent-steps/s | dict steps/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in rows:
        print(f"| {t.n:,} | {t.channels:,} | {_ms(t.array_wall)} | {_ms(t.dict_wall)} | {_ms(t.face_wall)} | "
              f"{_ms(t.own_wall)} | {t.n * 1e3 / t.array_wall.median:,.0f} | {1e3 / t.dict_wall.median:,.0f} |")
    print("\nCPU time (time.process_time: every thread of the process):\n")
    print("| agents | array API ms/step | dict API ms/step | dict - array | the face in the step |")
    print("|---:|---:|---:|---:|---:|")
    for t in rows:
        print(f"| {t.n:,} | {_ms(t.array_cpu)} | {_ms(t.dict_cpu)} | {_ms(t.face_cpu)} | {_ms(t.own_cpu)} |")
    big = [t for t in rows if t.n >= 1_000]
    if len(big) >= 2:
        expo = fit_exponent([t.n for t in big], [t.array_wall.median for t in big])
        print(f"\nfitted scaling exponent (array API median, N >= 1,000): {expo:.3f}  (target <= {TARGETS['exponent']})")
    for t in rows:
        if t.n == 10_000:
            print(f"10,000 agents: array {_ms(t.array_wall)} ms (target <= {TARGETS['array_10k_ms']}), "
                  f"dict {_ms(t.dict_wall)} ms (target <= {TARGETS['dict_10k_ms']}), "
                  f"the dict face {_ms(t.face_wall)} ms over the array API, {_ms(t.own_wall)} ms "
                  "in its own steps (fastest / median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
