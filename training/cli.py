"""`channelmarket train` / `python -m channelmarket.training`: train a learned policy.

    channelmarket train --scenario energy_default --total-steps 300000 --out runs/ppo
    channelmarket train --out runs/ppo --resume --total-steps 600000     # continue to 600k
    channelmarket train --config my.yaml --algo sac --learners sellers --roles shared
    tensorboard --logdir runs
    channelmarket train --backend rllib --policies kind --env-runners 2 --out runs/rllib   # RLlib PPO
    channelmarket train --backend rllib --address auto ...                                 # on a Ray cluster

Flags override the `--config` file, which overrides the defaults (`TrainConfig`). With `--resume`
the run folder's own `config.yaml` is the base instead of the defaults. `--total-steps` counts
agent-steps (one per learning agent per market step) for every algorithm; for ippo/mappo it is
converted to the torch trainer's market steps (`config.ippo_config`; the settings only the torch
trainer has are the config file's `ippo:` block).

`--backend rllib` trains with RLlib (`training.rllib`, the `rllib` extra): the config is an
`RLlibConfig`; the common flags map onto it (--scenario, --total-steps, --seed, --learning-rate,
--gamma, --n-steps as the rollout fragment, --batch-size as the minibatch, --n-epochs, --ent-coef,
--net-arch, --checkpoint-every in iterations), flags only the native trainers have are an error,
and --policies, --env-runners, --envs-per-runner, --markets-per-env, --train-batch-size, --address are RLlib's own.
`--resume` on an RLlib run folder picks the backend from its config.yaml.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from .config import ALGOS, ROLES, TrainConfig


def _bool(s: str) -> bool:
    v = str(s).strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{s!r}: expected on/off")


def _int(s: str) -> int:
    return int(float(s.replace("_", "")))   # 1e6 and 1_000_000 both work


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (what is wrong, what to do) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see '{self.prog} -h'\n")


def fail(message: str) -> int:
    """Print one line on stderr and return the CLI's usage-error exit code."""
    print(f"channelmarket train: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    docs = TrainConfig.field_help()
    p = _Parser(prog="channelmarket train", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--out", default=None, help="run folder: config.yaml, checkpoints/, model.zip, tb/ (default runs/<algo>)")
    a("--config", default=None, help="YAML file of TrainConfig fields; flags override it")
    a("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    a("--scenario", help=docs["scenario"])
    a("--total-steps", type=_int, help=docs["total_steps"])
    a("--seed", type=int, help=docs["seed"])
    a("--algo", choices=ALGOS, help=docs["algo"])
    a("--learners", help=docs["learners"])
    a("--learner-share", type=float, help=docs["learner_share"])
    a("--roles", choices=ROLES, help=docs["roles"])
    a("--role-phase-steps", type=_int, help=docs["role_phase_steps"])
    a("--background", help=docs["background"])
    a("--shocks", type=_bool, metavar="on|off", help=docs["shocks"])
    a("--shock-rate", type=float, help=docs["shock_rate"])
    a("--partner-action", type=_bool, metavar="on|off", help=docs["partner_action"])
    a("--n-markets", type=int, help=docs["n_markets"])
    a("--device", help=docs["device"])
    a("--checkpoint-every", type=_int, help=docs["checkpoint_every"])
    a("--progress-bar", type=_bool, metavar="on|off", help=docs["progress_bar"])
    a("--verbose", type=int, help=docs["verbose"])
    a("--learning-rate", type=float, help=docs["learning_rate"])
    a("--gamma", type=float, help=docs["gamma"])
    a("--n-steps", type=int, help=docs["n_steps"])
    a("--batch-size", type=int, help=docs["batch_size"])
    a("--n-epochs", type=int, help=docs["n_epochs"])
    a("--ent-coef", type=float, help=docs["ent_coef"])
    a("--net-arch", help=docs["net_arch"] + " (e.g. 64,64)")
    a("--reward-scale", choices=("agent", "eur"), help=docs["reward_scale"])
    a("--normalize-obs", type=_bool, metavar="on|off", help=docs["normalize_obs"])
    a("--normalize-reward", type=_bool, metavar="on|off", help=docs["normalize_reward"])
    a("--backend", choices=("native", "rllib"), default=None,
      help="native: SB3 (ppo, sac, td3) or the torch IPPO/MAPPO trainer; rllib: RLlib PPO (the rllib extra)")
    r = p.add_argument_group("RLlib (--backend rllib)").add_argument
    r("--policies", choices=("shared", "kind", "role"), help="modules by the env's agent_kinds: one shared, one per kind, "
      "or one per role (pricing: sellers, bidding: buyers)")
    r("--env-runners", type=int, help="Ray env runners stepping markets in parallel (0: the driver samples)")
    r("--envs-per-runner", type=int, help="envs each env runner steps side by side")
    r("--markets-per-env", type=int, help="markets in each env, stepped as one batch (1: the PettingZoo face)")
    r("--train-batch-size", type=_int, help="agent-steps per training iteration")
    r("--address", help="Ray cluster to join ('auto' after `ray start --head`, or ray://host:10001)")
    a("--eval-seeds", type=int, default=0,
      help="after training, compare to the background baseline on this many held-out seeds and print the table "
           "(the first episode is recorded to <out>/eval_episode.jsonl.gz for `channelmarket dashboard --replay`)")
    return p


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    """The config a run uses: defaults (or the run's own config.yaml on --resume), then --config, then flags."""
    base: dict[str, Any] = {}
    out = Path(args.out) if args.out else None
    if args.resume and out is not None and (out / "config.yaml").exists():
        base.update(_read_yaml(out / "config.yaml", "the run's config.yaml"))
    if args.config:
        base.update(_read_yaml(Path(args.config), "--config"))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for k, v in vars(args).items():
        if k in names and v is not None:
            base[k] = v
    if isinstance(base.get("net_arch"), str):
        base["net_arch"] = [int(x) for x in base["net_arch"].replace("x", ",").split(",") if x.strip()]
    cfg = TrainConfig.from_dict(base)
    if out is None:
        out = Path("runs") / cfg.algo
    return cfg, out


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    """A mapping from a YAML file; ValueError saying which file and what is wrong with it."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} does not exist; give the path of a YAML file of "
                         "TrainConfig fields") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} file {str(path)!r} cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"{what} file {str(path)!r} is not valid YAML{where}: {problem}; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {str(path)!r} holds a {type(data).__name__}; expected a mapping of "
                         "TrainConfig fields")
    return data


def to_ippo_config(cfg: TrainConfig):
    """The torch trainer's `IPPOConfig` and learners per market (`config.ippo_config`)."""
    from .config import ippo_config

    return ippo_config(cfg)


# TrainConfig flag -> RLlibConfig field (--backend rllib); flags not listed are the native trainers' own
RLLIB_FLAGS = {"scenario": "scenario", "total_steps": "total_steps", "seed": "seed", "learning_rate": "lr",
               "gamma": "gamma", "n_steps": "rollout_fragment_length", "batch_size": "minibatch_size",
               "n_epochs": "num_epochs", "ent_coef": "entropy_coeff", "net_arch": "hidden_sizes",
               "checkpoint_every": "checkpoint_every", "policies": "policies", "env_runners": "env_runners",
               "envs_per_runner": "envs_per_runner",
               "markets_per_env": "markets_per_env", "train_batch_size": "train_batch_size", "address": "address"}
RLLIB_ONLY = ("policies", "env_runners", "envs_per_runner", "markets_per_env", "train_batch_size", "address")
_NOT_CONFIG = {"out", "config", "resume", "eval_seeds", "backend"}


def _run_backend(args: argparse.Namespace) -> str:
    """'rllib' when asked, or when --resume names an RLlib run folder; else 'native'."""
    if args.backend:
        return args.backend
    cfg = Path(args.out) / "config.yaml" if args.out else None
    if args.resume and cfg is not None and cfg.exists():
        try:
            if _read_yaml(cfg, "the run's config.yaml").get("backend") == "rllib":
                return "rllib"
        except ValueError:
            pass
    return "native"


def resolve_rllib_config(args: argparse.Namespace):
    """The `RLlibConfig` of an RLlib run: defaults (or the run's config.yaml on --resume), --config, flags."""
    from .rllib_config import RLlibConfig

    base: dict[str, Any] = {}
    out = Path(args.out) if args.out else Path("runs") / "rllib"
    if args.resume and (out / "config.yaml").exists():
        base.update(_read_yaml(out / "config.yaml", "the run's config.yaml"))
    if args.config:
        base.update(_read_yaml(Path(args.config), "--config"))
    given = {k: v for k, v in vars(args).items() if v is not None and k not in _NOT_CONFIG}
    if given.get("algo") not in (None, "ppo"):
        raise ValueError(f"--algo {given['algo']} with --backend rllib; allowed: ppo")
    given.pop("algo", None)
    unused = sorted(k for k in given if k not in RLLIB_FLAGS)
    if unused:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in unused)} not used by --backend rllib; "
                         f"its flags: {', '.join('--' + k.replace('_', '-') for k in RLLIB_FLAGS)}")
    for k, v in given.items():
        base[RLLIB_FLAGS[k]] = v
    if isinstance(base.get("hidden_sizes"), str):
        base["hidden_sizes"] = [int(x) for x in base["hidden_sizes"].replace("x", ",").split(",") if x.strip()]
    return RLlibConfig.from_dict(base), out


