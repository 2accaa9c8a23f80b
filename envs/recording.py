"""Episode recordings: each step's market frame (summary and sampled channel states, with each sampled
channel's bounded flow history) as JSON lines.

    rec = Recorder("runs/ep.jsonl.gz", max_channels=2000)   # .gz: gzip-compressed
    rec.add(core)                 # after reset and after every step (array API or PettingZoo face)
    rec.close()                   # writes the file atomically (channelmarket.envs.files)
    record_episode(env, "ep.jsonl", actions=...)   # the loop above over a parallel env
    for summaries, frame in replay("ep.jsonl"): Dashboard().draw(summaries, frame)

The first line is a header {"format": "channelmarket-recording", "version": 1, ...}; every
further line is one `frames.Observer` frame. `read_recording` validates every line (types,
lengths, index ranges) before returning it and only parses JSON, so a recording from anyone is
safe to open; a bad file raises ValueError naming the line and field.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .files import atomic_write_bytes
from .frames import FRAME_VERSION, Observer

FORMAT = "channelmarket-recording"
MAX_BYTES = 1 << 30     # refuse recordings larger than 1 GiB (uncompressed)
CHANNEL_FIELDS = ("slot", "u", "v", "capacity", "balance_u", "utilization", "flow", "new")
MAX_FLOW_HISTORY = 1024   # steps of per-channel flow a frame may carry (`channels.flow_history`, optional)
KIND_FIELDS = ("count", "generation", "demand", "stored", "money")
SUMMARY_NUMBERS = ("t", "hour", "ref_price", "clearing_price", "volume", "supply", "demand", "active_channels",
                   "trades")


class Recorder:
    """Collects frames of one or more episodes in memory and writes them at `close()`."""

    def __init__(self, path: "str | os.PathLike", max_nodes: int = 300, max_channels: int = 2000,
                 seed: int = 0) -> None:
        self.path = Path(path)
        self.observer = Observer(max_nodes=max_nodes, max_channels=max_channels, seed=seed)
        self._lines: list[str] = [json.dumps({"format": FORMAT, "version": FRAME_VERSION,
                                              "max_nodes": int(max_nodes), "max_channels": int(max_channels)})]
        self.closed = False

    def add(self, core: Any) -> dict[str, Any]:
        """Record `core`'s frame now (call after reset and after each step); returns the frame."""
        if self.closed:
            raise RuntimeError(f"recorder for {self.path} is closed")
        frame = self.observer.frame(core)
        self._lines.append(json.dumps(frame, separators=(",", ":"), allow_nan=False))
        return frame

    @property
    def n_frames(self) -> int:
        return len(self._lines) - 1

    def data(self, compress: "bool | None" = None) -> bytes:
        """The recording's bytes as `close()` would write them (gzip when `compress`, by default when
        the path ends in .gz): a worker process can hand them back instead of writing a file."""
        data = ("\n".join(self._lines) + "\n").encode("utf-8")
        if compress if compress is not None else self.path.suffix == ".gz":
            data = gzip.compress(data, mtime=0)
        return data

    def close(self) -> Path:
        """Write the recording atomically (gzip when the name ends in .gz); idempotent."""
        if not self.closed:
            atomic_write_bytes(self.path, self.data())
            self.closed = True
        return self.path

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def record_episode(env: Any, path: "str | os.PathLike", actions: "Callable[[Any], dict] | None" = None,
                   seed: "int | None" = None, max_steps: "int | None" = None, **recorder_kwargs: Any) -> Path:
    """Run one episode of a PettingZoo parallel env (`actions(env)` -> action dict; default random
    samples) and record it; returns the written path."""
    core = env.unwrapped.core if hasattr(env, "unwrapped") else env.core
    rec = Recorder(path, **recorder_kwargs)
    env.reset(seed=seed)
    rec.add(core)
    steps = 0
    while env.agents and (max_steps is None or steps < max_steps):
        act = actions(env) if actions is not None else {a: env.action_space(a).sample() for a in env.agents}
        env.step(act)
        rec.add(core)
        steps += 1
    return rec.close()


# ---- reading -------------------------------------------------------------------------------------------
def _bad(line: int, what: str) -> ValueError:
    return ValueError(f"line {line}: {what}")


def _num_list(x: Any, line: int, field: str, n: "int | None" = None, integer: bool = False) -> np.ndarray:
    if not isinstance(x, list):
        raise _bad(line, f"{field} must be a list, got {type(x).__name__}")
    if n is not None and len(x) != n:
        raise _bad(line, f"{field} has {len(x)} entries; expected {n}")
    if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in x):
        raise _bad(line, f"{field} must hold numbers only")
    a = np.asarray(x, dtype=np.float64 if not integer else object)
    if integer:
        if not all(isinstance(e, int) for e in x):
            raise _bad(line, f"{field} must hold integers only")
        a = np.asarray(x, dtype=np.int64)
    elif a.size and not np.isfinite(a).all():
        raise _bad(line, f"{field} holds a non-finite number")
    return a


