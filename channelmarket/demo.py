"""`channelmarket demo`: the default market run with random actions, a demand surge injected
mid-episode, and one line of market statistics per step."""

from __future__ import annotations

import argparse

import numpy as np

from .envs import channel_market_v0
from .envs.render import render_ansi


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="channelmarket demo", description=__doc__)
    p.add_argument("--scenario", default="energy_default")
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shock", default="DEMAND_SURGE", help="shock injected at a third of the run ('none' to skip)")
    p.add_argument("--shock-duration", type=int, default=8)
    args = p.parse_args(argv)

    env = channel_market_v0.parallel_env(scenario=args.scenario, render_mode="ansi")
    steps = min(args.steps, env.scenario.episode_steps)
    obs, _ = env.reset(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    space = env.action_space(env.agents[0])
    print(f"{env.metadata['name']}: scenario {env.scenario.name}, {len(env.agents)} agents, "
          f"{env.scenario.n_channels} channel slots, {steps} steps of {env.scenario.step_minutes:g} min, random actions")
    shock_at = steps // 3 if args.shock.lower() != "none" else -1
    prices = []
    for t in range(steps):
        if t == shock_at:
            env.inject_shock(args.shock, args.shock_duration)
            print(f"--- injecting {args.shock} for {args.shock_duration} steps ---")
        actions = dict(zip(env.agents, rng.uniform(space.low, space.high, (len(env.agents), space.shape[0])).astype(np.float32)))
        env.step(actions)
        print(env.render())
        prices.append((env.market_summary()["shock"] != "NONE", env.market_summary()["ref_price"]))
    shocked = [p for s, p in prices if s]
    calm = [p for s, p in prices if not s]
    if shocked and calm:
        print(f"\nmean reference price: {np.mean(calm):.2f} EUR/MWh without shock, "
              f"{np.mean(shocked):.2f} EUR/MWh during {args.shock}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
