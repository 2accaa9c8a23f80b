"""IPPO/MAPPO checkpoints: `checkpoints/ckpt_<step>` is three files sealed by a manifest
(`training.checkpoints`, the one checkpoint lister of both trainers): `.pt` the tensors (actor,
critic, optimizer, torch RNG; loaded with weights_only=True), `.npz` every array of the markets,
background policies and run state (allow_pickle=False), `.json` everything else (counters,
config, normalisers, generator states). Nothing in it is a pickle. A checkpoint holds the
markets mid-episode, so a resumed run continues bit for bit."""

from __future__ import annotations

import io
import json
import pickle
import random
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..envs.files import atomic_write_bytes, atomic_write_text
from ..policies.equilibrium import EquilibriumResult, Forecast
from ..policies.ippo_policy import MODEL_FORMAT
from ..policies.risk_factor import RiskParams
from .checkpoints import MANIFEST_SUFFIX, Checkpoint, latest_valid, prune, verify, write_manifest
from .checkpoints import list_checkpoints as _list_sealed
from .state_codec import decode, encode, load_arrays, save_arrays

if TYPE_CHECKING:
    from .ippo import IPPOTrainer

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_VERSION = 2
FORMAT = MODEL_FORMAT + ".checkpoint"
# dataclasses a background policy may hold as state (checkpoints rebuild only these)
STATE_DATACLASSES = {c.__name__: c for c in (RiskParams, EquilibriumResult, Forecast)}


def list_checkpoints(out_dir: "str | Path") -> list[Path]:
    """Manifests of the run's sealed checkpoints, oldest first (not verified)."""
    return [p for _, p in _list_sealed(Path(out_dir) / CHECKPOINT_DIR, "ckpt")]


def latest_checkpoint(out_dir: "str | Path") -> Path | None:
    """Manifest of the newest intact checkpoint (damaged newer ones are skipped with a warning)."""
    ck = latest_valid(Path(out_dir) / CHECKPOINT_DIR, "ckpt")
    return ck.manifest if ck is not None else None


