"""The output folder of a tournament: checked before the run, written atomically, listed in its manifest.

A run writes into a new or empty folder. A folder that holds an earlier eval run is refused unless
the caller asks to overwrite it; then the files that run's `manifest.json` lists (only names eval
itself writes, `OUTPUT_NAMES`) are removed and nothing else, so stale plots or Parquet files of
the earlier run are never taken for this run's. The folder is probed for writing (a temporary
file created and removed) before the tournament starts, so an unwritable folder fails in a
second, not after the run. `manifest.json` lists exactly this run's files under "outputs".

Reading a folder back (`read_manifest`, `read_table`) checks the manifest's structure and every
CSV cell, and raises `OutputError` (a ValueError) saying which file is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..envs.files import atomic_write_text, fsync_dir

FORMAT = 1
MANIFEST = "manifest.json"
TIMING = "timing.json"
TABLES = ("episodes", "steps", "exploitability")
PLOT_NAMES = ("price_paths.png", "profit_by_kind.png", "efficiency_by_mechanism.png")
RECORDINGS = "recordings"   # folder of episode recordings (`channelmarket eval --record N`), *.jsonl.gz
OUTPUT_NAMES = ((MANIFEST,) + tuple(f"{t}.csv" for t in TABLES) + tuple(f"{t}.parquet" for t in TABLES)
                + (TIMING, "report.md") + PLOT_NAMES + (RECORDINGS,))

__all__ = ["OutputError", "prepare_folder", "clear_outputs", "probe_writable", "read_manifest", "record_outputs",
           "write_json", "read_table", "OUTPUT_NAMES", "PLOT_NAMES", "MANIFEST", "TIMING", "FORMAT", "RECORDINGS"]


class OutputError(ValueError):
    """An output folder that cannot take a run, or a file in it that cannot be read back."""


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# ---- before a run ---------------------------------------------------------------------------------------

def probe_writable(folder: Path) -> None:
    """Create and remove a temporary file in `folder`; OutputError if that fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".channelmarket-probe-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"output folder {str(folder)!r} is not writable ({_reason(exc)}); choose a folder you "
                          "can write to") from None


def prepare_folder(out: "str | os.PathLike", overwrite: bool = False) -> list[str]:
    """Check that `out` can take a run's outputs, before the run: create it if missing, refuse a
    non-empty folder unless `overwrite` and it holds an earlier eval run (a readable manifest),
    probe that it is writable. Returns the earlier run's output names (to remove before writing)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {str(folder)!r} is a file; choose a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = sorted(e.name for e in folder.iterdir())
    except OSError as exc:
        raise OutputError(f"cannot create or read the output folder {str(folder)!r} ({_reason(exc)}); choose a "
                          "folder you can write to") from None
    previous: list[str] = []
    if entries:
        held = f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}, e.g. {entries[0]!r}"
        if MANIFEST not in entries:
            raise OutputError(f"output folder {str(folder)!r} is not empty ({held}) and holds no eval run (no "
                              f"{MANIFEST}); choose a new or empty folder")
        if not overwrite:
            raise OutputError(f"output folder {str(folder)!r} holds an earlier eval run ({held}); choose a new or "
                              "empty folder, or pass --overwrite (API: overwrite=True) to replace that run's files")
        previous = read_manifest(folder)["outputs"]
    probe_writable(folder)
    return previous


def clear_outputs(folder: "str | os.PathLike", names: Iterable[str]) -> None:
    """Remove the named outputs of an earlier run from `folder` (names outside `OUTPUT_NAMES` are
    never touched); the manifest goes last, so an interrupted clear can be repeated."""
    folder = Path(folder)
    names = [n for n in dict.fromkeys(names) if n in OUTPUT_NAMES]
    for n in sorted(names, key=lambda n: n == MANIFEST):
        if n == RECORDINGS:   # only the recordings an eval run writes; anything else stays
            for f in (folder / n).glob("*.jsonl.gz") if (folder / n).is_dir() else ():
                f.unlink()
            with contextlib.suppress(OSError):
                (folder / n).rmdir()
            continue
        with contextlib.suppress(FileNotFoundError):
            (folder / n).unlink()
    fsync_dir(folder)


# ---- writing ----------------------------------------------------------------------------------------------

def write_json(path: "str | os.PathLike", obj: Any) -> Path:
    """`obj` as indented JSON with a final newline, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")
    return Path(path)


def record_outputs(folder: "str | os.PathLike", add: Sequence[str] = (), drop: Sequence[str] = ()) -> dict:
    """Add (and drop) names in the manifest's "outputs" list; rewrites it only when it changes."""
    folder = Path(folder)
    m = read_manifest(folder)
    names = [n for n in m["outputs"] if n not in drop]
    names += [n for n in add if n not in names and n not in drop]
    if names != m["outputs"]:
        m["outputs"] = names
        write_json(folder / MANIFEST, m)
    return m


# ---- reading back -----------------------------------------------------------------------------------------

def _bad(folder: Path, what: str) -> OutputError:
    return OutputError(f"{str(folder / MANIFEST)!r} {what}; rerun the tournament to rebuild the folder")


def _check(folder: Path, value: Any, types: Any, where: str) -> Any:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _bad(folder, f"field {where} is {value!r}; expected {_type_names(types)}")
    if not isinstance(value, types):
        raise _bad(folder, f"field {where} is {type(value).__name__}; expected {_type_names(types)}")
    return value