def rllib_main(args: argparse.Namespace) -> int:
    """`channelmarket train --backend rllib`: train (or resume) an RLlib run, print where it went."""
    try:
        cfg, out = resolve_rllib_config(args)
    except (ValueError, TypeError) as exc:
        return fail(exc)
    try:
        from .rllib import RLlibTrainer
    except ImportError as exc:
        return fail(f"--backend rllib needs Ray RLlib ({exc}); pip install 'channelmarket[rllib]'")
    try:
        trainer = RLlibTrainer(cfg, out, resume=args.resume)
    except (ValueError, TypeError) as exc:
        return fail(exc)
    try:
        if trainer.resumed_from:
            print(f"resumed from {trainer.resumed_from} at iteration {trainer.algo.iteration} "
                  f"({trainer.agent_steps} agent-steps)")
        elif args.resume:
            print(f"no intact checkpoint in {out / 'checkpoints'}; starting a new run")
        s = trainer.run()
    finally:
        trainer.stop()
    if s:
        print(f"rllib ppo ({cfg.policies} policies, {cfg.env_runners} env runners, {cfg.markets_per_env} markets per env): iteration {s['iteration']}, "
              f"{s['agent_steps']} agent-steps, {s['agent_steps_per_s']:.0f} agent-steps/s, "
              f"{s['sample_agent_steps_per_s_per_runner']:.0f} sampled per runner per s")
    print(f"trained rllib into {out}: checkpoints {out / 'checkpoints'}, policy {out / 'rllib_policy.json'} "
          f"(channelmarket eval --policies {out}); TensorBoard: tensorboard --logdir {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if _run_backend(args) == "rllib":
        return rllib_main(args)
    given = [k for k in RLLIB_ONLY if getattr(args, k) is not None]
    if given:
        return fail(f"{', '.join('--' + k.replace('_', '-') for k in given)} need --backend rllib")
    try:
        cfg, out = resolve_config(args)
    except (ValueError, TypeError) as exc:
        return fail(exc)
    if cfg.algo in ("ippo", "mappo"):
        try:
            from .ippo import IPPOTrainer
        except ImportError as exc:
            return fail(f"--algo {cfg.algo} needs torch and tensorboard ({exc}); pip install 'channelmarket[train]'")
        try:
            icfg, per_market = to_ippo_config(cfg)
            trainer = IPPOTrainer(icfg, out, resume=args.resume, run_config=cfg.to_dict())
        except (ValueError, TypeError, FileNotFoundError) as exc:
            return fail(exc)
        print(f"{cfg.algo}: {cfg.total_steps} agent-steps = {icfg.total_steps} market steps "
              f"({per_market} learners per market)")
        if trainer.resumed_from:
            print(f"resumed from {trainer.resumed_from} at market step {trainer.global_step}")
        trainer.run()
    else:
        from .sb3_train import train

        try:
            train(cfg, out, resume=args.resume)
        except (FileExistsError, ValueError, TypeError) as exc:  # e.g. a checkpoint that does not fit the config
            return fail(exc)
    print(f"trained {cfg.algo} into {out}: model {out / ('ippo_model.pt' if cfg.algo in ('ippo', 'mappo') else 'model.zip')}"
          f"; TensorBoard: tensorboard --logdir {out}")
    if args.eval_seeds > 0:
        from .evaluate import compare_to_baseline

        model = out / ("ippo_model.pt" if cfg.algo in ("ippo", "mappo") else "model.zip")
        table = compare_to_baseline(model, scenario=cfg.scenario, seeds=range(10_000, 10_000 + args.eval_seeds),
                                    baseline=cfg.background, learners=cfg.learners, learner_share=cfg.learner_share,
                                    record=out / "eval_episode.jsonl.gz",
                                    **({"partner_action": True} if cfg.partner_action else {}))
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
