"""`channelmarket eval`: run a tournament and write its tables, report and plots.

    channelmarket eval --scenario energy_default --seeds 0-9 \\
        --policies risk_factor,truthful,mean_field,runs/x/model.zip --out results/ \\
        [--shocks none,random,DEMAND_SURGE@30:8] [--mechanisms bilateral,double_auction] [--workers 2] \\
        [--focal solar,wind --background risk_factor] [--substrates sellers_vs_risk_factor,unseen_shocks] \\
        [--optimum off] [--exploitability cem]
    channelmarket eval --scenario maser_exp1,supply_chain_small --policies maser,risk_factor,eps_auction \
        --shocks none,move_key@40 --optimum off --equilibrium off --out results/   # the supply chain

Also `python -m channelmarket.eval ...`. `--list` prints the policies, substrates, scenarios,
mechanisms and shock settings it accepts; `--report-only DIR` rebuilds the report of a folder.

Every argument is checked before the tournament runs, and so is the output folder (new or empty,
or an earlier eval run with `--overwrite`; writable). Each error is one line on stderr saying what
is wrong and what to do, with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from ..envs.scenario import MECHANISMS
from .exploitability import METHODS, ExploitConfig
from .markets import MECHANISM as SUPPLY_CHAIN_MECHANISM
from .markets import SHOCK_FORMS as SUPPLY_CHAIN_SHOCK_FORMS
from .markets import runs_on
from .outputs import OutputError, prepare_folder, read_manifest
from .populations import (BUILTIN_POLICY, EQUILIBRIUM_POLICY, SUBSTRATES, baseline_names, check_policy,
                          focal_background, homogeneous, resolve_kinds, substrate)
from .seeds import MAX_SEEDS, parse_seeds
from .settings import SHOCK_FORMS, resolve_scenario, scenario_names
from .tournament import prepare_tournament

PROG = "channelmarket eval"
# flags that change where and how a run reports, not what it computes: left out of the recorded
# command, so the same tournament written to two folders gives the same manifest and report
_OUTPUT_FLAGS = {"--out": 1, "--overwrite": 0, "--no-progress": 0, "--workers": 1}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message}; see '{PROG} --help'")


def fail(message: str) -> NoReturn:
    """Print `message` as one line on stderr and exit with status 2."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def recorded_command(argv: list[str]) -> str:
    """The command as the manifest records it: `argv` without the output-only flags."""
    kept, skip = [], 0
    for tok in argv:
        if skip:
            skip -= 1
            continue
        name = tok.split("=", 1)[0]
        if name in _OUTPUT_FLAGS:
            skip = _OUTPUT_FLAGS[name] if "=" not in tok else 0
            continue
        kept.append(tok)
    return f"{PROG} " + shlex.join(kept)


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _on_off(text: str) -> bool:
    t = text.strip().lower()
    if t in ("on", "yes", "true", "1"):
        return True
    if t in ("off", "no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}; allowed: on, off")


def parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog=PROG, allow_abbrev=False,
        description="Tournament of policy populations over scenarios x shock settings x mechanisms x seeds: "
                    "a tidy CSV of per-episode, per-kind metrics, a Markdown report with 95% CIs and paired "
                    "differences, and PNG plots. Every file is written atomically; rerunning the same command "
                    "writes the same bytes (all but timing.json, the runtime).")
    ap.add_argument("--scenario", default="energy_default",
                    help="preset name(s) or .yaml/.json scenario file(s), comma-separated, of the energy market or "
                         "the supply chain (maser_exp1, ..., supply_chain_small) (default energy_default)")
    ap.add_argument("--seeds", default="0-9", help=f"seeds, e.g. '0-9' or '0,3,5-7', at most {MAX_SEEDS:,} per run, "
                                                   "each in [0, 2**63 - 1] (default 0-9)")
    ap.add_argument("--policies", default=None,
                    help="policies under test, comma-separated: baseline names (" + ", ".join(baseline_names(builtin=True))
                         + ") or trained model paths (model.zip, .pt, run folder); default: every baseline that "
                         f"runs on the scenarios ({BUILTIN_POLICY}: the supply chain's own agents, its scenarios only; "
                         f"{EQUILIBRIUM_POLICY}: energy only)")
    ap.add_argument("--out", help="output folder: new or empty (created); it must be writable, which is checked "
                                  "before the tournament runs")
    ap.add_argument("--overwrite", action="store_true",
                    help="let --out be a folder holding an earlier eval run: the files its manifest.json lists "
                         "are removed (after this run's tournament succeeded) and nothing else")
    ap.add_argument("--shocks", default="scenario",
                    help="shock settings, comma-separated: " + ", ".join(SHOCK_FORMS) + "; on the supply chain "
                         + ", ".join(SUPPLY_CHAIN_SHOCK_FORMS) + " (default scenario)")
    ap.add_argument("--mechanisms", default=None,
                    help="clearing mechanisms, comma-separated: " + ", ".join(MECHANISMS) + " (default: the scenario's; "
                         f"the supply chain has one, {SUPPLY_CHAIN_MECHANISM!r})")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes (default: min(2, CPUs)); results do not depend on it")
    ap.add_argument("--focal", default=None, help="focal agent kinds (e.g. solar,wind or sellers): each policy "
                                                  "drives these, --background the rest")
    ap.add_argument("--background", default=None,
                    help="background policy, or several comma-separated (a round-robin mix by agent index)")
    ap.add_argument("--substrates", default=None,
                    help="named focal/background substrates, comma-separated: " + ", ".join(SUBSTRATES))
    ap.add_argument("--homogeneous", action="store_true",
                    help="also run each policy alone (every agent); the default without --focal/--substrates")
    ap.add_argument("--reference", default=None, help="reference population for paired differences (default: first)")
    ap.add_argument("--optimum", type=_on_off, default=True, metavar="on|off",
                    help="per-step optimal welfare for efficiency (default on; off is faster)")
    ap.add_argument("--equilibrium", type=_on_off, default=True, metavar="on|off",
                    help="mean-field equilibrium price path for the deviation metrics (default on)")
    ap.add_argument("--exploitability", default="off", choices=("off",) + METHODS,
                    help="best-response search per population and kind on the first cell (default off); the "
                         "storage DP bound against the realized prices is always computed")
    ap.add_argument("--exploit-kinds", default="all", help="kinds that deviate (default all)")
    ap.add_argument("--exploit-train-seeds", default="1000000-1000001", help="seeds the search scores candidates on")
    ap.add_argument("--exploit-iterations", type=int, default=3, help="cem iterations (default 3)")
    ap.add_argument("--exploit-popsize", type=int, default=8, help="cem candidates per iteration (default 8)")
    ap.add_argument("--ippo-steps", type=int, default=20_000, help="ippo: market steps of training (default 20000)")
    ap.add_argument("--record", type=int, default=0, metavar="N",
                    help="also record the first N episodes (JSON lines, <out>/recordings/*.jsonl.gz) for "
                         "`channelmarket dashboard --replay`; default 0")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ap.add_argument("--no-parquet", action="store_true", help="CSV only, even when pyarrow is installed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--report-only", metavar="DIR", default=None,
                    help="rebuild report.md and the plots of DIR, an earlier --out folder")
    ap.add_argument("--trust-model", action="store_true",
                    help="allow loading model files that only unpickling can read (custom SB3 zips, old .pkl "
                         "statistics): unpickling can run code, so only for files you trust")
    ap.add_argument("--list", action="store_true", help="print what each option accepts and exit")
    return ap


def listing() -> str:
    lines = ["policies: " + ", ".join(baseline_names(builtin=True)) + ", or a trained model path (.zip, .pt, run folder)",
             "scenarios: " + ", ".join(scenario_names()) + ", or a .yaml/.json file",
             "mechanisms: " + ", ".join(MECHANISMS) + f"; supply chain: {SUPPLY_CHAIN_MECHANISM}",
             "shock settings: " + ", ".join(SHOCK_FORMS) + "; supply chain: " + ", ".join(SUPPLY_CHAIN_SHOCK_FORMS),
             "substrates:"]
    lines += [f"  {k}: {v['description']}" for k, v in SUBSTRATES.items()]
    return "\n".join(lines)


