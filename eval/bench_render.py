"""Benchmark of the dashboard frame: observer frame, first draw (with the per-episode spring
layout) and later draws, 100 to 10,000 agents; and the size of a recorded step.

    python -m channelmarket.eval.bench_render            # 100, 1,000, 10,000 agents
    python -m channelmarket.eval.bench_render --quick    # 100 and 10,000, fewer draws

Exits 1 when a later draw at any size takes a second or more (the generous bound the tests
leave to this script: frames must draw well under a second).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time

import numpy as np

from channelmarket.envs.core import MarketCore
from channelmarket.envs.dashboard import Dashboard
from channelmarket.envs.frames import Observer
from channelmarket.envs.scenario import PRESETS

BOUND_S = 1.0


def bench(n: int, draws: int, seed: int = 0) -> dict[str, float]:
    core = MarketCore(PRESETS["energy_10k"].with_agents(n))
    core.reset(seed)
    rng = np.random.default_rng(seed)
    obs, dash, hist = Observer(seed=seed), Dashboard(), [core.summary()]
    f = obs.frame(core)
    for _ in range(8):
        core.step(rng.uniform(-1, 1, (n, 4)))
        hist.append(core.summary())
    t = time.perf_counter()
    f = obs.frame(core)
    frame_ms = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    dash.draw(hist, f)
    first = time.perf_counter() - t
    times = []
    for _ in range(draws):
        core.step(rng.uniform(-1, 1, (n, 4)))
        hist.append(core.summary())
        f = obs.frame(core)
        t = time.perf_counter()
        dash.draw(hist, f)
        times.append(time.perf_counter() - t)
    line = json.dumps(f, separators=(",", ":")).encode()
    return {"agents": n, "channels": f["channels"]["total"], "drawn": len(f["channels"]["u"]),
            "frame_ms": frame_ms, "first_s": first, "draw_s": float(np.median(times)), "draw_max_s": max(times),
            "kb": len(line) / 1e3, "kb_gz": len(gzip.compress(line)) / 1e3}


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    sizes, draws = ((100, 10_000), 3) if args.quick else ((100, 1_000, 10_000), 8)
    print(f"# dashboard frame, {platform.machine()} {platform.python_version()}")
    print("| agents | open channels | drawn channels | frame ms | first draw s | draw s (median) | draw s (max) "
          "| recorded KB/step | gzip KB/step |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for n in sizes:
        r = bench(n, draws)
        worst = max(worst, r["draw_s"])
        print(f"| {n:,} | {r['channels']:,} | {r['drawn']:,} | {r['frame_ms']:.1f} | {r['first_s']:.3f} | "
              f"{r['draw_s']:.3f} | {r['draw_max_s']:.3f} | {r['kb']:.1f} | {r['kb_gz']:.1f} |")
    ok = worst < BOUND_S
    print(f"slowest median draw {worst:.3f} s (bound {BOUND_S} s): {'ok' if ok else 'TOO SLOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
