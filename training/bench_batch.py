"""`make bench`'s batched-markets benchmark with training: the env rows of
`channelmarket.eval.bench_batch`, then end-to-end training throughput (IPPO in torch, SB3 PPO)
before (one core per market) and after (one batched core), side by side in one run.

    python -m channelmarket.training.bench_batch             # env and training (several minutes)
    python -m channelmarket.training.bench_batch --quick     # seconds, small sizes
    python -m channelmarket.training.bench_batch --train-only
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time

from ..eval.bench_batch import _best_interleaved, _rates, _row, run


def _ippo(name: str, m: int, batched: bool, rollouts: int, rollout_steps: int) -> tuple[float, float]:
    """IPPO (every agent learns) on m markets, one core per market or batched: (wall, CPU) rates."""
    from . import ippo
    from .ippo_config import IPPOConfig
    from .markets import Markets

    cfg = IPPOConfig(scenario=name, n_markets=m, background=None, rollout_steps=rollout_steps, seed=0,
                     total_steps=10**12, progress=False, torch_threads=1)
    orig = ippo.Markets
    ippo.Markets = functools.partial(Markets, batched=batched)
    try:
        with tempfile.TemporaryDirectory() as d:
            tr = ippo.IPPOTrainer(cfg, d)
            tr.update(tr.collect(rollout_steps))   # warm-up
            t, c = time.perf_counter(), time.process_time()
            for _ in range(rollouts):
                tr.update(tr.collect(rollout_steps))
            return _rates(tr.M * rollout_steps * rollouts, t, c)
    finally:
        ippo.Markets = orig


def _sb3(name: str, m: int, batched: bool, rollouts: int, n_steps: int) -> tuple[float, float]:
    """SB3 PPO over `MarketVecEnv` (every agent learns), one core per market or batched."""
    import torch
    from stable_baselines3 import PPO

    from .vec_env import MarketVecEnv

    torch.set_num_threads(1)
    venv = MarketVecEnv(name, learners="all", background=None, n_markets=m, seed=0, batched=batched)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=4096, n_epochs=4, verbose=0, seed=0, device="cpu")
    model.learn(venv.num_envs * n_steps)   # warm-up rollout + update
    t, c = time.perf_counter(), time.process_time()
    model.learn(venv.num_envs * n_steps * rollouts, reset_num_timesteps=False)
    return _rates(venv.num_envs * n_steps * rollouts, t, c)


def train_rows(a, q: bool, out: dict) -> dict:
    """End-to-end training throughput, one core per market against one batched core."""
    m_tr, m_big, t_tr, r_tr = (4, 8, 24, 1) if q else (64, 256, 96, 1)
    tr = _best_interleaved({
        "ippo before": functools.partial(_ippo, "energy_default", m_tr, False, r_tr, t_tr),
        "ippo after": functools.partial(_ippo, "energy_default", m_tr, True, r_tr, t_tr),
        "ippo after big": functools.partial(_ippo, "energy_default", m_big, True, r_tr, t_tr),
    }, max(1, a.repeats - 1))
    m_sb, n_sb = (4, 24) if q else (32, 96)
    sb = _best_interleaved({
        "sb3 before": functools.partial(_sb3, "energy_default", m_sb, False, 1, n_sb),
        "sb3 after": functools.partial(_sb3, "energy_default", m_sb, True, 1, n_sb),
    }, max(1, a.repeats - 1))
    rows = {f"IPPO {m_tr} x energy_default, one core per market": tr["ippo before"],
            f"IPPO {m_tr} x energy_default, batched": tr["ippo after"],
            f"IPPO {m_big} x energy_default, batched": tr["ippo after big"],
            f"SB3 PPO {m_sb} x energy_default, one core per market": sb["sb3 before"],
            f"SB3 PPO {m_sb} x energy_default, batched": sb["sb3 after"]}
    for k, v in rows.items():
        print(_row(k, v))
    out.update(rows)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, seconds")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-train", action="store_true", help="skip the training benchmarks")
    p.add_argument("--train-only", action="store_true", help="only the training benchmarks")
    return run(p.parse_args(argv), train_rows)


if __name__ == "__main__":
    main()
