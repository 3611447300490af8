"""Hugging Face checkpoints: safetensors in NumPy, config.json <-> PolicyConfig, load and save
bit-equal (one file or shards, float32 or bfloat16 files), left padding, and errors that name
the file and the field. (Equality with transformers' own logits needs fixtures made with
torch; see issue 18.)"""

from __future__ import annotations

import dataclasses
import json
import struct

import jax
import ml_dtypes
import numpy as np
import pytest

from emojax import hf
from emojax.hf import hf_config, safetensors_io
from emojax.rl import policy

QWEN = dataclasses.replace(policy.PRESETS["smoke"], tie_embeddings=True, rope_theta=1e6)  # GQA, biases, tied
LLAMA = dataclasses.replace(policy.PRESETS["smoke"], qkv_bias=False, head_dim=16)  # untied, no biases, head_dim


def _model(cfg, seed=0, like=None):
    _, state = policy.init(cfg, jax.random.key(seed))
    state = jax.tree.map(lambda x: x * 10, state)  # logits that differ by more than rounding
    return hf.from_policy(cfg, state, like)


def _flat(m):
    return [np.asarray(x) for x in jax.tree.leaves(m.state)]


LLAMA_LIKE = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
              "torch_dtype": "float32", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                           "high_freq_factor": 4.0,
                                                           "original_max_position_embeddings": 64}}  # fmt: skip


@pytest.mark.parametrize("cfg, like", [(QWEN, None), (dataclasses.replace(LLAMA, rope_llama3=(8.0, 1.0, 4.0, 64)),
                                                      LLAMA_LIKE)])  # fmt: skip
def test_save_then_load_is_bit_equal_and_computes_the_same(tmp_path, cfg, like):
    m = _model(cfg, like=like)
    hf.save(m, tmp_path / "a")
    back = hf.load(str(tmp_path / "a"))
    assert back.config == cfg
    for x, y in zip(_flat(m), _flat(back), strict=True):
        np.testing.assert_array_equal(x, y)
    hf.save(back, tmp_path / "b")
    a = safetensors_io.read(str(tmp_path / "a" / "model.safetensors"))
    b = safetensors_io.read(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and ("lm_head.weight" in a) == (not cfg.tie_embeddings)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name
    ids = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 7))
    np.testing.assert_array_equal(m.logits(ids), back.logits(ids))
    written = json.loads((tmp_path / "a" / "config.json").read_text())
    assert written["architectures"] == (like or {"architectures": ["Qwen2ForCausalLM"]})["architectures"]
    assert hf_config.policy_config(written) == cfg