def build_populations(args: argparse.Namespace, scenarios: Sequence[str] = ()) -> list:
    """Population specs from the flags; ValueError naming a bad value and the allowed ones. Without
    --policies: every baseline that runs on one of `scenarios` at least."""
    if args.policies is None:
        cells = [resolve_scenario(s)[1] for s in scenarios]
        names = [p for p in baseline_names(builtin=True) if not cells or any(runs_on(homogeneous(p), sc) for sc in cells)]
        args.policies = ",".join(names)
    policies = [check_policy(p) for p in _split(args.policies)]
    if not policies:
        raise ValueError("--policies is empty; allowed: " + ", ".join(baseline_names(builtin=True)) + " or model paths")
    if bool(args.focal) != bool(args.background):
        raise ValueError("--focal and --background go together: the focal kinds run each policy, the rest the background")
    subs = _split(args.substrates)
    for s in subs:
        if s not in SUBSTRATES:
            raise ValueError(f"unknown substrate {s!r}; allowed: {', '.join(SUBSTRATES)}")
    pops = []
    if args.homogeneous or not (args.focal or subs):
        pops += [homogeneous(p) for p in policies]
    if args.focal:
        resolve_kinds(args.focal)   # validates the names
        bg = [check_policy(b) for b in _split(args.background)]
        pops += [focal_background(p, args.focal, bg) for p in policies]   # as asked: names show the kinds named
    for s in subs:
        pops += [substrate(s, p) for p in policies]
    if args.reference:
        names = [p.name for p in pops]
        if args.reference not in names:
            raise ValueError(f"--reference {args.reference!r} is not a population of this run; allowed: {', '.join(names)}")
        pops.sort(key=lambda p: p.name != args.reference)
    return pops


def main(argv: list[str] | None = None) -> int:
    """Run `channelmarket eval`; 0 on success, 2 (one line on stderr) on any bad argument or folder."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except SystemExit as exc:   # argparse's --help and errors, and `fail`
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2


def _main(argv: list[str]) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.list:
        print(listing())
        return 0
    from .report import write_report

    if args.report_only:
        try:
            path = write_report(args.report_only, plots=not args.no_plots)
        except OutputError as exc:
            fail(exc)
        except OSError as exc:
            fail(f"cannot write the report into {args.report_only!r} ({exc.strerror or exc}); check the folder")
        print(f"wrote {path}")
        return 0
    if not args.out:
        ap.error("--out DIR is required (a new or empty folder for the tables, report and plots)")
    try:
        pops = build_populations(args, _split(args.scenario))
        if args.trust_model:
            from .populations import TRUST_ENV, is_model_path

            specs = [p for p in _split(args.policies) + _split(args.background) if is_model_path(p)]
            os.environ[TRUST_ENV] = os.pathsep.join(str(Path(p).resolve()) for p in specs)
        seeds = parse_seeds(args.seeds)
        scenarios = _split(args.scenario)
        if not scenarios:
            raise ValueError("--scenario is empty; allowed: " + ", ".join(scenario_names()) + " or a .yaml/.json file")
        mechanisms = _split(args.mechanisms) or None
        shocks = _split(args.shocks) or ["scenario"]
        if args.workers < 1:
            raise ValueError(f"--workers {args.workers}; allowed: an integer >= 1")
        for flag in ("exploit_iterations", "exploit_popsize", "ippo_steps"):
            if getattr(args, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} {getattr(args, flag)}; allowed: an integer >= 1")
        exploit = None
        if args.exploitability != "off":
            exploit = ExploitConfig(method=args.exploitability, kinds=resolve_kinds(args.exploit_kinds),
                                    train_seeds=tuple(parse_seeds(args.exploit_train_seeds)),
                                    iterations=args.exploit_iterations, popsize=args.exploit_popsize,
                                    elite=min(3, args.exploit_popsize), ippo_steps=args.ippo_steps)
        plan = prepare_tournament(pops, scenarios, seeds, mechanisms, shocks, optimum=args.optimum,
                                  equilibrium=args.equilibrium, exploit=exploit, command=recorded_command(argv))
        plan.record(args.record)
        prepare_folder(args.out, overwrite=args.overwrite)     # before the run: a bad folder fails now
    except (ValueError, TypeError) as exc:
        fail(exc)
    res = plan.run(workers=args.workers, progress=not args.no_progress)
    try:
        res.write(args.out, parquet=not args.no_parquet, overwrite=args.overwrite)
        write_report(args.out, plots=not args.no_plots)
        names = read_manifest(args.out)["outputs"]
    except OutputError as exc:
        fail(exc)
    except OSError as exc:
        fail(f"cannot write the results into {args.out!r} ({exc.strerror or exc}); check the folder and rerun")
    t = res.timing
    print(f"{len(res.rows)} rows from {t['jobs']} jobs in {t['runtime_seconds']:.1f} s ({t['workers']} workers)")
    out = Path(args.out)
    for name in names:
        print(f"  {out / name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
