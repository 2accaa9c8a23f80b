"""Exact, pickle-free checkpoints of an SB3 run: everything a resumed run needs to continue bit
for bit where the interrupted one was.

A checkpoint `ckpt_<steps>` (sealed by `training.checkpoints.write_manifest`) holds:

    ckpt_<steps>_model.pt     the networks' and optimisers' state dicts (read with weights_only=True)
    ckpt_<steps>_state.npz    arrays: last observation, RNG states (NumPy, torch), VecNormalize and
                              VecMonitor running statistics (read with allow_pickle=False)
    ckpt_<steps>_state.json   counters (num_timesteps, _n_updates, progress), episode counters of the
                              markets, Python's RNG state, the episode-info window, pending log values

Checkpoints are taken at rollout boundaries (SB3's rollout buffer is empty then: the resumed run
starts the next rollout exactly where the uninterrupted one does). When every market is also at
the start of an episode (the default: a rollout is one episode) the markets are rebuilt from their
episode seeds and the resume is exact; otherwise the resumed run starts those markets on a fresh
episode and says so. Off-policy algorithms (SAC, TD3) resume with an empty replay buffer.
"""

from __future__ import annotations

import io
import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.files import atomic_write_bytes, atomic_write_text
from .checkpoints import Checkpoint, prune, write_manifest

FORMAT = "channelmarket.sb3-run-state"
VERSION = 1


def _attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _wrappers(env: Any):
    """(VecNormalize or None, VecMonitor or None, MarketVecEnv) of the training env stack."""
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    vn = vm = None
    e = env
    while hasattr(e, "venv"):
        if isinstance(e, VecNormalize):
            vn = e
        elif isinstance(e, VecMonitor):
            vm = e
        e = e.venv
    return vn, vm, e


def at_episode_start(env: Any) -> bool:
    """True when every market of the env has just been reset (step 0 of an episode)."""
    _, _, venv = _wrappers(env)
    return all(mk.core.state is not None and int(mk.core.state.t) == 0 for mk in venv.markets)


def _python_rng() -> list:
    version, state, gauss = random.getstate()
    return [version, list(state), gauss]


