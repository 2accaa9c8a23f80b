"""`channelmarket supply-chain experiment {1,2,3,4,5,risk-sweep,stability}`: run one experiment of the
paper (or a future-work study), write its plots, summary table and manifest, print the table."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from ..outputs import OutputError
from .experiments import EXPERIMENTS, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="channelmarket supply-chain",
                                description="The MASER supply-chain economy (supply_chain_v0): the paper's experiments.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("experiment", help="run one experiment and write its plots and summary table")
    e.add_argument("name", choices=EXPERIMENTS, help="1-5: the paper's experiments; risk-sweep, stability: future work")
    e.add_argument("--out", default=None, help="output folder (default runs/supply_chain/<name>)")
    e.add_argument("--seed", type=int, default=0, help="base seed (the same seed writes the same files)")
    e.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    e.add_argument("--overwrite", action="store_true", help="replace an earlier experiment's files in --out")
    e.add_argument("--train-steps", type=int, default=None, help="stability: agent-steps of training per population")
    e.add_argument("--days", type=int, default=None, help="risk-sweep: days per run (default 300)")
    e.add_argument("--runs", type=int, default=None, help="risk-sweep: seeds per risk factor (default 6)")
    e.add_argument("--rs", default=None, help="risk-sweep: risk factors, comma-separated (default 0.05, 0.15, ..., 0.95)")
    e.add_argument("--band", type=float, default=0.05,
                   help="risk-sweep: each agent's r is drawn in [r - band, r + band] (default 0.05; 0: all at r)")
    return p


def main(argv: "list[str] | None" = None, trainer: "Callable[..., Any] | None" = None) -> int:
    args = parser().parse_args(argv)
    out = args.out or f"runs/supply_chain/{args.name}"
    kw: dict = {}
    if args.name == "stability":
        kw = {"trainer": trainer, "train_steps": args.train_steps}
    if args.name == "risk-sweep":
        kw = {"days": args.days, "seeds": args.runs, "band": args.band}
    try:
        if args.name == "risk-sweep" and args.rs:
            try:
                kw["rs"] = tuple(float(x) for x in args.rs.split(",") if x.strip())
            except ValueError:
                raise ValueError(f"--rs {args.rs!r}; allowed: risk factors in [0, 1], comma-separated") from None
        res = run(args.name, out, seed=args.seed, quick=args.quick, overwrite=args.overwrite, **kw)
    except (OutputError, ValueError) as exc:
        print(f"channelmarket supply-chain: {exc}", file=sys.stderr)
        return 2
    with open(f"{res['folder']}/summary.md", encoding="utf-8") as fh:
        print(fh.read())
    print(f"wrote {', '.join(res['outputs'])} to {res['folder']}")
    return 0


__all__ = ["main", "parser"]
