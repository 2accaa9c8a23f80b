"""The tournament's tables: their columns, and how they are written to and read from a folder.

The contract between the layers of the evaluation pipeline (settings -> jobs -> runs ->
statistics -> report): `eval.statistics` produces rows with these columns, `eval.tournament`
writes them (`write_csv`, `write_parquet`), and the report reads them back (`read_table`), so
the report depends on the written files alone. A leaf: it imports nothing of the pipeline.

- episodes (`EPISODE_TABLE`): one row per episode x group, where a group is (policy, role,
  kind) and the rows with policy/role/kind = `ALL` aggregate over the episode's groups; the
  `SURVIVAL_COLUMNS` are the supply chain's (`eval.supply_chain.runs`), NaN on the energy market;
- steps (`STEP_COLUMNS`): the price path and market totals of every episode, one row per step;
- exploitability (`EXPLOIT_COLUMNS`): the gain of a best response per agent kind.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..envs.breakdown import BREAKDOWN_FIELDS
from ..envs.files import atomic_write_bytes, atomic_writer
from . import outputs

ALL = "all"
ID_COLUMNS = ("scenario", "mechanism", "shocks", "seed", "population", "substrate", "focal_policy", "policy", "kind",
              "role")
GROUP_COLUMNS = ("agents", "profit_total", "profit_per_agent", "group_profit_gini") + tuple(
    f"{f}_per_agent" for f in BREAKDOWN_FIELDS if f != "profit")
EPISODE_COLUMNS = (
    "steps", "welfare", "realized_welfare", "optimal_welfare", "efficiency", "p2p_volume", "price_mean",
    "price_volatility", "eq_price_rmse", "eq_price_mae", "eq_converged", "n_shocks", "shock_peak_deviation",
    "shock_peak_relative", "shock_recovery_steps", "shock_recovered_share", "unserved", "curtailed",
    "unserved_share", "payment_failure_rate", "channel_utilization", "profit_gini",
)
# the supply chain's survival numbers (NaN on the energy market): per group the share of its agents
# alive at the end and their mean days alive; per episode whether everyone died, and trades per step
SURVIVAL_COLUMNS = ("alive_share", "lifespan_per_agent", "extinct", "trades_per_step")
EPISODE_TABLE = ID_COLUMNS + GROUP_COLUMNS + EPISODE_COLUMNS + SURVIVAL_COLUMNS
EPISODE_ID_COLUMNS = ("scenario", "mechanism", "shocks", "seed", "population", "substrate", "focal_policy")
STEP_COLUMNS = EPISODE_ID_COLUMNS[:5] + ("t", "hour", "price", "ref_price", "eq_price", "shock", "generation", "load",
                                         "volume", "supply", "demand", "unserved", "curtailed", "realized_welfare",
                                         "optimal_welfare")
EXPLOIT_COLUMNS = ("scenario", "mechanism", "shocks", "seed", "population", "kind", "method", "agents",
                   "base_profit_per_agent", "deviation_profit_per_agent", "gain_per_agent", "detail")
# (table name, columns) in the order they are written
TABLE_COLUMNS = (("episodes", EPISODE_TABLE), ("steps", STEP_COLUMNS), ("exploitability", EXPLOIT_COLUMNS))

STRING_COLUMNS = (set(ID_COLUMNS) - {"seed"}) | {"method", "detail", "shock"}
INT_COLUMNS = {"seed", "agents", "t"}


# ---- writing ------------------------------------------------------------------------------------------

def step_rows(blocks: Iterable[dict[str, list]]) -> Iterable[dict[str, Any]]:
    """Rows of the steps table from per-episode column blocks ({column: [value per step]})."""
    for b in blocks:
        for i in range(len(b["t"])):
            yield {c: b[c][i] for c in STEP_COLUMNS}


def _cell(v: Any) -> Any:
    """A CSV cell: floats by repr (exact round trip, 'nan'), bools as 0/1, the rest as str."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """A tidy table as CSV (floats by repr, '\\n' line ends), written atomically."""
    with atomic_writer(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c, "")) for c in columns])
    return Path(path)


def write_parquet(path: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> Path:
    """A tidy table as Parquet (int64 seed/agents/t, strings for ids, float64 for the rest),
    serialized in memory and written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {}
    for c in columns:
        vals = [r.get(c) for r in rows]
        if c in ("seed", "agents", "t"):
            data[c] = pa.array([int(v) for v in vals], type=pa.int64())
        elif c in ID_COLUMNS or any(isinstance(v, str) for v in vals):
            data[c] = pa.array([str(v) for v in vals], type=pa.string())
        else:
            data[c] = pa.array([float(v) for v in vals], type=pa.float64())
    buf = io.BytesIO()
    pq.write_table(pa.table(data), buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


# ---- reading --------------------------------------------------------------------------------------------

def read_table(path: "str | Path", columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a tournament CSV with numbers as numbers (ids and labels stay strings); OutputError
    (a ValueError) naming the file, line and column of a missing or unreadable value."""
    return outputs.read_table(path, columns, STRING_COLUMNS, INT_COLUMNS)


__all__ = ["ALL", "ID_COLUMNS", "GROUP_COLUMNS", "EPISODE_COLUMNS", "SURVIVAL_COLUMNS", "EPISODE_TABLE", "EPISODE_ID_COLUMNS",
           "STEP_COLUMNS", "EXPLOIT_COLUMNS", "TABLE_COLUMNS", "STRING_COLUMNS", "INT_COLUMNS", "step_rows",
           "write_csv", "write_parquet", "read_table"]
