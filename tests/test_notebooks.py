"""Every notebook's code cells run top to bottom (headless), so the notebooks cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# a notebook whose metadata names another test (channelmarket.executed_by) runs there, e.g. inside a shared Ray session
OWN = [p for p in NOTEBOOKS if not json.loads(p.read_text()).get("metadata", {}).get("channelmarket", {}).get("executed_by")]


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, capsys, tmp_path):
    import tempfile

    import matplotlib

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # run folders the notebooks make land here

    matplotlib.use("Agg")
    cells = json.loads(path.read_text())["cells"]
    code = [("".join(c["source"])) for c in cells if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cells"
    namespace: dict = {}
    for i, src in enumerate(code):
        exec(compile(src, f"{path.name}[cell {i}]", "exec"), namespace)
    assert "welfare" in capsys.readouterr().out


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


def test_notebooks_run_elsewhere_are_run_there():
    """A notebook left out above names a test that exists and executes it."""
    root = Path(__file__).resolve().parents[1]
    for path in sorted(set(NOTEBOOKS) - set(OWN)):
        test = root / json.loads(path.read_text())["metadata"]["channelmarket"]["executed_by"]
        assert test.is_file() and path.name in test.read_text(), f"{path.name}: {test} does not run it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    cells = json.loads(path.read_text())["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