def test_shards_and_a_bfloat16_file_round_trip(tmp_path):
    m = _model(QWEN)
    m = dataclasses.replace(m, dtypes={name: "BF16" for name in policy.hf_parameter_map(QWEN)})
    files = hf.save(m, tmp_path / "s", max_shard_bytes=4000)
    index = json.loads((tmp_path / "s" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2 and len(files) == len(set(index["weight_map"].values())) + 2
    back = hf.load(str(tmp_path / "s"))
    hf.save(back, tmp_path / "t", max_shard_bytes=4000)
    for file in set(index["weight_map"].values()):
        a, b = (safetensors_io.read(str(tmp_path / d / file)) for d in ("s", "t"))
        assert all(a[n].dtype == ml_dtypes.bfloat16 and a[n].tobytes() == b[n].tobytes() for n in a)
    # The parameters are the file's bfloat16 values, exactly, held in float32.
    emb = np.asarray(back.state["embed_tokens"]["embedding"].get_value())
    assert emb.dtype == np.float32 and np.array_equal(emb, emb.astype(ml_dtypes.bfloat16).astype(np.float32))
    half = hf.load(str(tmp_path / "s"), dtype="bfloat16")
    ids = np.arange(12).reshape(2, 6) % QWEN.vocab_size
    full, low = np.asarray(back.logits(ids)), np.asarray(half.logits(ids))
    assert half.config.dtype == "bfloat16" and 0 < np.abs(full - low).max() < 0.05 * np.abs(full).max()


def test_left_padding_leaves_the_real_tokens_logits_unchanged(tmp_path):
    m = _model(QWEN, seed=3)
    ids = np.random.default_rng(1).integers(1, QWEN.vocab_size, (1, 6))
    padded = np.concatenate([np.zeros((1, 3), int), ids], axis=1)
    mask = np.concatenate([np.zeros((1, 3), int), np.ones((1, 6), int)], axis=1)
    np.testing.assert_allclose(np.asarray(m.logits(padded, mask))[:, 3:], np.asarray(m.logits(ids)), atol=1e-5)


def test_llama3_rope_keeps_short_waves_and_stretches_long_ones():
    cfg = dataclasses.replace(LLAMA, head_dim=32, rope_theta=500_000.0)
    plain = np.asarray(policy.rope_frequencies(cfg))
    scaled = np.asarray(policy.rope_frequencies(dataclasses.replace(cfg, rope_llama3=(8.0, 1.0, 4.0, 64))))
    periods = 64 * plain / (2 * np.pi)  # periods of each frequency within the original context
    short, long = periods > 4, periods < 1
    assert short.any() and long.any() and (~short & ~long).any()
    np.testing.assert_allclose(scaled[short], plain[short], rtol=1e-6)
    np.testing.assert_allclose(scaled[long], plain[long] / 8, rtol=1e-6)
    mid = ~short & ~long
    assert np.all((scaled[mid] < plain[mid]) & (scaled[mid] > plain[mid] / 8))


def _write(tmp_path, config=None, tensors=None):
    m = _model(QWEN)
    hf.save(m, tmp_path)
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    if tensors is not None:
        safetensors_io.write(str(tmp_path / "model.safetensors"), tensors)
    return m


def test_errors_name_the_file_and_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hf.load(str(tmp_path))
    m = _write(tmp_path / "a")
    good = json.loads((tmp_path / "a" / "config.json").read_text())
    _write(tmp_path / "b", config={**good, "architectures": ["GPT2LMHeadModel"]})
    with pytest.raises(ValueError, match=r"config.json: field 'architectures' is \['GPT2LMHeadModel'\]"):
        hf.load(str(tmp_path / "b"))
    _write(tmp_path / "c", config={**good, "intermediate_size": 65})
    with pytest.raises(ValueError, match=r"model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape"):
        hf.load(str(tmp_path / "c"))
    tensors = safetensors_io.read(str(tmp_path / "a" / "model.safetensors"))
    _write(tmp_path / "d", tensors={k: v for k, v in tensors.items() if "layers.1.mlp.up_proj" not in k})
    with pytest.raises(ValueError, match=r"in no file: \['model.layers.1.mlp.up_proj.weight'\]"):
        hf.load(str(tmp_path / "d"))
    _write(tmp_path / "e", tensors={**tensors, "model.layers.0.extra.weight": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="tensors the config does not describe: .'model.layers.0.extra.weight'"):
        hf.load(str(tmp_path / "e"))
    _write(tmp_path / "f", config={**good, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    with pytest.raises(ValueError, match="field 'rope_scaling' has rope_type 'yarn'"):
        hf.load(str(tmp_path / "f"))
    with pytest.raises(ValueError, match="dtype must be one of"):
        hf.load(str(tmp_path / "a"), dtype="float16")
    assert m.config == QWEN


def test_safetensors_reader_refuses_what_it_cannot_read(tmp_path):
    path = tmp_path / "x.safetensors"
    safetensors_io.write(str(path), {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"format": "pt"})
    header, start = safetensors_io.read_header(str(path))
    assert start % 8 == 0 and header["__metadata__"] == {"format": "pt"} and header["a"]["shape"] == [2, 3]
    np.testing.assert_array_equal(safetensors_io.read(str(path))["a"], np.arange(6).reshape(2, 3))
    raw = path.read_bytes()
    text = json.dumps({"a": {"dtype": "I8", "shape": [2], "data_offsets": [0, 2]}}).encode()
    (tmp_path / "i8.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"\x01\x02")
    with pytest.raises(ValueError, match=r"i8.safetensors: tensor 'a' has dtype 'I8'"):
        safetensors_io.read(str(tmp_path / "i8.safetensors"))
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 10**9) + raw[8:])
    with pytest.raises(ValueError, match="bad.safetensors: not a safetensors file"):
        safetensors_io.read_header(str(tmp_path / "bad.safetensors"))


def test_every_bad_checkpoint_of_the_table_is_refused_naming_the_file(capsys):
    """``python -m experiments.reference.hf_errors`` (the closing note's table): each case
    fails, and its message names the folder or the file."""
    from experiments.reference import hf_errors

    rows = hf_errors.main()
    assert len(rows) == len(hf_errors.CASES)
    for name, message in rows:
        assert "no error" not in message, name
        assert "DIR/ckpt" in message or name == "a dtype asked for not supported", (name, message)