def save(model: "Any | dict[str, Any]", folder: "str | Path", steps: int, name: str = "ckpt", keep: int = 3,
         extra: dict | None = None) -> Path:
    """Write checkpoint `<name>_<steps>` of `model` (and its env) into `folder` — or of several
    models at one moment, `{role: model}` — seal it with a manifest and prune to the newest `keep`
    intact ones; returns the manifest path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = model if isinstance(model, dict) else {"": model}
    files: list[Path] = []
    for role, m in models.items():
        files += _write(m, folder, f"{name}_{int(steps)}" + (f"_{role}" if role else ""), extra)
    manifest = write_manifest(folder, name, steps, files)
    prune(folder, name, keep)
    return manifest


def _write(model: Any, folder: Path, stem: str, extra: dict | None) -> list[Path]:
    import torch

    env = model.get_env()
    vn, vm, venv = _wrappers(env)

    sd_names, tensor_names = model._get_torch_save_params()
    nets = {"state_dicts": {n: _attr(model, n).state_dict() for n in sd_names},
            "tensors": {n: _attr(model, n).detach().clone() for n in tensor_names}}
    buf = io.BytesIO()
    torch.save(nets, buf)
    atomic_write_bytes(folder / f"{stem}_model.pt", buf.getvalue())

    arrays: dict[str, np.ndarray] = {}
    np_state = np.random.get_state()
    arrays["rng_numpy_keys"] = np.asarray(np_state[1], dtype=np.uint32)
    arrays["rng_torch"] = torch.get_rng_state().numpy().copy()
    for key in ("_last_obs", "_last_episode_starts", "_last_original_obs"):
        v = getattr(model, key, None)
        if isinstance(v, np.ndarray):
            arrays[key] = v
    if vn is not None:
        arrays.update(obs_mean=vn.obs_rms.mean, obs_var=vn.obs_rms.var, obs_count=np.float64(vn.obs_rms.count),
                      ret_mean=np.float64(vn.ret_rms.mean), ret_var=np.float64(vn.ret_rms.var),
                      ret_count=np.float64(vn.ret_rms.count), vn_returns=vn.returns)
        if getattr(vn, "old_obs", None) is not None and np.asarray(vn.old_obs).size:
            arrays["vn_old_obs"] = np.asarray(vn.old_obs)
        if np.asarray(vn.old_reward).size:
            arrays["vn_old_reward"] = np.asarray(vn.old_reward)
    if vm is not None:
        arrays.update(mon_returns=vm.episode_returns, mon_lengths=vm.episode_lengths)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / f"{stem}_state.npz", buf.getvalue())

    space_rng = getattr(model.action_space, "_np_random", None)
    logger = getattr(model, "_logger", None)
    state = {
        "format": FORMAT, "version": VERSION, "algo": type(model).__name__.lower(),
        "num_timesteps": int(model.num_timesteps), "n_updates": int(getattr(model, "_n_updates", 0)),
        "episode_num": int(model._episode_num), "progress_remaining": float(model._current_progress_remaining),
        "ep_info_buffer": [{k: float(v) for k, v in e.items()} for e in (model.ep_info_buffer or [])],
        "ep_success_buffer": [float(x) for x in (model.ep_success_buffer or [])],
        "rng_numpy": {"pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "rng_python": _python_rng(),
        "rng_action_space": space_rng.bit_generator.state if space_rng is not None else None,
        "episode_start": at_episode_start(env),
        "episodes": [int(mk.episode) for mk in venv.markets], "seed": int(venv._seed),
        "market_steps": int(venv.total_steps), "episodes_done": int(venv.episodes_done),
        "monitor_episode_count": int(vm.episode_count) if vm is not None else 0,
        "pending_log": ({k: float(v) for k, v in logger.name_to_value.items() if isinstance(v, (int, float))}
                        if logger is not None else {}),
        "pending_log_count": ({k: int(v) for k, v in logger.name_to_count.items()} if logger is not None else {}),
        "pending_log_excluded": ({k: list(logger.name_to_excluded.get(k) or ()) for k, v in
                                  logger.name_to_value.items() if isinstance(v, (int, float))}
                                 if logger is not None else {}),
        **(extra or {}),
    }
    atomic_write_text(folder / f"{stem}_state.json", json.dumps(state, indent=1) + "\n")
    return [folder / f"{stem}{s}" for s in ("_model.pt", "_state.npz", "_state.json")]


def _file(ck: Checkpoint, suffix: str, role: str = "") -> Path:
    stem = ck.manifest.name[: -len(".manifest.json")] + (f"_{role}" if role else "")
    return ck.path(stem + suffix)


def read_state(ck: Checkpoint, role: str = "") -> dict:
    """The JSON run state of a verified checkpoint (validated)."""
    path = _file(ck, "_state.json", role)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable run state ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
        raise ValueError(f"{path}: not a {FORMAT} v{VERSION} run state")
    for key in ("num_timesteps", "n_updates", "episode_num"):
        v = state.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{path}: {key} = {v!r}; allowed: an integer >= 0")
    return state


def _check_shapes(model: Any, nets: dict, ck: Checkpoint) -> None:
    """Refuse, before anything is loaded, a checkpoint whose networks do not fit the freshly built
    model (another action width, observation size or net_arch), naming the first tensor that differs."""
    import torch

    pairs = [(f"{n}.{k}", t, _attr(model, n).state_dict().get(k)) for n, sd in nets["state_dicts"].items()
             for k, t in sd.items()]
    pairs += [(n, t, _attr(model, n)) for n, t in nets["tensors"].items()]
    for name, saved, here in pairs:
        if isinstance(saved, torch.Tensor) and isinstance(here, torch.Tensor) and saved.shape != here.shape:
            width = model.action_space.shape[0] if getattr(model.action_space, "shape", None) else "?"
            raise ValueError(f"{ck.manifest}: the checkpoint does not fit this config's model: {name} is "
                             f"{tuple(saved.shape)} there, {tuple(here.shape)} here (this config acts with {width} "
                             "action columns); resume with the settings the run was started with (partner_action, "
                             "scenario, net_arch) or start a new run in another folder")


def restore(model: Any, ck: Checkpoint, role: str = "", say=print) -> dict:
    """Put checkpoint `ck` (its `role` part) into a freshly built `model` (same config) and its env;
    returns the run state. Call `restore_log` after the model's logger is set."""
    import torch

    env = model.get_env()
    vn, vm, venv = _wrappers(env)
    state = read_state(ck, role)
    if state.get("algo") != type(model).__name__.lower():
        raise ValueError(f"{ck.manifest}: a checkpoint of {state.get('algo')!r}, not {type(model).__name__.lower()!r}")
    nets = torch.load(_file(ck, "_model.pt", role), map_location=model.device, weights_only=True)
    _check_shapes(model, nets, ck)
    for n, sd in nets["state_dicts"].items():
        _attr(model, n).load_state_dict(sd)
    with torch.no_grad():
        for n, t in nets["tensors"].items():
            _attr(model, n).data.copy_(t)
    with np.load(_file(ck, "_state.npz", role), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}

    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    model._episode_num = state["episode_num"]
    model._current_progress_remaining = float(state["progress_remaining"])
    from collections import deque

    window = getattr(model, "_stats_window_size", 100)
    model.ep_info_buffer = deque(state.get("ep_info_buffer", []), maxlen=window)
    model.ep_success_buffer = deque(state.get("ep_success_buffer", []), maxlen=window)

    episodes = state.get("episodes", [])
    if len(episodes) != len(venv.markets):
        raise ValueError(f"{ck.manifest}: {len(episodes)} markets in the checkpoint, {len(venv.markets)} configured")
    exact = bool(state.get("episode_start"))
    venv._seed = int(state["seed"])
    for m, mk in enumerate(venv.markets):
        mk.episode = int(episodes[m]) - (1 if exact else 0)   # the reset below counts the episode again
        venv._reset_market(m)
    venv.total_steps = int(state.get("market_steps", 0))
    venv.episodes_done = int(state.get("episodes_done", 0))
    venv._reset_metrics()
    if vm is not None and "mon_returns" in arrays:
        vm.episode_returns = arrays["mon_returns"].copy() if exact else np.zeros_like(vm.episode_returns)
        vm.episode_lengths = arrays["mon_lengths"].copy() if exact else np.zeros_like(vm.episode_lengths)
        vm.episode_count = int(state.get("monitor_episode_count", 0))
    if vn is not None and "obs_mean" in arrays:
        vn.obs_rms.mean, vn.obs_rms.var = arrays["obs_mean"].copy(), arrays["obs_var"].copy()
        vn.obs_rms.count = float(arrays["obs_count"])
        vn.ret_rms.mean, vn.ret_rms.var = arrays["ret_mean"].copy(), arrays["ret_var"].copy()
        vn.ret_rms.count = float(arrays["ret_count"])
        vn.returns = arrays["vn_returns"].copy() if exact else np.zeros(vn.num_envs)
        if "vn_old_obs" in arrays:
            vn.old_obs = arrays["vn_old_obs"].copy()
        if "vn_old_reward" in arrays:
            vn.old_reward = arrays["vn_old_reward"].copy()
    if exact and "_last_obs" in arrays:
        model._last_obs = arrays["_last_obs"].copy()
        model._last_episode_starts = arrays["_last_episode_starts"].copy()
        if "_last_original_obs" in arrays:
            model._last_original_obs = arrays["_last_original_obs"].copy()
    else:
        raw = venv._buf_obs.copy()
        if vn is not None:
            vn.old_obs = raw
        model._last_obs = vn.normalize_obs(raw) if vn is not None else raw
        model._last_original_obs = raw if vn is not None else None
        model._last_episode_starts = np.ones(venv.num_envs, dtype=bool)
        say(f"checkpoint {ck.manifest.name} was taken mid-episode: its markets restart on fresh episodes, "
            "so this resumed run is not bit-identical to an uninterrupted one")

    # random states last: building the model and the env above drew from them
    rp = state["rng_python"]
    random.setstate((rp[0], tuple(rp[1]), rp[2]))
    rn = state["rng_numpy"]
    np.random.set_state(("MT19937", arrays["rng_numpy_keys"].astype(np.uint32), rn["pos"], rn["has_gauss"],
                         rn["cached_gaussian"]))
    torch.set_rng_state(torch.from_numpy(arrays["rng_torch"].astype(np.uint8)))
    if state.get("rng_action_space") is not None and getattr(model.action_space, "_np_random", None) is not None:
        model.action_space.np_random.bit_generator.state = state["rng_action_space"]
    return state


def restore_log(model: Any, state: dict) -> None:
    """Values logged by the last update before the checkpoint and not yet written (SB3 writes them
    at the next rollout): put them back so progress.csv matches an uninterrupted run."""
    logger = model.logger
    for k, v in state.get("pending_log", {}).items():
        logger.name_to_value[k] = v
    for k, v in state.get("pending_log_count", {}).items():
        logger.name_to_count[k] = v
    for k, v in state.get("pending_log_excluded", {}).items():
        logger.name_to_excluded[k] = tuple(v)


def warn_skipped(msg: str) -> None:
    """How `latest_valid` reports a damaged checkpoint it skipped (stdout and a warning)."""
    print(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=2)


__all__ = ["save", "restore", "restore_log", "read_state", "at_episode_start"]
