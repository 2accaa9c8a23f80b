"""The Markdown report and PNG plots of a tournament, built from its output folder alone.

    write_report("out/")     # reads episodes.csv, steps.csv, exploitability.csv, manifest.json;
                             # writes report.md, price_paths.png, profit_by_kind.png, efficiency_by_mechanism.png

The last layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report):
it consumes a written output folder (read back by `eval.results`) and produces report.md (its
sections in `eval.sections`) and the plots (`eval.plots`). Intervals are mean ± 95% Student-t
half-widths over episodes and paired differences over seeds (`eval.statistics`).

The report is a pure function of the output files (no timestamps, no timings: those are in
timing.json), and the plots carry no varying metadata, so rerunning a tournament reproduces every
file but timing.json byte for byte. Every file is written atomically and listed in the manifest.
"""

from __future__ import annotations

from pathlib import Path

from ..envs.files import atomic_write_text
from . import outputs
from .plots import PLOTS, plot_efficiency_by_mechanism, plot_price_paths, plot_profit_by_kind
from .results import Data
from .sections import METRICS, cell_tables, exploit_tables, focal_tables, headline, paired_tables, reproducibility
from .statistics import mean_ci, paired_diff
from .survival import survival_tables
from .tables import read_table


def write_report(out: "str | Path", plots: bool = True) -> Path:
    """Write report.md (and the PNG plots when `plots` and matplotlib is installed) into the
    tournament folder `out`, each atomically, and list them in its manifest; returns the report's
    path. OutputError (a ValueError) for a folder that is no readable eval output or not writable."""
    d = Data(out)
    out = Path(out)
    outputs.probe_writable(out)
    m = d.manifest
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            plots = False
    planned = [fname for fname, _, _ in PLOTS] if plots else []
    outputs.record_outputs(out, add=["report.md"] + planned)     # listed before written: never a stray file
    parts = ["# Evaluation report", "",
             f"`{m.get('command') or '(API call)'}`", "",
             f"channelmarket {m['channelmarket_version']} · {len(m['seeds'])} seeds · "
             f"{len(d.populations)} populations · mechanisms {', '.join(m['mechanisms'])} · "
             f"shock settings {', '.join(m['shocks'])}. Data: `episodes.csv` (one row per episode and "
             "policy/role/kind group; `all` rows aggregate), `steps.csv` (price paths), `exploitability.csv`, "
             "`manifest.json`.", ""]
    parts.append(headline(d))
    parts.append(survival_tables(d))
    if plots:
        parts += ["## Plots", ""]
        skipped = []
        for fname, fn, title in PLOTS:
            if fn(d, out / fname) is not None:
                parts += [f"![{title}]({fname})", ""]
            else:
                skipped.append(fname)
        if skipped:
            outputs.record_outputs(out, drop=skipped)
    for section in (focal_tables(d), exploit_tables(d), paired_tables(d), cell_tables(d), reproducibility(d)):
        if section:
            parts.append(section)
    path = out / "report.md"
    atomic_write_text(path, "\n".join(parts).rstrip() + "\n")
    return path


# mean_ci, paired_diff (eval.statistics) and read_table (eval.tables) stay importable from here
__all__ = ["write_report", "mean_ci", "paired_diff", "read_table", "Data", "headline", "plot_price_paths",
           "plot_profit_by_kind", "plot_efficiency_by_mechanism", "METRICS"]