def checkpoint_state(tr: "IPPOTrainer") -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """(tensors, JSON document, arrays) of the run: everything `load` needs to continue exactly."""
    tensors = {"actor": tr.actor.state_dict(), "critic": tr.critic.state_dict(),
               "optimizer": tr.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
    arrays: dict[str, np.ndarray] = {}
    try:
        markets = encode([mk.state_dict() for mk in tr.markets], arrays, STATE_DATACLASSES)
    except TypeError as exc:  # a background policy with state that is not plain data
        warnings.warn(f"markets could not be saved in the checkpoint ({exc}); resume will start new episodes")
        arrays, markets = {}, None
    ver, internal, gauss = random.getstate()
    log = {"window": tr.markets.metrics.state(), "last_log": tr.last_log, "last_window": dict(tr.last_window),
           "recent_learner_profit": list(tr.recent_learner_profit)}
    doc = {
        "format": FORMAT, "version": CHECKPOINT_VERSION,
        "global_step": tr.global_step, "n_updates": tr.n_updates, "episodes": tr.episodes,
        "config": tr.cfg.to_dict(), "n_agents": tr.n_agents, "kinds": list(tr.kinds),
        "obs_rms": tr.obs_rms.state_dict(), "global_rms": tr.global_rms.state_dict(),
        "ret_rms": tr.ret_rms.state_dict(),
        "python_rng": [ver, list(internal), gauss],
        "markets": markets,
        "ret": encode(tr.ret, arrays),
        "log": encode(log, arrays),
    }
    return tensors, doc, arrays


def save(tr: "IPPOTrainer") -> Path:
    """Write checkpoints/ckpt_<step>.{pt,npz,json}, each atomically, seal them with the manifest,
    and prune the oldest; a checkpoint already sealed at this step is kept as it is."""
    d = tr.out / CHECKPOINT_DIR
    step = tr.global_step
    manifest = d / f"ckpt_{step}{MANIFEST_SUFFIX}"
    if manifest.exists() and verify(manifest)[0] is not None:
        return manifest
    tensors, doc, arrays = checkpoint_state(tr)
    buf = io.BytesIO()
    torch.save(tensors, buf)
    files = [d / f"ckpt_{step}.pt", d / f"ckpt_{step}.npz", d / f"ckpt_{step}.json"]
    atomic_write_bytes(files[0], buf.getvalue())
    atomic_write_bytes(files[1], save_arrays(arrays))
    atomic_write_text(files[2], json.dumps(doc, sort_keys=True) + "\n")
    path = write_manifest(d, "ckpt", step, files, extra={"format": FORMAT, "version": CHECKPOINT_VERSION})
    if tr.cfg.keep_checkpoints:
        prune(d, "ckpt", keep=tr.cfg.keep_checkpoints)
    return path


def load(tr: "IPPOTrainer", ck: "Checkpoint | str | Path") -> bool:
    """Continue `tr` from a sealed checkpoint (a `Checkpoint` or its manifest path), verified first
    and checked against the trainer's config. True when the markets were restored mid-episode
    (else they start new episodes, numbered after the checkpoint's)."""
    if not isinstance(ck, Checkpoint):
        found, why = verify(ck)
        if found is None:
            raise ValueError(f"checkpoint {ck} is damaged or incomplete: {why}")
        ck = found
    name = ck.manifest.name[:-len(MANIFEST_SUFFIX)]
    try:
        doc = json.loads(ck.path(name + ".json").read_text(encoding="utf-8"))
        arrays = load_arrays(ck.path(name + ".npz"))
        tensors = torch.load(ck.path(name + ".pt"), map_location=tr.device, weights_only=True)
    except (OSError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"checkpoint {ck.manifest} cannot be read: {exc}") from None
    path = ck.manifest
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} is not an IPPO checkpoint (format {doc.get('format')!r})")
    if doc.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has version {doc.get('version')!r}; this version reads {CHECKPOINT_VERSION}")
    if doc.get("n_agents") != tr.n_agents:
        raise ValueError(f"checkpoint {path} is for {doc.get('n_agents')} agents per market; this config's "
                         f"scenario has {tr.n_agents}")
    if tuple(doc.get("kinds", ())) != tr.kinds:
        raise ValueError(f"checkpoint {path} trained learners {doc.get('kinds')}; this config has {list(tr.kinds)}")
    ccfg = doc.get("config", {})
    if bool(ccfg.get("centralized_critic")) != bool(tr.cfg.centralized_critic) or \
            list(ccfg.get("hidden_sizes", [])) != list(tr.cfg.hidden_sizes):
        raise ValueError(f"checkpoint {path}: centralized_critic/hidden_sizes differ from this config")
    width = next((v.shape[1] for k, v in tensors["critic"].items() if k.endswith("weight") and v.ndim == 2), None)
    if width != tr.obs_dim + tr.global_dim:   # e.g. MAPPO from before the critic read the global state
        raise ValueError(f"checkpoint {path}: its critic reads {width} inputs, this trainer's {tr.obs_dim + tr.global_dim}; "
                         "start a new run in another folder")
    act = tensors["actor"].get("log_std")   # one entry per action column
    if act is not None and act.shape != (tr.act_dim,):
        raise ValueError(f"checkpoint {path}: its actor acts with {act.shape[0] if act.ndim else '?'} action columns, "
                         f"this config's scenario takes {tr.act_dim} ({', '.join(tr.markets[0].core.action_fields)}); "
                         "resume with the partner_action setting the run was started with, or start a new run "
                         "in another folder")
    tr.actor.load_state_dict(tensors["actor"])
    tr.critic.load_state_dict(tensors["critic"])
    tr.optimizer.load_state_dict(tensors["optimizer"])
    for g in tr.optimizer.param_groups:  # the config's learning rate wins (annealing resets it per update)
        g["lr"] = tr.cfg.lr
    tr.obs_rms.load_state_dict(doc["obs_rms"])
    tr.global_rms.load_state_dict(doc["global_rms"])
    tr.ret_rms.load_state_dict(doc["ret_rms"])
    torch.set_rng_state(tensors["torch_rng"])
    ver, internal, gauss = doc["python_rng"]
    random.setstate((int(ver), tuple(int(x) for x in internal), gauss))
    tr.global_step = int(doc["global_step"])
    tr.n_updates = int(doc["n_updates"])
    tr.episodes = int(doc.get("episodes", 0))
    log = decode(doc["log"], arrays)
    tr.markets.metrics.load_state(log["window"])
    tr.last_log = int(log["last_log"])
    tr.last_window = dict(log["last_window"])
    tr.recent_learner_profit.extend(log["recent_learner_profit"])
    if doc.get("markets") is not None:
        states = decode(doc["markets"], arrays, STATE_DATACLASSES)
        if len(states) == len(tr.markets):
            for mk, st in zip(tr.markets, states):
                tr.markets.load_market_state(mk, st)
            tr.ret = decode(doc["ret"], arrays)
            return True
    for mk in tr.markets:  # new episodes, numbered after the checkpoint's
        mk.episode = tr.episodes + 1000 * mk.index + 1
        tr.markets.reset(mk)
    tr.ret = None
    return False


__all__ = ["save", "load", "checkpoint_state", "list_checkpoints", "latest_checkpoint", "CHECKPOINT_DIR",
           "CHECKPOINT_VERSION", "STATE_DATACLASSES"]