def _type_names(types: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "true/false", list: "a list", dict: "an object",
             type(None): "null"}
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(names.get(t, t.__name__) for t in ts)


def _check_manifest(folder: Path, m: Any) -> dict:
    """The manifest's structure as the report reads it; OutputError naming the first bad field."""
    opt_str = (str, type(None))
    _check(folder, m, dict, "(top level)")
    fmt = m.get("format", FORMAT)
    if fmt != FORMAT:
        raise OutputError(f"{str(folder / MANIFEST)!r} has format {fmt!r}; this channelmarket reads format "
                          f"{FORMAT}: rebuild the report with the channelmarket version that wrote it")
    for key, types in (("channelmarket_version", str), ("seeds", list), ("mechanisms", list), ("shocks", list),
                       ("cells", list), ("populations", list), ("policies", dict), ("scenarios", dict),
                       ("optimum", bool), ("equilibrium", bool)):
        if key not in m:
            raise _bad(folder, f"has no field {key!r}")
        _check(folder, m[key], types, repr(key))
    for key, types in (("command", opt_str), ("reference_population", opt_str), ("exploitability", (dict, type(None))),
                       ("outputs", list)):
        if key in m:
            _check(folder, m[key], types, repr(key))
    if not m["seeds"] or not m["cells"] or not m["populations"]:
        raise _bad(folder, "lists no seeds, cells or populations")
    for i, s in enumerate(m["seeds"]):
        _check(folder, s, int, f"seeds[{i}]")
    for key in ("mechanisms", "shocks"):
        for i, s in enumerate(m[key]):
            _check(folder, s, str, f"{key}[{i}]")
    for i, c in enumerate(m["cells"]):
        _check(folder, c, dict, f"cells[{i}]")
        for k in ("scenario", "mechanism", "shocks"):
            _check(folder, c.get(k), str, f"cells[{i}].{k}")
    for i, p in enumerate(m["populations"]):
        _check(folder, p, dict, f"populations[{i}]")
        for k, types in (("name", str), ("substrate", str), ("focal_policy", opt_str), ("shocks", opt_str),
                         ("slots", list)):
            _check(folder, p.get(k), types, f"populations[{i}].{k}")
        for j, s in enumerate(p["slots"]):
            where = f"populations[{i}].slots[{j}]"
            _check(folder, s, dict, where)
            for k, types in (("role", str), ("policy", str), ("kinds", list), ("part", list)):
                _check(folder, s.get(k), types, f"{where}.{k}")
            for k, kind in enumerate(s["kinds"]):
                _check(folder, kind, str, f"{where}.kinds[{k}]")
            if len(s["part"]) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in s["part"]):
                raise _bad(folder, f"field {where}.part is {s['part']!r}; expected two integers")
    for name, rec in m["policies"].items():
        _check(folder, rec, dict, f"policies[{name!r}]")
        _check(folder, rec.get("type"), str, f"policies[{name!r}].type")
        _check(folder, rec.get("sha256", {}), dict, f"policies[{name!r}].sha256")
    for name, sc in m["scenarios"].items():
        _check(folder, sc, dict, f"scenarios[{name!r}]")
    if "outputs" in m:
        for i, n in enumerate(m["outputs"]):
            if n not in OUTPUT_NAMES:
                raise _bad(folder, f"field outputs[{i}] is {n!r}; expected one of {', '.join(OUTPUT_NAMES)}")
    else:   # written before outputs were listed: the eval files it may have written
        m["outputs"] = [n for n in OUTPUT_NAMES if (folder / n).is_file()]
    return m


def read_manifest(out: "str | os.PathLike") -> dict:
    """The checked manifest of the eval output folder `out`; OutputError for a missing folder, a
    folder that is no eval output, or a corrupt manifest."""
    folder = Path(out)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"{str(folder)!r} {what}; give the --out folder of an earlier 'channelmarket eval' run")
    path = folder / MANIFEST
    if not path.is_file():
        raise OutputError(f"{str(folder)!r} holds no {MANIFEST}, so it is not a 'channelmarket eval' output folder; "
                          "give the --out folder of an eval run")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise _bad(folder, f"cannot be read ({detail})") from None
    return _check_manifest(folder, m)


def read_table(path: "str | os.PathLike", columns: Sequence[str], string_columns: Iterable[str],
               int_columns: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of a tournament CSV with numbers as numbers (ids and labels stay strings); OutputError
    naming the file, line and column of a missing or unreadable value."""
    p = Path(path)
    strings, ints = set(string_columns), set(int_columns)

    def bad(what: str) -> OutputError:
        return OutputError(f"{str(p)!r} {what}; rerun the tournament to rebuild the folder")

    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise bad("is empty")
            missing = [c for c in columns if c not in header]
            if missing:
                raise bad(f"has no column {missing[0]!r}")
            rows = []
            for values in reader:
                line = reader.line_num
                if len(values) != len(header):
                    raise bad(f"line {line} has {len(values)} fields, expected {len(header)}")
                r: dict[str, Any] = dict(zip(header, values))
                for k, v in r.items():
                    if k in strings:
                        continue
                    try:
                        r[k] = int(v) if k in ints else (float(v) if v != "" else float("nan"))
                    except ValueError:
                        raise bad(f"line {line}, column {k!r}: cannot read {v!r} as a number") from None
                rows.append(r)
    except FileNotFoundError:
        raise bad("is missing") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise bad(f"cannot be read ({' '.join(str(exc).split())})") from None
    return rows
