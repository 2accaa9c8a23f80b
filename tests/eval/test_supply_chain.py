"""The supply-chain experiments: files written, reproducible, folders checked, the CLI entry."""

from __future__ import annotations

import json

import pytest

from channelmarket.cli import main as cli_main
from channelmarket.eval.outputs import OutputError
from channelmarket.eval.supply_chain.experiments import run


def test_experiment_writes_its_plots_table_and_manifest_reproducibly(tmp_path):
    a = run("1", tmp_path / "a", seed=3, quick=True)
    run("1", tmp_path / "b", seed=3, quick=True)
    assert set(a["outputs"]) == {"prices.png", "positions.png", "summary.csv", "summary.md", "manifest.json"}
    assert (tmp_path / "a" / "summary.csv").read_bytes() == (tmp_path / "b" / "summary.csv").read_bytes()
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["experiment"] == "1" and m["seed"] == 3
    with pytest.raises(OutputError, match="overwrite"):
        run("1", tmp_path / "a", seed=3, quick=True)
    run("1", tmp_path / "a", seed=4, quick=True, overwrite=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        run("2", tmp_path / "c", quick=True)
    with pytest.raises(ValueError, match="allowed"):
        run("6", tmp_path / "d")


def test_key_agent_experiment_and_transactions(tmp_path):
    r4 = run("4", tmp_path / "e4", quick=True)
    assert r4["rows"][1]["mean_distance_to_moved_seller"] > r4["rows"][0]["mean_distance_to_moved_seller"]
    r5 = run("5", tmp_path / "e5", quick=True)
    assert sum(r["transactions_per_day"] for r in r5["rows"]) > 0
    assert (tmp_path / "e5" / "transactions.png").stat().st_size > 1000


@pytest.mark.slow
def test_cli_runs_the_stability_study_with_the_trainer(tmp_path, capsys):
    assert cli_main(["supply-chain", "experiment", "stability", "--quick", "--train-steps", "150",
                     "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "learned (stability)" in out and "risk-factor rules" in out
    assert cli_main(["supply-chain", "experiment", "3", "--quick", "--out", str(tmp_path / "s")]) == 2


def test_risk_sweep_options_fixed_r_and_bad_values(tmp_path, capsys):
    """--rs/--band/--runs/--days of the risk sweep (the long-horizon low-r study in the README)."""
    from channelmarket.eval.supply_chain.cli import main as sc_main

    assert sc_main(["experiment", "risk-sweep", "--out", str(tmp_path / "a"), "--rs", "0.02,0.5", "--band", "0",
                    "--runs", "1", "--days", "12"]) == 0
    text = (tmp_path / "a" / "summary.md").read_text()
    assert "r-0.0, r+0.0" in text and "0.02" in text and "survivors_sd" in text
    for bad in (["--band", "0.7"], ["--runs", "0"], ["--days", "0"], ["--rs", "0.2,x"], ["--rs", "1.5"]):
        assert sc_main(["experiment", "risk-sweep", "--out", str(tmp_path / "b"), "--days", "5"] + bad) == 2
        assert "risk" in capsys.readouterr().err
