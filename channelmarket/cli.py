"""`channelmarket` command line: demo, train, eval, dashboard, bench, compile, supply-chain."""

from __future__ import annotations

import sys

USAGE = """usage: channelmarket {demo,train,eval,dashboard,bench,compile,supply-chain} [options]
  demo    train a policy against the risk-factor baseline for a few minutes, then print the
          learned-vs-baseline table (--market-only: the market with random actions, per-step stats)
  train   train learned pricing/bidding policies (PPO, SAC, TD3, IPPO/MAPPO; RLlib: --backend rllib); 'channelmarket train -h'
  eval    tournaments of policy populations over scenarios, mechanisms, shocks and seeds, with a
          Markdown report, plots and a tidy CSV; 'channelmarket eval -h'
  dashboard  the live market dashboard in a browser (a local web server); 'channelmarket dashboard -h'
  bench   time the array and dict APIs (python -m channelmarket.eval.bench_env)
  compile build every numba kernel into numba's on-disk cache now, not in the first market of each sort
  supply-chain experiment {1,2,3,4,5,risk-sweep,stability}
          the MASER supply-chain economy (supply_chain_v0): the paper's experiments, plots and tables"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        from .demo import main as demo

        return demo(rest)
    if cmd == "train":
        try:
            from .training.cli import main as train
        except ImportError as exc:
            print(f"channelmarket train needs the train extra (pip install 'channelmarket[train]'): {exc}",
                  file=sys.stderr)
            return 2
        return train(rest)
    if cmd == "bench":
        from .eval.bench_env import main as bench

        return bench(rest)
    if cmd == "compile":
        from .compile_kernels import main as compile_kernels

        return compile_kernels(rest)
    if cmd == "dashboard":
        from .eval.dashboard.server import main as dashboard

        return dashboard(rest)
    if cmd == "eval":
        from . import training  # noqa: F401  registers the training layer's best-response trainers into eval
        from .eval.cli import main as evaluate

        return evaluate(rest)
    if cmd == "supply-chain":
        from .eval.supply_chain.cli import main as supply_chain

        def trainer(*a, **kw):  # the stability study's trainer (training layer, imported on use)
            from .training.supply_chain import train_population

            return train_population(*a, **kw)

        return supply_chain(rest, trainer=trainer)
    print(f"channelmarket: unknown command {cmd!r}; run 'channelmarket --help'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
