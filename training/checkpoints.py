"""Checkpoints that survive a crash: a set of files plus a manifest of their checksums.

A checkpoint `<name>_<step>` is any number of files in one folder (a model zip, normaliser
statistics, a JSON run state, ...), each written atomically, and then — last — the manifest
`<name>_<step>.manifest.json` listing every file with its size and SHA-256. A checkpoint
without a manifest, or whose files do not match it, is incomplete or damaged: `latest_valid`
skips it, says so, and falls back to the newest intact one. Both trainers use this one lister.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..envs.files import atomic_write_text, sha256_file

MANIFEST_FORMAT = "channelmarket.checkpoint-manifest"
MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"

__all__ = ["Checkpoint", "write_manifest", "verify", "list_checkpoints", "latest_valid", "prune",
           "MANIFEST_SUFFIX"]


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint on disk: its step, its manifest and the files it lists (name -> path)."""

    step: int
    manifest: Path
    files: dict

    def path(self, name: str) -> Path:
        try:
            return self.files[name]
        except KeyError:
            raise KeyError(f"checkpoint {self.manifest.name} has no file {name!r}; it has {sorted(self.files)}") from None


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(name)}_(\d+){re.escape(MANIFEST_SUFFIX)}$")


def write_manifest(folder: "str | os.PathLike", name: str, step: int, files: Iterable["str | os.PathLike"],
                   extra: dict | None = None) -> Path:
    """Seal a checkpoint: hash `files` (already written, in `folder`) and write the manifest last."""
    folder = Path(folder)
    entries = {}
    for f in files:
        p = Path(f)
        if p.parent.resolve() != folder.resolve():
            raise ValueError(f"checkpoint file {p} is not in the checkpoint folder {folder}")
        entries[p.name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    doc = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "name": name, "step": int(step),
           "files": entries, **({"extra": extra} if extra else {})}
    path = folder / f"{name}_{int(step)}{MANIFEST_SUFFIX}"
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def verify(manifest: "str | os.PathLike") -> "tuple[Checkpoint | None, str]":
    """(checkpoint, "") when the manifest parses and every file it lists matches; else (None, why)."""
    manifest = Path(manifest)
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"manifest unreadable ({type(exc).__name__})"
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        return None, "not a checkpoint manifest"
    if doc.get("version") != MANIFEST_VERSION:
        return None, f"manifest version {doc.get('version')!r}; this version reads {MANIFEST_VERSION}"
    step, files = doc.get("step"), doc.get("files")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(files, dict) or not files:
        return None, "manifest lacks a step or files"
    out = {}
    for fname, meta in files.items():
        if not isinstance(fname, str) or "/" in fname or "\\" in fname or fname in ("", ".", ".."):
            return None, f"manifest names an unsafe file {fname!r}"
        p = manifest.parent / fname
        if not isinstance(meta, dict) or not p.is_file():
            return None, f"{fname} is missing"
        if p.stat().st_size != meta.get("bytes"):
            return None, f"{fname} has {p.stat().st_size} bytes, the manifest says {meta.get('bytes')}"
        if sha256_file(p) != meta.get("sha256"):
            return None, f"{fname} fails its checksum"
        out[fname] = p
    return Checkpoint(step=step, manifest=manifest, files=out), ""


def list_checkpoints(folder: "str | os.PathLike", name: str = "ckpt") -> list[tuple[int, Path]]:
    """(step, manifest path) of every sealed checkpoint `<name>_<step>` in `folder`, oldest first
    (not verified: `latest_valid` checks the files)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pat = _pattern(name)
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pat.match(p.name))]
    return sorted(found)


def latest_valid(folder: "str | os.PathLike", name: str = "ckpt",
                 say: "Callable[[str], None] | None" = None) -> Checkpoint | None:
    """The newest checkpoint whose files match its manifest, or None. Every damaged or incomplete
    newer one is reported through `say` (default: a warning) with the reason it was skipped."""
    say = say or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=3))
    skipped = []
    for step, manifest in reversed(list_checkpoints(folder, name)):
        ck, why = verify(manifest)
        if ck is not None:
            if skipped:
                say(f"skipped damaged checkpoint(s) {', '.join(skipped)}; resuming from {name}_{step}")
            return ck
        skipped.append(f"{name}_{step} ({why})")
    if skipped:
        say(f"no intact checkpoint in {folder}: {', '.join(skipped)}; starting a new run")
    return None


def prune(folder: "str | os.PathLike", name: str = "ckpt", keep: int = 3) -> None:
    """Delete every sealed checkpoint older than the newest `keep` intact ones (manifest first, then
    its files), and leftovers of interrupted writes (temporary files, files of a checkpoint that was
    never sealed and is older than the oldest one kept). Fewer than `keep` intact: nothing goes."""
    folder = Path(folder)
    found = list_checkpoints(folder, name)
    if keep <= 0 or not found:
        return
    intact = 0
    cut = None
    for i in range(len(found) - 1, -1, -1):
        intact += verify(found[i][1])[0] is not None
        if intact == keep:
            cut = i
            break
    if cut is None:
        return
    for step, manifest in found[:cut]:
        try:
            files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError):
            files = {}
        manifest.unlink(missing_ok=True)
        for fname in files if isinstance(files, dict) else ():
            if isinstance(fname, str) and "/" not in fname and "\\" not in fname:
                (folder / fname).unlink(missing_ok=True)
    oldest_kept = found[cut][0]
    step_re = re.compile(rf"^{re.escape(name)}_(\d+)[._]")
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
            continue
        m = step_re.match(p.name)
        if m and int(m.group(1)) < oldest_kept:
            p.unlink(missing_ok=True)
