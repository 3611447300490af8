"""Every bad checkpoint :func:`emojax.hf.load` refuses, and the message it gives (issue 18).

    python -m experiments.reference.hf_errors          # prints a markdown table

Each case starts from a good tiny checkpoint written by :func:`emojax.hf.save` into a
temporary folder and breaks one thing. ``tests/test_hf.py`` asserts the same messages.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import tempfile

import jax
import numpy as np

from emojax import hf
from emojax.hf import safetensors_io
from emojax.rl import policy

CFG = dataclasses.replace(policy.PRESETS["smoke"], tie_embeddings=True)


def _good(path: str) -> dict:
    hf.save(hf.from_policy(CFG, policy.init(CFG, jax.random.key(0))[1]), path)
    return json.load(open(os.path.join(path, "config.json")))


def _config(path: str, **changes) -> None:
    good = json.load(open(os.path.join(path, "config.json")))
    json.dump({**good, **changes}, open(os.path.join(path, "config.json"), "w"))


def _tensors(path: str, edit) -> None:
    file = os.path.join(path, "model.safetensors")
    safetensors_io.write(file, edit(safetensors_io.read(file)), {"format": "pt"})


def _int32(path: str) -> None:
    """Rename one tensor's dtype in the header to I32 (a dtype a policy does not load); the
    header keeps its length."""
    file = os.path.join(path, "model.safetensors")
    raw = open(file, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = raw[8 : 8 + n].replace(b'"F32"', b'"I32"', 1)
    open(file, "wb").write(raw[:8] + header + raw[8 + n :])


def _sharded(path: str) -> None:
    """Shards with an index that names a shard file that is not there."""
    m = hf.load(path)
    os.remove(os.path.join(path, "model.safetensors"))
    hf.save(m, path, max_shard_bytes=4096)
    shards = sorted(f for f in os.listdir(path) if f.startswith("model-"))
    os.remove(os.path.join(path, shards[-1]))


CASES = [
    ("no config.json", lambda p: os.remove(os.path.join(p, "config.json")), {}),
    ("no safetensors file", lambda p: os.remove(os.path.join(p, "model.safetensors")), {}),
    ("an index naming a missing shard", _sharded, {}),
    ("config.json not JSON", lambda p: open(os.path.join(p, "config.json"), "w").write("{oops"), {}),
    ("an architecture not supported", lambda p: _config(p, architectures=["GPT2LMHeadModel"]), {}),
    ("an activation not supported", lambda p: _config(p, hidden_act="gelu"), {}),
    ("a rope type not supported", lambda p: _config(p, rope_scaling={"rope_type": "yarn", "factor": 4.0}), {}),
    ("sliding-window attention", lambda p: _config(p, use_sliding_window=True, sliding_window=16), {}),
    ("a shape that does not match the config", lambda p: _config(p, intermediate_size=65), {}),
    ("a tensor no file holds", lambda p: _tensors(p, lambda t: {k: v for k, v in t.items() if "layers.1.mlp.up" not in k}), {}),
    ("a tensor the config does not describe",
     lambda p: _tensors(p, lambda t: {**t, "model.layers.0.extra.weight": np.zeros(2, np.float32)}), {}),
    ("a dtype in the file not supported (I32)", _int32, {}),
    ("a dtype asked for not supported", lambda p: None, {"dtype": "float16"}),
]  # fmt: skip


def main() -> list[tuple[str, str]]:
    rows = []
    for name, breaks, kwargs in CASES:
        with tempfile.TemporaryDirectory() as root:
            path = os.path.join(root, "ckpt")
            _good(path)
            breaks(path)
            try:
                hf.load(path, **kwargs)
                message = "(loaded: no error)"
            except (ValueError, FileNotFoundError, OSError) as err:
                message = f"{type(err).__name__}: {err}".replace(root, "DIR")
        rows.append((name, message))
    print("| bad checkpoint | message |\n|---|---|")
    for name, message in rows:
        print(f"| {name} | {message.replace('|', '/')} |")
    return rows


if __name__ == "__main__":
    main()
