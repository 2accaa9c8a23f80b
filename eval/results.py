"""A written tournament read back for the report: its tables, indexed, and how numbers print.

The first step of the report layer of the evaluation pipeline (settings -> jobs -> runs ->
statistics -> report): it consumes an output folder (manifest.json and the tables of
`eval.tables`, nothing else) and produces `Data`, which `eval.sections` (Markdown) and
`eval.plots` (PNG) read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..envs.state import KIND_NAMES
from . import outputs
from .markets import SUPPLY_CHAIN_KINDS
from .tables import ALL, EPISODE_TABLE, EXPLOIT_COLUMNS, STEP_COLUMNS, read_table


# ---- the tables -------------------------------------------------------------------------------------------

class Data:
    """The tournament's tables, indexed for the report."""

    def __init__(self, out: "str | Path") -> None:
        out = Path(out)
        self.out = out
        self.manifest = outputs.read_manifest(out)
        self.rows = read_table(out / "episodes.csv", EPISODE_TABLE)
        self.steps = read_table(out / "steps.csv", STEP_COLUMNS)
        self.exploit = read_table(out / "exploitability.csv", EXPLOIT_COLUMNS)
        self.populations = [p["name"] for p in self.manifest["populations"]]
        self.pop_info = {p["name"]: p for p in self.manifest["populations"]}
        self.reference = self.manifest.get("reference_population") or self.populations[0]
        self.cells = [(c["scenario"], c["mechanism"], c["shocks"]) for c in self.manifest["cells"]]
        self.episode_rows = [r for r in self.rows if r["policy"] == ALL and r["kind"] == ALL and r["role"] == ALL]
        self.kinds = [k for k in KIND_NAMES + SUPPLY_CHAIN_KINDS if any(r["kind"] == k for r in self.rows)]

    def cell_rows(self, cell: tuple[str, str, str], rows: list[dict] | None = None) -> list[dict]:
        rows = self.episode_rows if rows is None else rows
        return [r for r in rows if (r["scenario"], r["mechanism"], r["shocks"]) == cell]

    def by_seed(self, rows: list[dict], population: str, column: str, **match: str) -> dict[int, float]:
        """seed -> value of `column` for one population (rows filtered by `match`)."""
        out = {}
        for r in rows:
            if r["population"] == population and all(r[k] == v for k, v in match.items()):
                out[r["seed"]] = r[column]
        return out

    def pops_in(self, rows: list[dict]) -> list[str]:
        present = {r["population"] for r in rows}
        return [p for p in self.populations if p in present]


# ---- Markdown cells ----------------------------------------------------------------------------------------

def fmt(m: float, half: float = float("nan"), digits: int = 2) -> str:
    if m is None or not np.isfinite(m):
        return "–"
    if not np.isfinite(half):
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ± {half:,.{digits}f}"


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def md(s: str) -> str:
    """A value safe inside a Markdown table cell."""
    return str(s).replace("|", "\\|")


__all__ = ["Data", "fmt", "fmt_p", "md_table", "md"]
