"""Benchmark of batched markets: one `MarketCore(scenario, n_markets=M)` against M cores in a loop,
and end-to-end training throughput (IPPO in torch, SB3 PPO) before (one core per market) and after
(one batched core), side by side in one run.

    python -m channelmarket.eval.bench_batch            # the table (a few minutes)
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
import tempfile
import time

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


def _ippo(name: str, m: int, batched: bool, rollouts: int, rollout_steps: int) -> float:
    import torch

    from channelmarket.training import ippo
    from channelmarket.training.ippo_config import IPPOConfig
    from channelmarket.training.markets import Markets

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


def _sb3(name: str, m: int, batched: bool, rollouts: int, n_steps: int) -> float:
    import torch
    from stable_baselines3 import PPO

    from channelmarket.training.vec_env import MarketVecEnv

    torch.set_num_threads(1)
    venv = MarketVecEnv(name, learners="all", background=None, n_markets=m, seed=0, batched=batched)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=4096, n_epochs=4, verbose=0, seed=0, device="cpu")
    model.learn(venv.num_envs * n_steps)   # warm-up rollout + update
    t, c = time.perf_counter(), time.process_time()
    model.learn(venv.num_envs * n_steps * rollouts, reset_num_timesteps=False)
    return _rates(venv.num_envs * n_steps * rollouts, t, c)


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
    p.add_argument("--no-train", action="store_true", help="skip the training benchmarks")
    p.add_argument("--train-only", action="store_true", help="only the training benchmarks")
    a = p.parse_args(argv)
    q = a.quick
    steps = 3 if q else 10
    m_default, m_small = (16, 64) if q else (256, 1024)
    print(f"# batched markets benchmark  ({platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}; best of {a.repeats} interleaved runs)")
    print(f"{'agent-steps per second':52s} {'wall':>14s} {'CPU':>14s}")
    out = {}
    if a.train_only:
        return _train(a, q, out)
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
    for k, v in out.items():
        print(_row(k, v))
    if not a.no_train:
        _train(a, q, out)
    if not q:
        print(f"targets: 256 x energy_default >= {TARGETS['batched_256_default']:,} agent-steps/s and >= "
              f"{TARGETS['speedup_256_default']:g}x the loop; IPPO batched >= {TARGETS['ippo_batched_default']:,}")
    return out


def _train(a, q: bool, out: dict) -> dict:
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


if __name__ == "__main__":
    main()
