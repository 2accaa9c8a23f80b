"""Run state as plain data: nested values to (JSON document, arrays) and back, without pickle.

A checkpoint holds a trainer's markets, background policies and counters. Their state is
nested dicts, lists and tuples of NumPy arrays, numbers, strings, NumPy generators and a few
known dataclasses. `encode` splits such a value into a JSON-able document, where every array
(and every NumPy scalar, so its dtype survives) is replaced by a reference into a flat dict of
arrays that `save_arrays` writes as an .npz (`allow_pickle=False`). `decode` reverses it and
builds only allow-listed bit generators and dataclasses: reading a checkpoint never runs code.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any, Mapping

import numpy as np

__all__ = ["encode", "decode", "save_arrays", "load_arrays", "BIT_GENERATORS"]

BIT_GENERATORS = {c.__name__: c for c in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                                          np.random.Philox, np.random.SFC64)}
_ARRAY, _TUPLE, _GEN, _DC = "__array__", "__tuple__", "__generator__", "__dataclass__"
_MARKERS = {_ARRAY, _TUPLE, _GEN, _DC}


def encode(value: Any, arrays: dict, dataclass_types: Mapping[str, type] = {}) -> Any:
    """The JSON-able document of `value`; its arrays are added to `arrays` (key -> ndarray).
    TypeError naming the offending type when something cannot be stored as plain data."""
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.hasobject or arr.dtype.kind == "V":
            raise TypeError(f"cannot store an array of dtype {arr.dtype} without pickle")
        key = f"a{len(arrays)}"
        arrays[key] = arr.copy(order="K")   # keeps the memory order (BLAS results may depend on it)
        return {_ARRAY: key, "scalar": True} if isinstance(value, np.generic) else {_ARRAY: key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot store a dict with non-string keys {[k for k in value if not isinstance(k, str)]!r}")
        if _MARKERS & value.keys():
            raise TypeError(f"cannot store a dict with the codec's marker keys {sorted(_MARKERS & value.keys())}")
        return {k: encode(v, arrays, dataclass_types) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v, arrays, dataclass_types) for v in value]
    if isinstance(value, tuple):
        return {_TUPLE: [encode(v, arrays, dataclass_types) for v in value]}
    if isinstance(value, np.random.Generator):
        bg = value.bit_generator
        name = type(bg).__name__
        if name not in BIT_GENERATORS:
            raise TypeError(f"cannot store a generator over bit generator {name}; allowed: {', '.join(BIT_GENERATORS)}")
        return {_GEN: {"bit_generator": name, "state": encode(bg.state, arrays, dataclass_types)}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if dataclass_types.get(name) is not type(value):
            raise TypeError(f"cannot store a {name} (not an allow-listed dataclass)")
        return {_DC: name, "fields": {f.name: encode(getattr(value, f.name), arrays, dataclass_types)
                                      for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot store a {type(value).__name__} as plain data")


def decode(doc: Any, arrays: Mapping[str, np.ndarray], dataclass_types: Mapping[str, type] = {}) -> Any:
    """The value `encode` produced `doc` and `arrays` from (arrays are copied out of `arrays`)."""
    if doc is None or isinstance(doc, (bool, int, float, str)):
        return doc
    if isinstance(doc, list):
        return [decode(v, arrays, dataclass_types) for v in doc]
    if not isinstance(doc, dict):
        raise ValueError(f"unexpected {type(doc).__name__} in a stored state")
    if _ARRAY in doc:
        key = doc[_ARRAY]
        if not isinstance(key, str) or key not in arrays:
            raise ValueError(f"stored state refers to a missing array {key!r}")
        arr = np.array(arrays[key])
        if doc.get("scalar") is True:
            if arr.ndim != 0:
                raise ValueError(f"stored scalar {key!r} has shape {arr.shape}")
            return arr[()]
        return arr
    if _TUPLE in doc:
        return tuple(decode(v, arrays, dataclass_types) for v in doc[_TUPLE])
    if _GEN in doc:
        g = doc[_GEN]
        name = g.get("bit_generator") if isinstance(g, dict) else None
        if name not in BIT_GENERATORS:
            raise ValueError(f"stored generator over {name!r}; allowed: {', '.join(BIT_GENERATORS)}")
        bitgen = BIT_GENERATORS[name]()
        bitgen.state = decode(g["state"], arrays, dataclass_types)
        return np.random.Generator(bitgen)
    if _DC in doc:
        cls = dataclass_types.get(doc[_DC])
        if cls is None:
            raise ValueError(f"stored dataclass {doc[_DC]!r} is not allow-listed here")
        return cls(**{k: decode(v, arrays, dataclass_types) for k, v in doc["fields"].items()})
    return {k: decode(v, arrays, dataclass_types) for k, v in doc.items()}


def save_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The .npz bytes of `arrays` (uncompressed, no pickled objects)."""
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def load_arrays(path) -> dict[str, np.ndarray]:
    """Every array of an .npz written by `save_arrays`; object arrays are refused."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
