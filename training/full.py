"""The full training (a script, not a test): PPO with the tuned hyperparameters on the default
scenario, then the learned-vs-risk-factor table on 20 held-out seeds, saved next to the model.

    python -m channelmarket.training.full --out runs/full            # 1M agent-steps: ~1 min training on 2 idle cores
    python -m channelmarket.training.full --out runs/full --resume   # continue after an interruption
    python -m channelmarket.training.full --out runs/split --roles split
    tensorboard --logdir runs

Writes, besides the run folder of `channelmarket train`: table.txt (the printed table) and
table.json (every row with its per-seed differences' mean and 95% interval).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..envs.files import atomic_write_text
from .config import TrainConfig

# The hyperparameters that worked (see the README section "Training"): PPO, one shared policy,
# half of every kind learning among risk-factor agents, per-agent reward scaling + VecNormalize.
TUNED = dict(
    scenario="energy_default", learners="all", learner_share=0.5, background="risk_factor", roles="shared",
    shocks=True, shock_rate=0.02, n_markets=2, reward_scale="agent", algo="ppo", total_steps=1_000_000,
    normalize_obs=True, normalize_reward=True, learning_rate=3e-4, gamma=0.95, n_steps=96, batch_size=2048,
    n_epochs=5, gae_lambda=0.9, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, log_std_init=-0.5,
    net_arch=[64, 64], checkpoint_every=100_000,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m channelmarket.training.full", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/full")
    p.add_argument("--total-steps", type=int, default=TUNED["total_steps"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--roles", choices=("shared", "split"), default="shared")
    p.add_argument("--seeds", type=int, default=20, help="held-out evaluation seeds (10_000, 10_001, ...)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--progress-bar", choices=("on", "off"), default="on")
    args = p.parse_args(argv)

    from .evaluate import compare_to_baseline
    from .sb3_train import train

    cfg = TrainConfig(**dict(TUNED, total_steps=args.total_steps, seed=args.seed, roles=args.roles,
                             role_phase_steps=100_000, progress_bar=args.progress_bar == "on"))
    out = Path(args.out)
    t0 = time.perf_counter()
    result = train(cfg, out, resume=args.resume)
    t1 = time.perf_counter()
    print(f"trained {result['num_timesteps']:,} agent-steps in {t1 - t0:.0f} s")
    table = compare_to_baseline(out / "model.zip", cfg.scenario, seeds=range(10_000, 10_000 + args.seeds),
                                baseline=cfg.background)
    text = str(table)
    print(text)
    print(f"(evaluated in {time.perf_counter() - t1:.0f} s)")
    atomic_write_text(out / "table.txt", text + "\n")
    atomic_write_text(out / "table.json", json.dumps(table.to_dict(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
