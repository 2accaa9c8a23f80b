"""Any run can write a recording (issue 13, item 2): `channelmarket eval --record N` and the training
evaluation (`compare_to_baseline(record=...)`), and every recording replays."""

from __future__ import annotations

import numpy as np

from channelmarket.envs.recording import read_recording
from channelmarket.eval.cli import main as eval_main
from channelmarket.eval.outputs import read_manifest
from channelmarket.eval.tournament import prepare_tournament

ARGS = ["--scenario", "energy_small", "--seeds", "0-1", "--policies", "truthful,risk_factor", "--workers", "1",
        "--optimum", "off", "--equilibrium", "off", "--no-plots", "--no-progress", "--no-parquet"]


def test_eval_records_the_first_episodes_and_they_replay(tmp_path):
    out = tmp_path / "ev"
    assert eval_main([*ARGS, "--out", str(out), "--record", "3"]) == 0
    files = sorted((out / "recordings").glob("*.jsonl.gz"))
    assert len(files) == 3
    assert "recordings" in read_manifest(out)["outputs"]
    header, frames = read_recording(files[0])
    assert len(frames) == 24 + 1                    # the reset frame and one per step
    assert [f["summary"]["t"] for f in frames] == list(range(25))
    # a rerun with --overwrite replaces them (and only them); without --record none are left
    (out / "recordings" / "mine.txt").write_text("keep")
    assert eval_main([*ARGS, "--out", str(out), "--overwrite"]) == 0
    assert not list((out / "recordings").glob("*.jsonl.gz"))
    assert (out / "recordings" / "mine.txt").read_text() == "keep"


def test_recording_does_not_change_results():
    a = prepare_tournament(["truthful"], ["energy_small"], "0-1", optimum=False, equilibrium=False).run(progress=False)
    b = prepare_tournament(["truthful"], ["energy_small"], "0-1", optimum=False, equilibrium=False).record(2) \
        .run(progress=False)
    assert len(b.recordings) == 2 and not a.recordings
    assert repr(a.rows) == repr(b.rows)   # (repr: rows hold NaN where a metric is undefined)


def test_bad_record_count_is_refused(capsys):
    assert eval_main([*ARGS, "--out", "unused", "--record", "-1"]) == 2
    assert "record" in capsys.readouterr().err


def test_training_evaluation_records_its_first_episode(tmp_path):
    from channelmarket.policies.simple import Truthful
    from channelmarket.training.evaluate import compare_to_baseline

    path = tmp_path / "ep.jsonl.gz"
    table = compare_to_baseline(Truthful(), "energy_small", seeds=[3, 4], learners="sellers", record=path)
    assert table.rows
    _, frames = read_recording(path)
    assert len(frames) == 25 and np.isfinite([f["summary"]["clearing_price"] for f in frames]).all()
