"""Benchmark of the live dashboard's server side: EXECUTE (market build, reset, population bind) and
one live step (policies act, market step, frame, JSON message) at 100 to 10,000 agents.

    python -m channelmarket.eval.dashboard.bench              # energy_default, energy_1k, energy_10k
    python -m channelmarket.eval.dashboard.bench --steps 5    # fewer steps per size

The browser's side is a D3 redraw of at most `max_nodes` agents whatever the market size.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from ..populations import baseline_names
from .protocol import Options
from .session import Session

SIZES = ("energy_default", "energy_1k", "energy_10k")


def bench(scenario: str, population: str, steps: int) -> dict[str, float]:
    s = Session(Options((scenario,), tuple(baseline_names()), (), scenario, population))
    t = time.perf_counter()
    s._build(scenario, population, steps + 1, 0)
    build = time.perf_counter() - t
    step, encode, size = [], [], []
    for _ in range(steps):
        t = time.perf_counter()
        s._advance()
        step.append(time.perf_counter() - t)
        t = time.perf_counter()
        text = json.dumps(s._frame_message(), separators=(",", ":"), allow_nan=False)
        encode.append(time.perf_counter() - t)
        size.append(len(text))
    f = s.frame
    return {"agents": f["n_agents"], "channels": f["channels"]["total"], "nodes": len(f["nodes"]["id"]),
            "drawn": len(f["channels"]["u"]), "build_s": build, "step_ms": 1e3 * float(np.median(step)),
            "encode_ms": 1e3 * float(np.median(encode)), "kb": float(np.median(size)) / 1e3}


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--population", default="risk_factor")
    ap.add_argument("--scenarios", default=",".join(SIZES))
    args = ap.parse_args(argv)
    print(f"# dashboard server, population {args.population}, {platform.machine()} {platform.python_version()}")
    print("| scenario | agents | open channels | agents shown | channels shown | EXECUTE s | step + frame ms (median) "
          "| JSON ms | message KB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc in args.scenarios.split(","):
        r = bench(sc, args.population, args.steps)
        print(f"| {sc} | {r['agents']:,} | {r['channels']:,} | {r['nodes']} | {r['drawn']:,} | {r['build_s']:.2f} | "
              f"{r['step_ms']:.1f} | {r['encode_ms']:.2f} | {r['kb']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
