"""The eval output folder and its files: capped seed lists, a new-or-empty folder (or --overwrite of an
earlier run, clearing only that run's listed files), a writability probe before the tournament,
byte-identical reruns, atomic writes, and one-line errors with exit 2 for every bad argument or folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs import files
from channelmarket.eval import outputs
from channelmarket.eval.cli import main, recorded_command
from channelmarket.eval.exploitability import ExploitConfig
from channelmarket.eval.outputs import OUTPUT_NAMES, OutputError, prepare_folder, read_manifest
from channelmarket.eval.report import write_report
from channelmarket.eval.seeds import MAX_SEEDS, check_seed, parse_seeds
from channelmarket.eval.tournament import TournamentPlan, run_tournament

TINY = ["--scenario", "energy_small", "--seeds", "0", "--policies", "truthful", "--optimum", "off",
        "--equilibrium", "off", "--no-progress", "--workers", "1"]


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of `channelmarket eval argv`."""
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_one_line_error(rc, err, *words):
    assert rc == 2, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("channelmarket eval: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture(scope="module")
def plotted_run(tmp_path_factory):
    """A tiny tournament written by the CLI with plots and Parquet."""
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("plotted") / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    return out


def listed(folder: Path) -> set[str]:
    return set(json.loads((folder / "manifest.json").read_text())["outputs"])


# ---- 1. seeds --------------------------------------------------------------------------------------------

def test_huge_seed_ranges_fail_at_once_without_memory():
    tracemalloc.start()
    try:
        for bad in ("0-1000000000", "0-5,10-99999999", range(10**12), (i for i in range(10**9))):
            with pytest.raises(ValueError, match="at most 100,000 per run"):
                parse_seeds(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000            # nothing near a list of a billion ints was built
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
    assert parse_seeds("0-9", max_seeds=10) == list(range(10))
    with pytest.raises(ValueError, match="11 seeds; allowed: at most 10 per run"):
        parse_seeds("0-10", max_seeds=10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30) | st.integers(0, 2**63 - 1), st.integers(0, 12) | st.integers(0, 2**40)),
                min_size=1, max_size=5),
       st.integers(1, 50))
def test_seed_text_is_expanded_or_rejected_by_its_count(ranges, cap):
    """Ranges "lo-hi" expand in order when they hold at most `cap` seeds, else fail without building them."""
    ranges = [(lo, min(lo + span, 2**63 - 1)) for lo, span in ranges]
    text = ",".join(f"{lo}-{hi}" for lo, hi in ranges)
    total = sum(hi - lo + 1 for lo, hi in ranges)
    expected = [s for lo, hi in ranges for s in range(lo, hi + 1)] if total <= cap else None
    if expected is None:
        with pytest.raises(ValueError, match=f"{total:,} seeds; allowed: at most {cap:,} per run"):
            parse_seeds(text, max_seeds=cap)
    elif len(set(expected)) < len(expected):
        with pytest.raises(ValueError, match="is repeated"):
            parse_seeds(text, max_seeds=cap)
    else:
        assert parse_seeds(text, max_seeds=cap) == expected


def test_seeds_take_numpy_integers_and_reject_other_types():
    assert parse_seeds(np.int64(7)) == [7]
    assert parse_seeds(np.array(3, dtype=np.uint32)) == [3]
    assert parse_seeds(np.arange(4, dtype=np.int32)) == [0, 1, 2, 3]
    assert parse_seeds([np.uint8(2), 5]) == [2, 5]
    assert all(type(s) is int for s in parse_seeds(np.arange(3)))
    for bad in (1.0, [1.5], [np.float64(2.0)], True, [True], None, ["3"]):
        with pytest.raises(TypeError, match="seed"):
            parse_seeds(bad)
    for bad in ([-1], "99999999999999999999", [2**63], "4-2", "1,2,1"):
        with pytest.raises(ValueError, match="seed"):
            parse_seeds(bad)
    assert check_seed(np.int16(5)) == 5


def test_exploit_config_takes_numpy_integers_and_checks_seeds():
    cfg = ExploitConfig(iterations=np.int64(2), popsize=np.int32(4), elite=np.int8(2),
                        train_seeds=np.array([10, 11]), seed=np.uint16(3))
    assert (cfg.iterations, cfg.popsize, cfg.elite, cfg.seed, cfg.train_seeds) == (2, 4, 2, 3, (10, 11))
    assert all(type(v) is int for v in (cfg.iterations, cfg.popsize, cfg.elite, cfg.seed) + cfg.train_seeds)
    with pytest.raises(TypeError, match="ExploitConfig.train_seeds"):
        ExploitConfig(train_seeds=[1.5])
    with pytest.raises(ValueError, match="ExploitConfig.train_seeds"):
        ExploitConfig(train_seeds="0-1000000000")
    with pytest.raises(ValueError, match="ExploitConfig.seed"):
        ExploitConfig(seed=-1)


