"""`channelmarket demo`: train a pricing-and-bidding policy against the risk-factor baseline for a
few minutes, then print the learned-vs-baseline table on held-out seeds. TensorBoard logs go
to runs/demo-<time> (`tensorboard --logdir runs`).

`channelmarket demo --market-only` runs the old market printout instead: the default market with
random actions, a demand surge injected a third of the way in, and one line of market statistics per step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEMO_STEPS = 1_000_000   # agent-steps: ~1.5 min on an idle 2-core machine (the tuned full run, 20 seeds: training.full)
DEMO_SEEDS = 10


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="channelmarket demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--market-only", action="store_true",
                   help="only run the market with random actions and print per-step stats (no training)")
    p.add_argument("--scenario", default="energy_default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-steps", type=int, default=DEMO_STEPS, help="training agent-steps")
    p.add_argument("--eval-seeds", type=int, default=DEMO_SEEDS, help="held-out seeds of the evaluation")
    p.add_argument("--baseline", default="risk_factor", help="the background baseline trained and evaluated against")
    p.add_argument("--out", default=None, help="run folder (default runs/demo-<time>)")
    p.add_argument("--steps", type=int, default=48, help="--market-only: steps to run")
    p.add_argument("--shock", default="DEMAND_SURGE", help="--market-only: shock injected at a third of the run ('none' to skip)")
    p.add_argument("--shock-duration", type=int, default=8)
    args = p.parse_args(argv)
    if args.market_only:
        return market_only(args)
    return train_and_evaluate(args)


def train_and_evaluate(args: argparse.Namespace) -> int:
    try:
        from .training.config import TrainConfig
        from .training.evaluate import compare_to_baseline
        from .training.sb3_train import train
    except ImportError as exc:   # the train extra is missing
        print(f"channelmarket demo needs the train extra (pip install 'channelmarket[train]'): {exc}\n"
              "run 'channelmarket demo --market-only' for the market alone")
        return 2
    out = Path(args.out) if args.out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    cfg = TrainConfig(scenario=args.scenario, total_steps=args.total_steps, seed=args.seed,
                      background=args.baseline, checkpoint_every=max(args.total_steps // 4, 1))
    print(f"training PPO for {cfg.total_steps:,} agent-steps in {cfg.scenario}: half of every agent kind learns "
          f"(one shared policy), the rest is driven by {cfg.background}; run folder {out}")
    print(f"watch it live: tensorboard --logdir {out.parent}")
    t0 = time.perf_counter()
    train(cfg, out)
    t1 = time.perf_counter()
    print(f"trained in {t1 - t0:.0f} s; evaluating on {args.eval_seeds} held-out seeds ...")
    table = compare_to_baseline(out / "model.zip", args.scenario, seeds=range(10_000, 10_000 + args.eval_seeds),
                                baseline=args.baseline)
    print()
    print(table)
    print(f"\n(evaluated in {time.perf_counter() - t1:.0f} s; 'better' = the learned policy is better and the "
          "95% interval excludes 0)")
    print(f"model: {out / 'model.zip'}  (channelmarket.policies.learned.load)   TensorBoard: tensorboard --logdir {out.parent}")
    return 0


def market_only(args: argparse.Namespace) -> int:
    from .envs import channel_market_v0

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
