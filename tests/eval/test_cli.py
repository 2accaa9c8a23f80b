"""`channelmarket eval`: clear errors for bad values, a tiny run end to end, the dispatch from the
package CLI and `python -m channelmarket.eval`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from channelmarket.eval.cli import main

BASE = ["--scenario", "energy_small", "--seeds", "0-1", "--no-progress", "--workers", "1"]


@pytest.mark.parametrize("args, words", [
    (["--policies", "truthful,nope"], ["unknown policy 'nope'", "truthful", "risk_factor", "mean_field"]),
    (["--scenario", "nope"], ["unknown scenario 'nope'", "energy_small", "energy_default"]),
    (["--substrates", "arena"], ["unknown substrate 'arena'", "sellers_vs_risk_factor", "unseen_shocks"]),
    (["--mechanisms", "barter"], ["unknown mechanism 'barter'", "bilateral", "double_auction"]),
    (["--shocks", "METEOR@3:2"], ["shock setting 'METEOR@3:2'", "DEMAND_SURGE", "random"]),
    (["--seeds", "x"], ["seeds 'x'", "0-9"]),
    (["--focal", "solar"], ["--focal and --background go together"]),
    (["--focal", "fusion", "--background", "truthful"], ["unknown agent kind 'fusion'", "solar", "sellers"]),
    (["--focal", "solar", "--background", "nope"], ["unknown policy 'nope'"]),
    (["--policies", "runs/none/model.zip"], ["'runs/none/model.zip': no trained model"]),
    (["--reference", "ghost"], ["--reference 'ghost'", "truthful"]),
])
def test_errors_name_the_value_and_the_allowed(args, words, tmp_path, capsys):
    rc = main(BASE + ["--policies", "truthful"] + args + ["--out", str(tmp_path)])   # later flags win
    err = capsys.readouterr().err
    assert rc == 2
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "episodes.csv").exists()


def test_unloadable_model_is_named(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"PK not a model")
    assert main(BASE + ["--policies", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"policy '{bad}': cannot load the trained model" in err


def test_tiny_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = BASE + ["--policies", "truthful,random", "--optimum", "off", "--no-plots", "--focal", "sellers",
                   "--background", "risk_factor", "--homogeneous", "--out", str(out)]
    assert main(argv) == 0
    for f in ("episodes.csv", "steps.csv", "exploitability.csv", "manifest.json", "report.md"):
        assert (out / f).exists(), f
    m = json.loads((out / "manifest.json").read_text())
    assert m["command"].startswith("channelmarket eval --scenario energy_small --seeds 0-1")
    assert [p["name"] for p in m["populations"]] == [
        "truthful", "random", "truthful in solar+wind+storage_vs_risk_factor",
        "random in solar+wind+storage_vs_risk_factor"]
    assert m["optimum"] is False
    report = (out / "report.md").read_bytes()
    assert main(["--report-only", str(out), "--no-plots"]) == 0
    assert (out / "report.md").read_bytes() == report
    assert "rows from" in capsys.readouterr().out


def test_dispatch_from_package_cli(capsys):
    from channelmarket.cli import main as top

    assert top(["eval", "--list"]) == 0
    out = capsys.readouterr().out
    assert "substrates:" in out and "mixed_background" in out and "KIND@STEP:DURATION" in out


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "channelmarket.eval", "--list"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "policies:" in r.stdout
