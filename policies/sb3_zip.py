"""Read a Stable-Baselines3 model zip without unpickling anything.

An SB3 zip holds `data` (JSON; items JSON cannot hold — the policy class, the spaces, the
schedules — are cloudpickled inside it as base64 `:serialized:` strings), `policy.pth` (the
network's state dict) and `policy.optimizer.pth`. `SB3.load` unpickles `data`, so a crafted zip
runs code on load. This module never decodes a `:serialized:` item: it rebuilds the network of a
PPO, SAC or TD3 `MlpPolicy` from the plain JSON items (`policy_kwargs`, `use_sde`), the market's
own observation and action spaces, and the weights read with `torch.load(weights_only=True)`.

A zip this reader cannot account for — a pickled item of a type SB3 itself never writes, pickled
`policy_kwargs` (a custom activation or extractor), a network of another shape — raises
`UntrustedModelError`; `load_sb3_trusted` is the opt-in for such files (SB3's own loader, with a
warning).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.observations import N_OBS, OBS_HIGH, OBS_LOW
from ..envs.offers import N_ACTIONS   # the base width; a partner_action model has 5
from .widths import fields_of_width

MAX_ENTRY_BYTES = 256 << 20   # a zip entry larger than this is not a policy of this market

# ":type:" strings SB3's own `data_to_json` writes for the items it pickles (anything else is refused)
_SAFE_TYPES = frozenset({
    "<class 'abc.ABCMeta'>", "<class 'type'>",                       # policy_class, *_buffer_class
    "<class 'gymnasium.spaces.box.Box'>", "<class 'numpy.ndarray'>", "<class 'collections.deque'>",
    "<class 'function'>", "<class 'functools.partial'>",
    "<class 'stable_baselines3.common.utils.FloatSchedule'>",
    "<class 'stable_baselines3.common.utils.LinearSchedule'>",
    "<class 'stable_baselines3.common.utils.ConstantSchedule'>",
    "<class 'stable_baselines3.common.noise.NormalActionNoise'>",
    "<class 'stable_baselines3.common.noise.OrnsteinUhlenbeckActionNoise'>",
    "<class 'stable_baselines3.common.noise.VectorizedActionNoise'>",
    "<class 'stable_baselines3.common.type_aliases.TrainFreq'>",
    "<class 'torch.device'>", "<class 'numpy.random._generator.Generator'>",
})
ALGOS = ("ppo", "sac", "td3")
TRUST_HINT = "pass trust=True (CLI: --trust-model) only if you trust the file's origin"


class UntrustedModelError(ValueError):
    """The model file can be read only by unpickling it (which can run arbitrary code)."""


def _untrusted(path: Any, why: str) -> UntrustedModelError:
    return UntrustedModelError(f"{path}: {why}; loading it would unpickle code from the file — {TRUST_HINT}")


def read_zip(path: "str | Path") -> tuple[dict, dict]:
    """(plain JSON items of `data`, the policy's state dict) of an SB3 zip; nothing is unpickled."""
    import torch

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = {i.filename: i for i in z.infolist()}
            for need in ("data", "policy.pth"):
                if need not in names:
                    raise ValueError(f"{path}: not a Stable-Baselines3 model zip (no {need!r} entry)")
                if names[need].file_size > MAX_ENTRY_BYTES:
                    raise ValueError(f"{path}: entry {need!r} has {names[need].file_size} bytes; "
                                     f"allowed: at most {MAX_ENTRY_BYTES}")
            raw = z.read("data")
            weights = z.read("policy.pth")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a readable zip file ({exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: its 'data' entry is not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: its 'data' entry is a {type(data).__name__}, expected a JSON object")
    for key, item in data.items():
        if isinstance(item, dict) and ":serialized:" in item:
            kind = item.get(":type:")
            if key == "policy_kwargs":
                raise _untrusted(path, "its policy_kwargs are pickled (custom classes)")
            if kind not in _SAFE_TYPES:
                raise _untrusted(path, f"its data item {key!r} is a pickled {str(kind)[:80]!r}, a type SB3 never writes")
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure of the restricted unpickler
        raise _untrusted(path, f"policy.pth is not a plain tensor file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: policy.pth is not a state dict of tensors")
    return data, state


def _space_shape(path: Path, data: dict, key: str) -> "tuple | None":
    """The shape the zip's JSON records for a space (None when it records none)."""
    item = data.get(key)
    if not isinstance(item, dict):
        return None
    try:
        got = tuple(int(x) for x in json.loads(str(item.get("_shape"))))
    except (ValueError, TypeError):
        raise ValueError(f"{path}: the model's {key} has an unreadable shape {item.get('_shape')!r}") from None
    return got


def market_spaces(obs_dim: int = N_OBS, act_dim: int = N_ACTIONS):
    """(observation, action) spaces of a market whose observation has `obs_dim` columns (the
    standard 4-kind market: N_OBS; scenarios with more kinds or goods have more, see
    `envs.obs_schema`) and whose action has `act_dim` (4; 5 with `partner_action`). Only the
    shapes matter to an MlpPolicy; the bounds are the standard columns' where they apply."""
    from gymnasium import spaces

    if obs_dim == N_OBS:
        obs = spaces.Box(OBS_LOW, OBS_HIGH, shape=(N_OBS,), dtype=np.float32)
    else:
        obs = spaces.Box(-np.inf, np.inf, shape=(int(obs_dim),), dtype=np.float32)
    return obs, spaces.Box(-1.0, 1.0, shape=(int(act_dim),), dtype=np.float32)


def _policy_class(algo: str):
    if algo == "ppo":
        from stable_baselines3.common.policies import ActorCriticPolicy
        return ActorCriticPolicy
    if algo == "sac":
        from stable_baselines3.sac.policies import SACPolicy
        return SACPolicy
    if algo == "td3":
        from stable_baselines3.td3.policies import TD3Policy
        return TD3Policy
    raise ValueError(f"unknown SB3 algorithm {algo!r}; allowed without trust: {', '.join(ALGOS)}")


def build_policy(path: "str | Path", algo: str | None = None, device: str = "cpu") -> tuple[Any, str]:
    """(SB3 policy network with the zip's weights, its algorithm) for an `MlpPolicy` zip of PPO,
    SAC or TD3 over this market's spaces; `algo=None` finds the algorithm by the weights' layout."""
    path = Path(path)
    data, state = read_zip(path)
    obs_shape = _space_shape(path, data, "observation_space")
    if obs_shape is not None and len(obs_shape) != 1:
        raise ValueError(f"{path}: the model's observation_space has shape {obs_shape}; a market's is (columns,)")
    act_shape = _space_shape(path, data, "action_space")   # the width it was trained with (4, or 5 with open_partner)
    if act_shape is not None:
        try:
            if len(act_shape) != 1:
                raise ValueError
            fields_of_width(act_shape[0])
        except ValueError:
            raise ValueError(f"{path}: the model's action_space has shape {act_shape}; a market's is ({N_ACTIONS},) "
                             f"or ({N_ACTIONS + 1},) with partner_action") from None
    obs_space, act_space = market_spaces(obs_shape[0] if obs_shape else N_OBS,
                                         act_shape[0] if act_shape else N_ACTIONS)
    kwargs = dict(data.get("policy_kwargs") or {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"{path}: policy_kwargs is a {type(kwargs).__name__}, expected a mapping")
    errors = []
    for name in ([algo] if algo else list(ALGOS)):
        cls = _policy_class(name)
        kw = dict(kwargs)
        if name == "ppo":
            kw.setdefault("use_sde", bool(data.get("use_sde", False)))
        try:
            policy = cls(obs_space, act_space, lambda _: 0.0, **kw)
            policy.load_state_dict(state, strict=True)
        except (TypeError, ValueError, RuntimeError, KeyError) as exc:
            errors.append(f"{name}: {str(exc).splitlines()[0][:160]}")
            continue
        policy.set_training_mode(False)
        return policy.to(device), name
    raise _untrusted(path, "its network is not a PPO, SAC or TD3 MlpPolicy this loader can rebuild "
                           f"({'; '.join(errors)})")


def load_sb3_trusted(path: "str | Path", algo: str | None = None, device: str = "cpu") -> Any:
    """A full SB3 model through SB3's own loader — unpickles `data`: only for trusted files."""
    import stable_baselines3 as sb3

    warnings.warn(f"loading {path} with trust: Stable-Baselines3 unpickles its 'data' entry, which can run "
                  "arbitrary code; do this only for files from a source you trust", UserWarning, stacklevel=2)
    classes = {"ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3, "a2c": sb3.A2C, "ddpg": sb3.DDPG}
    if algo is not None and algo not in classes:
        raise ValueError(f"unknown SB3 algorithm {algo!r}; allowed: {', '.join(classes)}")
    errors = []
    for name in ([algo] if algo else ["ppo", "sac", "td3"]):
        try:
            return classes[name].load(str(path), device=device)
        except Exception as exc:  # noqa: BLE001 - report every attempt
            errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:120]}")
    raise ValueError(f"{path}: not a PPO, SAC or TD3 model ({'; '.join(errors)})")


__all__ = ["UntrustedModelError", "read_zip", "build_policy", "load_sb3_trusted", "market_spaces", "TRUST_HINT"]