def validate_frame(f: Any, line: int = 0) -> dict[str, Any]:
    """Check one frame's structure, types, lengths and index ranges; returns it or raises ValueError."""
    if not isinstance(f, dict):
        raise _bad(line, f"a frame must be a JSON object, got {type(f).__name__}")
    missing = {"v", "n_agents", "summary", "kinds", "nodes", "channels"} - set(f)
    if missing:
        raise _bad(line, f"frame misses {sorted(missing)}")
    if f["v"] != FRAME_VERSION:
        raise _bad(line, f"frame version {f['v']!r}; this reader knows {FRAME_VERSION}")
    n = f["n_agents"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise _bad(line, f"n_agents = {n!r}; allowed: an integer >= 1")
    s = f["summary"]
    if not isinstance(s, dict):
        raise _bad(line, "summary must be an object")
    for k in SUMMARY_NUMBERS:
        val = s.get(k)
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise _bad(line, f"summary.{k} = {val!r}; expected a finite number")
    if not isinstance(s.get("shock", "NONE"), str):
        raise _bad(line, "summary.shock must be a string")
    k = f["kinds"]
    if not isinstance(k, dict) or not isinstance(k.get("names"), list) or not all(isinstance(x, str) for x in k["names"]):
        raise _bad(line, "kinds.names must be a list of strings")
    nk = len(k["names"])
    for field in KIND_FIELDS:
        _num_list(k.get(field), line, f"kinds.{field}", nk)
    nodes = f["nodes"]
    if not isinstance(nodes, dict):
        raise _bad(line, "nodes must be an object")
    ids = _num_list(nodes.get("id"), line, "nodes.id", integer=True)
    m = ids.size
    kind = _num_list(nodes.get("kind"), line, "nodes.kind", m, integer=True)
    _num_list(nodes.get("capacity"), line, "nodes.capacity", m)
    if m and (ids.min() < 0 or ids.max() >= n or np.any(np.diff(ids) <= 0)):
        raise _bad(line, f"nodes.id must be sorted distinct agent indices in 0..{n - 1}")
    if m and (kind.min() < 0 or kind.max() >= nk):
        raise _bad(line, f"nodes.kind must be kind codes in 0..{nk - 1}")
    ch = f["channels"]
    if not isinstance(ch, dict):
        raise _bad(line, "channels must be an object")
    total = ch.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise _bad(line, f"channels.total = {total!r}; expected an integer >= 0")
    e = len(ch.get("u", [])) if isinstance(ch.get("u"), list) else None
    for field in CHANNEL_FIELDS:
        if field == "new":
            val = ch.get("new")
            if not isinstance(val, list) or len(val) != e or not all(isinstance(b, bool) for b in val):
                raise _bad(line, f"channels.new must be a list of {e} booleans")
        else:
            a = _num_list(ch.get(field), line, f"channels.{field}", e, integer=field in ("slot", "u", "v"))
            if field in ("u", "v") and a.size and (a.min() < 0 or a.max() >= n):
                raise _bad(line, f"channels.{field} holds an agent index outside 0..{n - 1}")
    if "flow_history" in ch:   # optional (recordings before it have none): [e][h] numbers, one h for all
        fh = ch["flow_history"]
        if not isinstance(fh, list) or len(fh) != e:
            raise _bad(line, f"channels.flow_history must be a list of {e} lists")
        h = len(fh[0]) if fh and isinstance(fh[0], list) else 0
        if not 1 <= h <= MAX_FLOW_HISTORY and e:
            raise _bad(line, f"channels.flow_history rows must hold 1..{MAX_FLOW_HISTORY} numbers")
        for j, row in enumerate(fh):
            _num_list(row, line, f"channels.flow_history[{j}]", h)
    agents = f.get("agents")
    if agents is not None:
        if not isinstance(agents, dict):
            raise _bad(line, "agents must be an object or null")
        ak = _num_list(agents.get("kind"), line, "agents.kind", n, integer=True)
        if ak.size and (ak.min() < 0 or ak.max() >= nk):
            raise _bad(line, f"agents.kind must be kind codes in 0..{nk - 1}")
        for field in ("energy", "demand", "money"):
            _num_list(agents.get(field), line, f"agents.{field}", n)
    return f


def read_recording(path: "str | os.PathLike") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, frames) of a recording, every line validated; ValueError names what is wrong."""
    p = Path(path)
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                raw = gz.read(MAX_BYTES + 1)
        except (OSError, EOFError) as err:
            raise ValueError(f"recording {p}: not a readable gzip file ({err})") from None
    if len(raw) > MAX_BYTES:
        raise ValueError(f"recording {p}: larger than {MAX_BYTES} bytes uncompressed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"recording {p}: not UTF-8 text (a recording is JSON lines)") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"recording {p}: empty file")

    def parse(i: int, ln: str) -> Any:
        try:
            return json.loads(ln, parse_constant=lambda c: (_ for _ in ()).throw(_bad(i, f"non-finite number {c}")))
        except json.JSONDecodeError as err:
            raise ValueError(f"recording {p} line {i}: not JSON ({err.msg})") from None

    header = parse(1, lines[0])
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"recording {p}: line 1 is not a {FORMAT!r} header")
    if header.get("version") != FRAME_VERSION:
        raise ValueError(f"recording {p}: version {header.get('version')!r}; this reader knows {FRAME_VERSION}")
    frames = []
    for i, ln in enumerate(lines[1:], start=2):
        try:
            frames.append(validate_frame(parse(i, ln), i))
        except ValueError as err:
            raise ValueError(f"recording {p}: {err}") from None
    if not frames:
        raise ValueError(f"recording {p}: a header but no frames")
    return header, frames


def replay(path: "str | os.PathLike") -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """(summaries of the episode so far, frame) for every recorded frame, ready for `Dashboard.draw`."""
    _, frames = read_recording(path)
    summaries: list[dict[str, Any]] = []
    episode = object()
    for f in frames:
        if f.get("episode") != episode:
            episode, summaries = f.get("episode"), []
        summaries.append(f["summary"])
        yield list(summaries), f


__all__ = ["Recorder", "record_episode", "read_recording", "validate_frame", "replay", "FORMAT"]
