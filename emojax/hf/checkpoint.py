"""Hugging Face checkpoints in and out of the NNX policy: a local folder, no network.

    m = emojax.hf.load("path/to/Qwen2.5-0.5B-Instruct", dtype="float32")
    logits = m.logits(input_ids, attention_mask)   # [B, L, V] float32
    emojax.hf.save(m, "path/to/copy")              # config.json + model.safetensors

A folder holds ``config.json`` and either ``model.safetensors`` or shards listed in
``model.safetensors.index.json`` (its ``weight_map``). Tensors are renamed and transposed by
:func:`emojax.rl.policy.hf_parameter_map`; the parameters are kept in float32 (a bfloat16
or float16 file converts exactly), and ``dtype`` is what the model computes in. Saving writes
each tensor back in the dtype it was read in (float32 for a model that was not loaded), so
load then save gives the same bits. Every failure names the file and the field or tensor.

Positions are ``cumsum(attention_mask) - 1``, as transformers' ``generate`` sets them for a
left-padded batch, so a left-padded row gives its real tokens the logits it gives unpadded.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import config as config_lib
from emojax.hf import hf_config, safetensors_io
from emojax.rl import lora, policy

__all__ = ["HFModel", "load", "save"]

SINGLE, INDEX = "model.safetensors", "model.safetensors.index.json"
# Buffers some checkpoints carry that the model recomputes.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclasses.dataclass(frozen=True)
class HFModel:
    """A loaded checkpoint: the policy (``graphdef``, ``state``) and what saving needs.

    Attributes:
      config: the policy's config (``dtype``: its compute dtype).
      graphdef, state: the NNX policy (float32 parameters).
      hf_config: the ``config.json`` it came from (written back, with the policy's fields).
      dtypes: each HF tensor's dtype as read (``F32``, ``BF16``, ``F16``); saving uses them.
    """

    config: policy.PolicyConfig
    graphdef: nnx.GraphDef
    state: nnx.State
    hf_config: dict[str, Any]
    dtypes: dict[str, str]

    def logits(self, input_ids, attention_mask=None) -> jax.Array:
        """``[B, L, V]`` float32 logits of ``input_ids`` ``[B, L]`` (mask: 1 for real tokens)."""
        ids = jnp.asarray(input_ids, jnp.int32)
        mask = jnp.ones(ids.shape, bool) if attention_mask is None else jnp.asarray(attention_mask).astype(bool)
        return _forward(self.graphdef, self.state, ids, mask)


_forward = jax.jit(lambda graphdef, state, ids, mask: policy.apply(
    graphdef, state, ids, policy.positions_from_mask(mask), mask)[0], static_argnums=0)  # fmt: skip


def _read_config(path: str) -> dict:
    where = os.path.join(path, "config.json")
    if not os.path.isfile(where):
        raise FileNotFoundError(f"{where}: no config.json in the checkpoint folder {path}")
    with open(where) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not JSON (line {err.lineno}: {err.msg})") from None


def _tensor_files(path: str) -> dict[str, str]:
    """HF tensor name -> the safetensors file holding it."""
    index = os.path.join(path, INDEX)
    if os.path.isfile(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: field 'weight_map' is missing or not an object")
        files = {name: os.path.join(path, file) for name, file in weight_map.items()}
        for file in sorted(set(files.values())):
            if not os.path.isfile(file):
                raise FileNotFoundError(f"{index}: lists {os.path.basename(file)}, which is not in {path}")
        return files
    single = os.path.join(path, SINGLE)
    if not os.path.isfile(single):
        raise FileNotFoundError(f"{path}: neither {SINGLE} nor {INDEX}")
    header, _ = safetensors_io.read_header(single)
    return {name: single for name in header if name != "__metadata__"}


def load(path: str, dtype: str = "float32") -> HFModel:
    """The checkpoint in folder ``path`` as an :class:`HFModel` computing in ``dtype``
    (``float32`` or ``bfloat16``)."""
    if dtype not in policy.DTYPES:
        raise ValueError(f"load: dtype must be one of {policy.DTYPES}, got {dtype!r}")
    raw = _read_config(path)
    pcfg = hf_config.policy_config(raw, os.path.join(path, "config.json"), dtype)
    files = _tensor_files(path)
    table = policy.hf_parameter_map(pcfg)
    unknown = sorted(n for n in files if n not in table and not n.endswith(_IGNORED_SUFFIXES)
                     and not (n == "lm_head.weight" and pcfg.tie_embeddings))  # fmt: skip
    if unknown:
        raise ValueError(f"{files[unknown[0]]}: tensors the config does not describe: {unknown[:5]}"
                         + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))  # fmt: skip
    missing = sorted(n for n in table if n not in files)
    if missing:
        raise ValueError(f"{path}: tensors the config needs are in no file: {missing[:5]}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))  # fmt: skip
    model = nnx.eval_shape(lambda: policy.Policy(pcfg, rngs=nnx.Rngs(0)))
    state = nnx.state(model)
    by_path = dict(nnx.to_flat_state(state))
    dtypes = {}
    for file in sorted(set(files[n] for n in table)):
        names = [n for n in table if files[n] == file]
        for name, array in safetensors_io.read(file, names).items():
            where, transpose = table[name]
            dtypes[name] = safetensors_io.NAMES[array.dtype]
            value = array.T if transpose else array
            var = by_path[where]
            if value.shape != var.shape:
                want = var.shape[::-1] if transpose else var.shape
                raise ValueError(f"{file}: tensor {name!r} has shape {list(array.shape)}, config.json says "
                                 f"{list(want)}")  # fmt: skip
            var.set_value(jnp.asarray(value.astype(np.float32)))
    return HFModel(pcfg, nnx.graphdef(model), state, raw, dtypes)


def from_policy(pcfg: policy.PolicyConfig, state: nnx.State, like: dict | None = None) -> HFModel:
    """An :class:`HFModel` of a policy trained here (to :func:`save` it as a checkpoint); a
    LoRA policy's adapters are merged into its kernels first (:func:`emojax.rl.lora.merge`)."""
    pcfg, state = lora.merge(pcfg, state)
    graphdef = policy.graphdef_of(pcfg)
    return HFModel(pcfg, graphdef, state, hf_config.hf_config(pcfg, like), {})


def save(m: HFModel, path: str, *, max_shard_bytes: int = 0) -> list[str]:
    """Write ``m`` to folder ``path`` as ``config.json`` and ``model.safetensors`` (or, with
    ``max_shard_bytes`` > 0, shards of at most that size and their index), each atomically.
    Returns the files written."""
    os.makedirs(path, exist_ok=True)
    flat = dict(nnx.to_flat_state(m.state))
    tensors = {}
    for name, (where, transpose) in policy.hf_parameter_map(m.config).items():
        value = np.asarray(flat[where].get_value(), np.float32)
        value = value.T if transpose else value
        tensors[name] = value.astype(safetensors_io.DTYPES[m.dtypes.get(name, "F32")])
    written = [os.path.join(path, "config.json")]
    config_lib.write_json(written[0], hf_config.hf_config(m.config, m.hf_config))
    if max_shard_bytes <= 0:
        safetensors_io.write(os.path.join(path, SINGLE), tensors, {"format": "pt"})
        return written + [os.path.join(path, SINGLE)]
    shards, size = [[]], 0
    for name in sorted(tensors):
        if shards[-1] and size + tensors[name].nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += tensors[name].nbytes
    weight_map = {}
    for i, names in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        safetensors_io.write(os.path.join(path, file), {n: tensors[n] for n in names}, {"format": "pt"})
        weight_map.update({n: file for n in names})
        written.append(os.path.join(path, file))
    index = {"metadata": {"total_size": int(sum(t.nbytes for t in tensors.values()))}, "weight_map": weight_map}
    config_lib.write_json(os.path.join(path, INDEX), index)
    return written + [os.path.join(path, INDEX)]
