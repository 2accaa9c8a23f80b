"""Soak: `channelmarket train` (PPO, tiny) is SIGKILLed at random moments and resumed until done;
the final parameters equal an uninterrupted run's bit for bit, and every resume starts from a
checkpoint whose files match their manifest (never a 0-byte or torn file)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

from channelmarket.envs import get_scenario
from channelmarket.training.checkpoints import latest_valid, list_checkpoints

pytestmark = pytest.mark.slow

ROLLOUT = 7 * 16
TOTAL = 16 * ROLLOUT


def argv(scenario: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "channelmarket.training", "--scenario", str(scenario), "--out", str(out),
            "--progress-bar", "off", "--n-markets", "1", "--n-steps", "16", "--batch-size", "48", "--n-epochs", "2",
            "--seed", "5", "--total-steps", str(TOTAL), "--checkpoint-every", str(ROLLOUT), "--resume"]


def newest(out: Path) -> int:
    found = list_checkpoints(out / "checkpoints")
    return found[-1][0] if found else -1


def params(run: Path) -> dict:
    with zipfile.ZipFile(run / "model.zip") as z:
        return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)


def test_kill_and_resume_until_done_matches_uninterrupted(tmp_path):
    sc = tmp_path / "tiny.yaml"
    get_scenario("energy_small", episode_steps=16, name="tiny", shock_rate=0.05).save(sc)
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    ref = tmp_path / "ref"
    from channelmarket.training.cli import main as train_main

    assert train_main(argv(sc, ref)[3:]) == 0   # the uninterrupted reference, in this process

    out = tmp_path / "run"
    rng = np.random.default_rng(2026)
    kills = 0
    resumed_from = []
    for attempt in range(8):
        before = latest_valid(out / "checkpoints", say=lambda msg: None)
        if before is not None:   # what a resume may start from: every listed file intact, none empty
            assert all(p.stat().st_size > 0 for p in before.files.values())
        if kills < 3:
            proc = subprocess.Popen(argv(sc, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            start = newest(out)
            t0 = time.monotonic()
            while proc.poll() is None and newest(out) == start and time.monotonic() - t0 < 60:
                time.sleep(0.02)   # wait until this run has written a checkpoint (imports are slow) ...
            time.sleep(float(rng.uniform(0.0, 1.0)))   # ... then kill it at a random moment
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            text = proc.communicate(timeout=60)[0].decode()
        else:
            done = subprocess.run(argv(sc, out), capture_output=True, env=env, timeout=120)
            text = done.stdout.decode() + done.stderr.decode()
            assert done.returncode == 0, text[-2000:]
        m = re.search(r"checkpoint (ckpt_\d+\.manifest\.json) at", text)
        if m:   # the resume started from the newest verified checkpoint
            assert before is not None and m.group(1) == before.manifest.name
            resumed_from.append(before.step)
        if (out / "model.zip").exists() and kills >= 3:
            break
    assert kills >= 1 and resumed_from and (out / "model.zip").exists()
    a, b = params(ref), params(out)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0
