"""Benchmark of the market step: array API and PettingZoo dict API, 100 to 100,000 agents.

    python -m channelmarket.eval.bench_env            # full table (about a minute)
    python -m channelmarket.eval.bench_env --quick    # seconds

Scenarios are `energy_10k` rescaled to each size (mean degree 10, so E ~ 5 N channel slots).
Prints median ms per step, steps/s and agent-steps/s of each face, and the exponent of a
log-log fit of array-API time against N over the sizes >= 1,000.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from channelmarket.envs.channel_market import ChannelMarketEnv
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import PRESETS

TARGETS = {"array_10k_ms": 5.0, "dict_10k_ms": 25.0, "exponent": 1.1}


def time_array(n: int, steps: int, seed: int = 0) -> tuple[float, int]:
    sc = PRESETS["energy_10k"].with_agents(n)
    core = MarketCore(sc.replace(episode_steps=10_000_000))
    core.reset(seed)
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1, 1, (16, n, 4))
    for i in range(5):
        core.step(acts[i % 16])
    times = np.empty(steps)
    for i in range(steps):
        t = time.perf_counter()
        core.step(acts[i % 16])
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e3), sc.n_channels


def time_dict(n: int, steps: int, seed: int = 0) -> float:
    sc = PRESETS["energy_10k"].with_agents(n)
    env = ChannelMarketEnv(sc.replace(episode_steps=10_000_000))
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    batches = [dict(zip(env.agents, rng.uniform(-1, 1, (n, 4)).astype(np.float32))) for _ in range(4)]
    for i in range(3):
        env.step(batches[i % 4])
    times = np.empty(steps)
    for i in range(steps):
        t = time.perf_counter()
        env.step(batches[i % 4])
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e3)


def fit_exponent(ns, ms) -> float:
    """Slope of log(time) against log(N)."""
    return float(np.polyfit(np.log(ns), np.log(ms), 1)[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    p.add_argument("--steps", type=int, default=60, help="timed steps per size (fewer at 100k)")
    p.add_argument("--quick", action="store_true", help="sizes 100 and 1,000 and few steps")
    p.add_argument("--no-dict", action="store_true", help="skip the dict API")
    args = p.parse_args(argv)
    sizes = [100, 1_000] if args.quick else args.sizes
    steps = 10 if args.quick else args.steps

    print(f"channelmarket step benchmark  ({platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, numpy {np.__version__})")
    rows = []
    for n in sizes:
        k = max(5, steps // 4) if n >= 100_000 else steps
        arr_ms, e = time_array(n, k)
        dict_ms = float("nan") if args.no_dict else time_dict(n, max(5, k // 2))
        rows.append((n, e, arr_ms, dict_ms))
    print()
    print("| agents | channels | array API ms/step | array steps/s | agent-steps/s | dict API ms/step | dict steps/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, e, a, d in rows:
        print(f"| {n:,} | {e:,} | {a:.3f} | {1e3 / a:,.0f} | {n * 1e3 / a:,.0f} | {d:.3f} | {1e3 / d:,.0f} |")
    big = [(n, a) for n, _, a, _ in rows if n >= 1_000]
    if len(big) >= 2:
        expo = fit_exponent([b[0] for b in big], [b[1] for b in big])
        print(f"\nfitted scaling exponent (array API, N >= 1,000): {expo:.3f}  (target <= {TARGETS['exponent']})")
    for n, _, a, d in rows:
        if n == 10_000:
            print(f"10,000 agents: array {a:.2f} ms (target <= {TARGETS['array_10k_ms']}), "
                  f"dict {d:.2f} ms (target <= {TARGETS['dict_10k_ms']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
