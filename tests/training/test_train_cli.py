"""`channelmarket train` for the torch trainer: resume through the CLI, one-line errors with exit 2,
and (slow) a run killed with SIGKILL at random moments that still ends bit-identical."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorboard")

import yaml  # noqa: E402

from channelmarket.training.cli import main as train_main  # noqa: E402
from channelmarket.training.config import TrainConfig  # noqa: E402
from channelmarket.training.ippo import latest_checkpoint  # noqa: E402

TINY = ["--scenario", "energy_small", "--n-steps", "24", "--progress-bar", "off", "--n-epochs", "2",
        "--batch-size", "256"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "channelmarket.cli", "train", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_ippo_resume_through_the_cli(tmp_path):
    """Regression (issue 8, item 3): the trainer overwrote config.yaml with its own fields and the
    CLI's --resume rejected them (exit 2). config.yaml stays the TrainConfig; resolved.yaml has the rest."""
    out = tmp_path / "run"
    assert train_main(["--algo", "ippo", *TINY, "--total-steps", "336", "--checkpoint-every", "168",
                       "--out", str(out)]) == 0
    TrainConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text()))     # the user's config, whole
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    assert resolved["algorithm"] == "ippo" and resolved["ippo"]["total_steps"] == 48
    r = cli("--out", str(out), "--resume", "--total-steps", "672", "--progress-bar", "off")   # the real command
    assert r.returncode == 0, r.stderr
    assert "ippo: 672 agent-steps = 96 market steps" in r.stdout
    assert latest_checkpoint(out).name == "ckpt_96.manifest.json"


def test_mappo_resume_through_main(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(["--algo", "mappo", *TINY, "--total-steps", "336", "--out", str(out)]) == 0
    assert train_main(["--out", str(out), "--resume", "--total-steps", "672", "--progress-bar", "off"]) == 0
    assert yaml.safe_load((out / "resolved.yaml").read_text())["algorithm"] == "mappo"
    assert latest_checkpoint(out).name == "ckpt_96.manifest.json"


def _bad_yaml(tmp_path: Path) -> str:
    p = tmp_path / "bad.yaml"
    p.write_text("algo: ippo\nlearners: [solar\n")
    return str(p)


def _unknown_key(tmp_path: Path) -> str:
    p = tmp_path / "extra.yaml"
    p.write_text("algo: ippo\ntotal_step: 10\n")
    return str(p)


@pytest.mark.parametrize("args, says", [
    (["--algo", "ippo", "--scenario", "energy_nowhere"], "config.scenario = 'energy_nowhere'"),
    (["--algo", "ippo", "--scenario", "missing.yaml"], "no such scenario file"),
    (["--algo", "ippo", "--background", "risk_factr"], "unknown background policy"),
    (["--algo", "ppo", "--background", "risk_factr"], "unknown background policy"),
    (["--config", "does/not/exist.yaml"], "does not exist"),
    ("bad_yaml", "is not valid YAML at line"),
    ("unknown_key", "unknown config key(s) total_step"),
    (["--algo", "ippo", "--learning-rate", "-1"], "config.learning_rate = -1.0"),
    (["--algo", "ippo", "--gamma", "2"], "config.gamma = 2.0"),
    (["--algo", "ippo", "--learners", "coal"], "coal"),
    (["--algo", "ippo", "--net-arch", "64,0"], "config.net_arch"),
    (["--algo", "dqn"], "invalid choice: 'dqn'"),
    (["--total-steps", "lots"], "--total-steps"),
    (["--shocks", "maybe"], "expected on/off"),
])
def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys, args, says):
    if args == "bad_yaml":
        args = ["--config", _bad_yaml(tmp_path)]
    elif args == "unknown_key":
        args = ["--config", _unknown_key(tmp_path)]
    try:
        rc = train_main([*args, "--out", str(tmp_path / "run"), "--progress-bar", "off"])
    except SystemExit as exc:      # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert says in lines[0] and lines[0].startswith("channelmarket train: ")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_error_in_a_subprocess_has_no_traceback(tmp_path):
    r = cli("--algo", "ippo", "--scenario", "energy_nowhere", "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "presets:" in r.stderr


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_ends_bit_identical(tmp_path):
    """Soak (issue 8, items 4-5): `channelmarket train --algo ippo` killed with SIGKILL at random
    moments (mid-rollout, mid-checkpoint, at start-up) and resumed until it finishes ends with the
    uninterrupted run's actor, critic and optimizer, bit for bit, and TensorBoard keeps each point once."""
    args = ["--algo", "ippo", *TINY, "--total-steps", "1680", "--checkpoint-every", "168"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert train_main([*args, "--out", str(ref)]) == 0          # the uninterrupted run, in-process
    rng = random.Random(8)
    kills, rc, resumed_at = 0, None, []
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    while rc != 0:
        first = not run.exists()
        cmd = [sys.executable, "-m", "channelmarket.cli", "train", *args, "--out", str(run)] + ([] if first else ["--resume"])
        log = tmp_path / f"session{kills}.log"
        with open(log, "w") as fout:
            p = subprocess.Popen(cmd, stdout=fout, stderr=subprocess.STDOUT, text=True, env=env)
            # kill at a random moment after start-up (import times vary with the machine's load); after the
            # first kill, only once a checkpoint exists, so a loaded machine still tests a resume
            while kills < 3 and p.poll() is None and ("market steps" not in log.read_text() or
                                                      (kills >= 1 and not any(run.rglob("*.manifest.json")))):
                time.sleep(0.02)
            # until some session has resumed, a session started after a kill is killed right after a
            # checkpoint exists: a fast machine otherwise finishes the whole run inside the random window
            # and no session ever resumes
            if kills >= 3:
                window = 120
            elif kills >= 1 and not resumed_at:
                window = rng.uniform(0.0, 0.05)
            else:
                window = rng.uniform(0.0, 1.5)
            try:
                rc = p.wait(timeout=window)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                kills += 1
        resumed_at += [int(ln.rsplit(" ", 1)[1]) for ln in log.read_text().splitlines() if ln.startswith("resumed from")]
        assert rc in (0, None, -signal.SIGKILL), log.read_text()
    assert kills >= 1 and resumed_at, (kills, resumed_at)   # killed, and some session continued a checkpoint
    a = torch.load(str(latest_checkpoint(ref)).replace(".manifest.json", ".pt"), weights_only=True)
    b = torch.load(str(latest_checkpoint(run)).replace(".manifest.json", ".pt"), weights_only=True)
    for part in ("actor", "critic"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for k, st in a["optimizer"]["state"].items():
        for name, v in st.items():
            assert torch.equal(v, b["optimizer"]["state"][k][name])
    ma = torch.load(ref / "ippo_model.pt", weights_only=True)
    mb = torch.load(run / "ippo_model.pt", weights_only=True)
    assert ma["obs_rms"] == mb["obs_rms"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = []
    for d in (ref, run):
        ea = EventAccumulator(str(d), size_guidance={"scalars": 0})
        ea.Reload()
        steps.append([e.step for e in ea.Scalars("losses/policy_loss")])
    assert steps[0] == steps[1]