def test_run_tournament_rejects_huge_seed_lists_before_running(monkeypatch):
    monkeypatch.setattr(TournamentPlan, "run", lambda *a, **k: pytest.fail("the tournament ran"))
    with pytest.raises(ValueError, match="at most 100,000 per run"):
        run_tournament(["truthful"], ["energy_small"], seeds=range(10**9), progress=False)


# ---- 7. every CLI error is one line, exit 2 ------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--seeds", "0-1000000000"], ["1,000,000,001 seeds", "at most 100,000"]),
    (["--seeds", "-3"], ["cannot read '-3'", "0-9"]),
    (["--seeds", "5-1"], ["runs backwards"]),
    (["--seeds", "99999999999999999999"], ["too large", "2**63 - 1"]),
    (["--scenario", "nope"], ["unknown scenario 'nope'", "energy_small"]),
    (["--policies", "nope"], ["unknown policy 'nope'", "truthful"]),
    (["--mechanisms", "barter"], ["unknown mechanism 'barter'", "double_auction"]),
    (["--shocks", "METEOR@3:2"], ["shock setting 'METEOR@3:2'", "DEMAND_SURGE"]),
    (["--workers", "0"], ["--workers 0", ">= 1"]),
    (["--workers", "two"], ["argument --workers: invalid int value: 'two'", "--help"]),
    (["--exploitability", "magic"], ["argument --exploitability: invalid choice", "--help"]),
    (["--exploitability", "cem", "--exploit-popsize", "0"], ["--exploit-popsize 0", ">= 1"]),
    (["--exploitability", "cem", "--exploit-train-seeds", "0-1000000000"], ["at most 100,000"]),
    (["--optimum", "maybe"], ["argument --optimum", "allowed: on, off"]),
    (["--no-such-flag"], ["unrecognized arguments: --no-such-flag", "--help"]),
])
def test_bad_arguments_are_one_line_errors(args, words, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = run_cli(TINY + args + ["--out", str(out)], capsys)
    assert_one_line_error(rc, err, *words)
    assert not out.exists()              # arguments are checked before the folder is touched


def test_missing_out_is_a_one_line_error(capsys):
    rc, _, err = run_cli(TINY, capsys)
    assert_one_line_error(rc, err, "--out DIR is required")


def test_malformed_yaml_scenario_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_solar: [1,\n")
    rc, _, err = run_cli(TINY + ["--scenario", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert_one_line_error(rc, err, f"scenario '{bad}'", "not valid YAML", "line 2")


def test_errors_through_the_command_line_have_no_traceback(tmp_path):
    for argv in (["--report-only", str(tmp_path / "missing")],
                 ["--seeds", "0-1000000000", "--out", str(tmp_path / "o")]):
        r = subprocess.run([sys.executable, "-m", "channelmarket", "eval"] + argv, capture_output=True, text=True,
                           timeout=120)
        assert_one_line_error(r.returncode, r.stderr)
        assert r.stdout == ""


# ---- 2. --report-only on a bad folder ----------------------------------------------------------------------

def test_report_only_on_a_missing_or_foreign_folder(tmp_path, capsys):
    rc, _, err = run_cli(["--report-only", str(tmp_path / "missing")], capsys)
    assert_one_line_error(rc, err, "does not exist", "--out folder of an earlier")
    (tmp_path / "notes.txt").write_text("mine")
    rc, _, err = run_cli(["--report-only", str(tmp_path)], capsys)
    assert_one_line_error(rc, err, "holds no manifest.json", "not a 'channelmarket eval' output folder")
    rc, _, err = run_cli(["--report-only", str(tmp_path / "notes.txt")], capsys)
    assert_one_line_error(rc, err, "is not a folder")
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_manifest(folder: Path, fn) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    fn(m)
    (folder / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("damage, words", [
    (lambda f: (f / "manifest.json").write_text("{ not json"), ["manifest.json' cannot be read", "rerun"]),
    (lambda f: (f / "manifest.json").write_bytes(b"\xff\xfe\x00"), ["cannot be read"]),
    (lambda f: (f / "manifest.json").write_text("[1, 2]"), ["(top level) is list"]),
    (lambda f: _edit_manifest(f, lambda m: m.pop("populations")), ["has no field 'populations'"]),
    (lambda f: _edit_manifest(f, lambda m: m.update(seeds=["0"])), ["seeds[0] is str"]),
    (lambda f: _edit_manifest(f, lambda m: m.update(seeds=[])), ["lists no seeds"]),
    (lambda f: _edit_manifest(f, lambda m: m["populations"][0].update(slots=[{"role": "focal"}])),
     ["populations[0].slots[0].policy"]),
    (lambda f: _edit_manifest(f, lambda m: m["populations"][0]["slots"][0].update(kinds=[1])),
     ["populations[0].slots[0].kinds[0] is int"]),
    (lambda f: _edit_manifest(f, lambda m: m["cells"][0].pop("mechanism")), ["cells[0].mechanism"]),
    (lambda f: _edit_manifest(f, lambda m: m.update(format=99)), ["format 99"]),
    (lambda f: _edit_manifest(f, lambda m: m.update(outputs=["../../victim"])), ["outputs[0] is '../../victim'"]),
    (lambda f: (f / "episodes.csv").unlink(), ["episodes.csv' is missing"]),
    (lambda f: (f / "steps.csv").write_text(""), ["steps.csv' is empty"]),
    (lambda f: (f / "episodes.csv").write_text("scenario,seed\nx,0\n"), ["has no column 'mechanism'"]),
    (lambda f: (f / "episodes.csv").write_text((f / "episodes.csv").read_text().replace(",truthful,", ",truthful",
                                                                                           1)),
     ["line 2 has", "fields, expected"]),
    (lambda f: (f / "steps.csv").write_text((f / "steps.csv").read_text().replace(",scenario,0,", ",scenario,zero,",
                                                                                     1)),
     ["steps.csv' line 2, column 'seed': cannot read 'zero' as a number"]),
])
def test_report_only_on_a_corrupt_folder(plotted_run, tmp_path, capsys, damage, words):
    folder = _copy(plotted_run, tmp_path / "copy")
    damage(folder)
    rc, _, err = run_cli(["--report-only", str(folder), "--no-plots"], capsys)
    assert_one_line_error(rc, err, *words)


def test_report_only_rebuilds_the_same_bytes(plotted_run, tmp_path, capsys):
    folder = _copy(plotted_run, tmp_path / "copy")
    rc, out, _ = run_cli(["--report-only", str(folder)], capsys)
    assert rc == 0 and "report.md" in out
    for f in plotted_run.iterdir():
        assert (folder / f.name).read_bytes() == f.read_bytes(), f.name


# ---- 3. the output folder is not reused silently ------------------------------------------------------------

def test_a_non_empty_folder_is_refused(plotted_run, tmp_path, capsys):
    before = {f.name: f.read_bytes() for f in plotted_run.iterdir()}
    rc, _, err = run_cli(TINY + ["--out", str(plotted_run)], capsys)
    assert_one_line_error(rc, err, "holds an earlier eval run", "--overwrite")
    assert {f.name: f.read_bytes() for f in plotted_run.iterdir()} == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):       # --overwrite replaces only an eval run
        rc, _, err = run_cli(TINY + ["--out", str(foreign)] + extra, capsys)
        assert_one_line_error(rc, err, "not empty", "holds no eval run", "choose a new or empty folder")
    assert os.listdir(foreign) == ["notes.txt"]
    rc, _, err = run_cli(TINY + ["--out", str(foreign / "notes.txt")], capsys)
    assert_one_line_error(rc, err, "is a file")
    # the API refuses too
    res = run_tournament(["truthful"], ["energy_small"], seeds="0", optimum=False, equilibrium=False, progress=False)
    with pytest.raises(OutputError, match="holds an earlier eval run"):
        res.write(plotted_run)


def test_overwrite_clears_only_the_earlier_runs_listed_files(plotted_run, tmp_path, capsys):
    folder = _copy(plotted_run, tmp_path / "copy")
    (folder / "notes.txt").write_text("mine")                 # the user's own files stay
    (folder / "old_plot.png").write_bytes(b"not ours")
    assert {"price_paths.png", "episodes.parquet"} <= listed(folder)
    rc, out, _ = run_cli(TINY + ["--seeds", "1", "--no-plots", "--no-parquet", "--overwrite",
                                 "--out", str(folder)], capsys)
    assert rc == 0
    names = set(os.listdir(folder))
    assert names == listed(folder) | {"notes.txt", "old_plot.png"}
    assert listed(folder) == {"manifest.json", "episodes.csv", "steps.csv", "exploitability.csv", "timing.json",
                              "report.md"}
    assert not any(n.endswith(".parquet") for n in names) and "price_paths.png" not in names
    # what the command printed is exactly this run's files
    printed = {Path(line.strip()).name for line in out.splitlines()[1:]}
    assert printed == listed(folder)
    assert read_manifest(folder)["seeds"] == [1]


def test_overwrite_keeps_the_earlier_run_when_the_new_one_is_rejected(plotted_run, tmp_path, capsys):
    folder = _copy(plotted_run, tmp_path / "copy")
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    rc, _, err = run_cli(TINY + ["--scenario", "nope", "--overwrite", "--out", str(folder)], capsys)
    assert rc == 2
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before


def test_a_tampered_manifest_cannot_delete_other_files(plotted_run, tmp_path, capsys):
    folder = _copy(plotted_run, tmp_path / "copy")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    _edit_manifest(folder, lambda m: m.update(outputs=["../victim.txt", "report.md"]))
    rc, _, err = run_cli(TINY + ["--overwrite", "--out", str(folder)], capsys)
    assert_one_line_error(rc, err, "outputs[0] is '../victim.txt'")
    assert victim.read_text() == "keep me"
    outputs.clear_outputs(folder, ["../victim.txt", "notes.txt"])     # names outside OUTPUT_NAMES: untouched
    assert victim.exists()


def test_overwrite_of_a_run_written_before_outputs_were_listed(plotted_run, tmp_path):
    folder = _copy(plotted_run, tmp_path / "copy")
    (folder / "notes.txt").write_text("mine")
    _edit_manifest(folder, lambda m: (m.pop("outputs"), m.pop("format")))
    previous = prepare_folder(folder, overwrite=True)
    assert set(previous) == set(os.listdir(folder)) - {"notes.txt"} and set(previous) <= set(OUTPUT_NAMES)


# ---- 4. an unwritable folder fails before the tournament ---------------------------------------------------

def test_unwritable_folder_fails_before_the_tournament(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TournamentPlan, "run", lambda *a, **k: pytest.fail("the tournament ran"))

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", refuse)
    rc, _, err = run_cli(TINY + ["--out", str(tmp_path / "ro")], capsys)
    assert_one_line_error(rc, err, "is not writable (Permission denied)", "choose a folder you can write to")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_fails_before_the_tournament(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TournamentPlan, "run", lambda *a, **k: pytest.fail("the tournament ran"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = run_cli(TINY + ["--out", str(ro)], capsys)
    finally:
        ro.chmod(0o755)
    assert_one_line_error(rc, err, "is not writable")


def test_report_only_into_an_unwritable_folder(plotted_run, tmp_path, monkeypatch, capsys):
    folder = _copy(plotted_run, tmp_path / "copy")
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    monkeypatch.setattr(outputs.tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "x")))
    rc, _, err = run_cli(["--report-only", str(folder)], capsys)
    assert_one_line_error(rc, err, "is not writable")
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before


# ---- 5. reruns are byte-identical; timing apart --------------------------------------------------------------

def test_reruns_write_the_same_bytes_into_other_folders(plotted_run, tmp_path, capsys):
    other = tmp_path / "again"
    assert main(TINY + ["--out", str(other)]) == 0
    capsys.readouterr()
    names = sorted(os.listdir(plotted_run))
    assert names == sorted(os.listdir(other)) == sorted(listed(other))
    assert {"price_paths.png", "episodes.parquet", "steps.parquet", "report.md", "timing.json"} <= set(names)
    for name in names:
        if name != "timing.json":
            assert (other / name).read_bytes() == (plotted_run / name).read_bytes(), name
    m = json.loads((other / "manifest.json").read_text())
    assert not {"runtime_seconds", "workers"} & set(m)
    assert str(other) not in (other / "manifest.json").read_text()
    assert m["command"] == recorded_command(TINY)
    t = json.loads((other / "timing.json").read_text())
    assert set(t) == {"runtime_seconds", "workers", "jobs"} and t["workers"] == 1
    png = (other / "price_paths.png").read_bytes()
    assert b"Software" not in png and b"matplotlib" not in png.lower()


def test_recorded_command_leaves_out_output_only_flags():
    argv = ["--seeds", "0-1", "--out", "a b", "--workers=2", "--overwrite", "--no-progress", "--workers", "3",
            "--out=x", "--policies", "truthful"]
    assert recorded_command(argv) == "channelmarket eval --seeds 0-1 --policies truthful"


# ---- 6. every file is written atomically ---------------------------------------------------------------------

def test_every_output_file_is_written_atomically(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pyarrow")
    replaced = []
    real = os.replace

    def spy(src, dst, *a, **k):
        replaced.append(Path(dst).name)
        return real(src, dst, *a, **k)

    monkeypatch.setattr(files.os, "replace", spy)
    out = tmp_path / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    assert set(os.listdir(out)) == set(replaced) == listed(out)     # every file came through a rename
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]
    replaced.clear()
    write_report(out)
    assert set(replaced) == {"report.md", "price_paths.png", "profit_by_kind.png", "efficiency_by_mechanism.png"}


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    res = run_tournament(["truthful"], ["energy_small"], seeds="0", optimum=False, equilibrium=False, progress=False)
    import channelmarket.eval.tables as tables

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables, "_cell", boom)
    with pytest.raises(OSError, match="No space"):
        res.write(tmp_path / "run", parquet=False)
    assert sorted(os.listdir(tmp_path / "run")) == ["manifest.json"]    # no torn CSV, no temporary file
