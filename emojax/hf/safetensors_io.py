"""The safetensors format, read and written with NumPy alone (no torch, no extra package).

A file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON (tensor name ->
``{"dtype", "shape", "data_offsets": [begin, end]}`` relative to the data, and an optional
``"__metadata__"`` of strings), then the data. bfloat16 comes from ``ml_dtypes``. Writes
are atomic (a temporary file renamed into place), so an interrupted save leaves the old file.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import ml_dtypes
import numpy as np

__all__ = ["DTYPES", "NAMES", "read", "read_header", "write"]

DTYPES = {"F32": np.dtype(np.float32), "F16": np.dtype(np.float16), "BF16": np.dtype(ml_dtypes.bfloat16),
          "F64": np.dtype(np.float64)}  # fmt: skip
NAMES = {v: k for k, v in DTYPES.items()}  # NumPy dtype -> the format's name
_MAX_HEADER = 100 * 2**20


def read_header(path: str) -> tuple[dict, int]:
    """``(header, data_start)`` of the file at ``path``; errors name the file."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (n,) = struct.unpack("<Q", raw)
        if n > _MAX_HEADER or n > os.path.getsize(path) - 8:
            raise ValueError(f"{path}: not a safetensors file (header length {n} does not fit the file)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: the safetensors header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object")
    return header, 8 + n


def read(path: str, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The tensors of ``path`` (all, or ``names``) as NumPy arrays in their stored dtype."""
    header, start = read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name in header if names is None else names:
            if name == "__metadata__":
                continue
            entry = header.get(name)
            if entry is None:
                raise KeyError(f"{path}: no tensor {name!r}")
            if entry.get("dtype") not in DTYPES:
                raise ValueError(f"{path}: tensor {name!r} has dtype {entry.get('dtype')!r}, not one of "
                                 f"{sorted(DTYPES)} (the floating dtypes a policy loads)")  # fmt: skip
            dtype = DTYPES[entry["dtype"]]
            begin, end = entry["data_offsets"]
            shape = tuple(int(d) for d in entry["shape"])
            if end - begin != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
                raise ValueError(f"{path}: tensor {name!r}: data_offsets {entry['data_offsets']} do not hold "
                                 f"shape {list(shape)} of {entry['dtype']}")  # fmt: skip
            f.seek(start + begin)
            out[name] = np.frombuffer(f.read(end - begin), dtype).reshape(shape)
    return out


def write(path: str, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (C order, in their dtypes) to ``path`` atomically, names sorted."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        if array.dtype not in NAMES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {array.dtype}, not one of {sorted(NAMES.values())}")
        blob = array.tobytes()
        header[name] = {"dtype": NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}  # fmt: skip
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer pads it
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in blobs:
                f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
