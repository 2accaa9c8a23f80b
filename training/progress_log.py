"""`progress.csv` that survives a resume: SB3's CSV writer truncates the file when a run restarts.

`ResumableCSV` keeps the rows of the interrupted run up to the checkpoint it resumes from (rows
logged after it are written again by the resumed run), appends one row per dump, and when a new
column appears rewrites the file atomically with the wider header. Columns are sorted, so two runs
write the same header whatever order their values arrived in.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import KVWriter, filter_excluded_keys

from ..envs.files import atomic_write_text

STEP_KEY = "time/total_timesteps"


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


class ResumableCSV(KVWriter):
    """SB3 logger output format writing `path`; `keep_until` (a step) keeps the rows already in the
    file whose `time/total_timesteps` is at most that step, else the file starts empty."""

    def __init__(self, path: "str | Path", keep_until: int | None = None) -> None:
        self.path = Path(path)
        self.keys: list[str] = []
        rows: list[dict] = []
        if keep_until is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                self.keys = list(reader.fieldnames or [])
                for row in reader:
                    try:
                        step = int(float(row.get(STEP_KEY) or 0))
                    except ValueError:
                        continue   # a torn last line of a killed run
                    if step <= keep_until and None not in row:
                        rows.append(row)
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.keys, lineterminator="\n")
        if self.keys:
            w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in self.keys})
        atomic_write_text(self.path, buf.getvalue())
        self.file = open(self.path, "a", newline="", encoding="utf-8")

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        key_values = filter_excluded_keys(key_values, key_excluded, "csv")
        extra = sorted(set(key_values) - set(self.keys))
        if extra:
            self.file.close()
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f)) if self.keys else []
            self.keys = sorted(self.keys + extra)
            self._rewrite(rows)
        w = csv.DictWriter(self.file, fieldnames=self.keys, lineterminator="\n")
        w.writerow({k: _cell(key_values.get(k)) for k in self.keys})
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


def configure(folder: "str | Path", verbose: int = 0, keep_until: int | None = None):
    """SB3 logger writing TensorBoard events and a resumable `progress.csv` into `folder`."""
    from stable_baselines3.common.logger import Logger, make_output_format

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    formats = [make_output_format("tensorboard", str(folder)), ResumableCSV(folder / "progress.csv", keep_until)]
    if verbose:
        formats.append(make_output_format("stdout", str(folder)))
    return Logger(folder=str(folder), output_formats=formats)


__all__ = ["ResumableCSV", "configure"]
