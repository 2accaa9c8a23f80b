"""The evaluation package is a layered pipeline: settings -> jobs -> runs -> statistics -> report,
under a thin orchestration (`tournament`) and its faces (`cli`, benchmarks).

Every module of `channelmarket.eval` belongs to exactly one stage below, and imports only its own
stage and the stages before it (function-local imports included; the import graph is the one
`tests/test_layers.py` reads). A new module must be placed here, which says where it sits.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_layers import graph  # noqa: E402

EVAL = "channelmarket.eval"
STAGES = (
    # leaves: references, schemas and registries the stages share
    ("references", ("seeds", "outputs", "best_response", "equilibrium", "optimum", "welfare", "metrics",
                    "tables", "rllib_policy", "host_spread", "progress")),
    ("settings", ("markets", "populations", "settings")),
    ("jobs", ("jobs",)),
    ("runs", ("recorder", "runs", "exploitability", "batch_eval")),
    ("statistics", ("statistics",)),
    ("report", ("results", "sections", "survival", "plots", "report")),
    ("orchestration", ("tournament",)),
    ("faces", ("cli", "__main__", "bench_env", "bench_auction", "bench_render", "bench_batch", "bench_routing",
               "lightning_report", "bench_supply_chain")),
)
RANK = {f"{EVAL}.{m}": i for i, (_, mods) in enumerate(STAGES) for m in mods}
STAGE_NAME = {f"{EVAL}.{m}": name for name, mods in STAGES for m in mods}
# the stages of the pipeline proper: their modules say in their docstring where they sit
PIPELINE = ("settings", "jobs", "runs", "statistics", "report", "orchestration")
MAX_LINES = 360     # "small enough to read in one sitting"


def eval_modules() -> dict[str, Path]:
    folder = Path(importlib.import_module(EVAL).__file__).parent
    return {f"{EVAL}.{f.stem}": f for f in sorted(folder.glob("*.py")) if f.stem != "__init__"}


def test_every_eval_module_has_a_stage():
    unplaced = sorted(set(eval_modules()) - set(RANK))
    assert not unplaced, f"place these modules in a stage of {__name__}.STAGES: {unplaced}"
    gone = sorted(set(RANK) - set(eval_modules()))
    assert not gone, f"stages list modules that do not exist: {gone}"


def test_eval_imports_run_down_the_pipeline():
    g = graph()
    upward = [f"{m} ({STAGE_NAME[m]}) imports {t} ({STAGE_NAME[t]})"
              for m in sorted(RANK) for t in sorted(g.get(m, ())) if t in RANK and RANK[t] > RANK[m]]
    assert not upward, "upward imports in the evaluation pipeline:\n" + "\n".join(upward)


def test_the_stages_are_wired_as_the_pipeline_says():
    g = graph()
    assert f"{EVAL}.runs" in g[f"{EVAL}.statistics"]           # statistics read runs
    assert f"{EVAL}.statistics" in g[f"{EVAL}.sections"]       # the report's intervals come from statistics
    assert f"{EVAL}.tables" in g[f"{EVAL}.results"]            # the report reads the written tables
    assert not {f"{EVAL}.runs", f"{EVAL}.recorder", f"{EVAL}.tournament"} & g[f"{EVAL}.report"]
    for stage in (f"{EVAL}.runs", f"{EVAL}.statistics", f"{EVAL}.jobs", f"{EVAL}.settings"):
        assert f"{EVAL}.tournament" in {m for m, ts in g.items() if stage in ts}


@pytest.mark.parametrize("module", [m for m in sorted(RANK) if STAGE_NAME[m] in PIPELINE])
def test_pipeline_modules_say_where_they_sit(module):
    doc = ast.get_docstring(ast.parse(eval_modules()[module].read_text())) or ""
    assert "settings -> jobs -> runs -> statistics -> report" in " ".join(doc.split()), module


@pytest.mark.parametrize("module", sorted(RANK))
def test_eval_modules_are_small(module):
    n = len(eval_modules()[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module}: {n} lines; split it along the pipeline (at most {MAX_LINES})"


def test_kind_lists_come_from_the_registry():
    """No eval module spells out the list of agent kinds: per-kind tables, groups and metrics
    iterate the registry (`KIND_NAMES`, `KINDS`), so a new kind needs no change here."""
    from channelmarket.envs.kinds import KIND_NAMES

    for name, path in eval_modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                words = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                assert len(words & set(KIND_NAMES)) < 3, f"{name}:{node.lineno} lists kinds {sorted(words)}"


def test_the_storage_best_response_covers_the_registered_plain_stores():
    """The mf_dp rows cover every kind whose charge moves only by its trades (from the registry),
    and no kind with a schedule of its own (an EV's trips)."""
    from channelmarket.envs.kinds import KINDS
    from channelmarket.eval.runs import plain_store_kinds

    kinds = plain_store_kinds()
    assert "storage" in kinds and "ev" not in kinds
    assert set(kinds) == {s.name for s in KINDS if s.stores and s.book is None}
