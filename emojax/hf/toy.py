"""A random checkpoint folder that loads like a downloaded one: for presets, tests and
plumbing checks that must run with no weights on the machine.

Why: the text-GRPO launcher's ``smoke`` and ``tiny`` presets (and anyone checking a
pipeline before downloading gigabytes) need a folder that :func:`emojax.hf.load`,
:func:`emojax.hf.load_tokenizer` and :class:`emojax.hf.dialogue.Speaker` read exactly as
they read a real one. The package carries a small ChatML tokenizer (``assets/chatml``:
byte-level BPE, 394 ids, ``<|im_start|>``/``<|im_end|>``, a template with
``{% generation %}`` blocks); the weights are a policy drawn from a key.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import jax
import tokenizers

from emojax.hf import checkpoint
from emojax.rl import policy

__all__ = ["ASSETS", "vocab_size", "write_random"]

ASSETS = os.path.join(os.path.dirname(__file__), "assets", "chatml")
_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def vocab_size() -> int:
    """The bundled tokenizer's ids (added tokens included), rounded up to a multiple of 8."""
    n = tokenizers.Tokenizer.from_file(os.path.join(ASSETS, "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    return -(-n // 8) * 8


def write_random(path: str, cfg: policy.PolicyConfig, key: jax.Array, dtype: str = "F32") -> str:
    """Write a checkpoint of ``cfg`` (its vocabulary set to :func:`vocab_size`, embeddings
    tied) with weights drawn from ``key``, stored as ``dtype`` (``F32`` or ``BF16``), and the
    bundled tokenizer into the new folder ``path``; returns ``path``. The same key writes the
    same weights. The folder appears whole or not at all (written beside it, then renamed),
    so an interrupted write never leaves a folder that looks like a checkpoint."""
    if dtype not in ("F32", "BF16"):
        raise ValueError(f"write_random: dtype must be 'F32' or 'BF16', got {dtype!r}")
    cfg = dataclasses.replace(cfg, vocab_size=vocab_size(), tie_embeddings=True, lora_rank=0)
    model = checkpoint.from_policy(cfg, policy.init(cfg, key)[1])
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.")
    try:
        checkpoint.save(dataclasses.replace(model, dtypes={name: dtype for name in policy.hf_parameter_map(cfg)}),
                        staging)  # fmt: skip
        for name in _FILES:
            shutil.copy(os.path.join(ASSETS, name), os.path.join(staging, name))
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path
