"""emojax.hf against transformers' own models: tiny random Qwen2 and Llama checkpoints
(and Qwen3, with q/k norms) written by ``save_pretrained`` and their logits, made by
``experiments/reference/hf_fixtures.py`` (transformers 5.24, torch 2.13, float32). No torch here."""

from __future__ import annotations

import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from emojax import hf
from emojax.hf import safetensors_io
from emojax.rl import policy

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "hf"
FAMILIES = ("qwen2", "llama", "qwen3")


def _expected(family):
    return json.loads((FIXTURES / family / "expected.json").read_text())


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_equal_transformers_with_a_left_padded_row(family):
    m, want = hf.load(str(FIXTURES / family)), _expected(family)
    mask = np.asarray(want["attention_mask"], bool)
    assert not mask.all()  # a left-padded row is in the batch
    got = np.where(mask[..., None], np.asarray(m.logits(want["input_ids"], want["attention_mask"])), 0)
    np.testing.assert_allclose(got, np.asarray(want["logits"]), atol=1e-4, rtol=0)
    assert np.abs(np.asarray(want["logits"])).max() > 1  # logits large enough for the tolerance to mean something


@pytest.mark.parametrize("family", FAMILIES)
def test_the_kv_cache_path_equals_transformers_cached_steps(family):
    m, want = hf.load(str(FIXTURES / family)), _expected(family)
    ids, mask = jnp.asarray(want["input_ids"]), jnp.asarray(want["attention_mask"], bool)
    positions, p = policy.positions_from_mask(mask), want["prefill"]
    cache = policy.init_cache(m.config, ids.shape[0], ids.shape[1])
    logits, cache = policy.apply(m.graphdef, m.state, ids[:, :p], positions[:, :p], mask[:, :p], cache)
    steps = [logits]
    for t in range(p, ids.shape[1]):
        logits, cache = policy.apply(m.graphdef, m.state, ids[:, t : t + 1], positions[:, t : t + 1], mask[:, t : t + 1],
                                     cache)  # fmt: skip
        steps.append(logits)
    got = np.where(np.asarray(mask)[..., None], np.concatenate([np.asarray(s) for s in steps], axis=1), 0)
    np.testing.assert_allclose(got, np.asarray(want["cached_logits"]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_load_then_save_writes_the_same_tensors(family, tmp_path):
    m = hf.load(str(FIXTURES / family))
    assert m.config.tie_embeddings == (family != "llama") and m.config.qkv_bias == (family == "qwen2")
    assert bool(m.config.rope_llama3) == (family == "llama") and m.config.qk_norm == (family == "qwen3")
    hf.save(m, str(tmp_path))
    theirs = safetensors_io.read(str(FIXTURES / family / "model.safetensors"))
    ours = safetensors_io.read(str(tmp_path / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype and ours[name].tobytes() == theirs[name].tobytes(), name
    again = json.loads((tmp_path / "config.json").read_text())
    original = json.loads((FIXTURES / family / "config.json").read_text())
    assert again == original  # every field kept, the policy's written back unchanged


def test_chat_template_and_assistant_mask_equal_transformers():
    """A multi-turn chat rendered and encoded as ``apply_chat_template(...,
    return_assistant_tokens_mask=True)`` does, with and without the generation prompt."""
    from emojax.hf import chat

    tok = chat.load_tokenizer(str(FIXTURES / "chat"))
    cases = json.loads((FIXTURES / "chat" / "expected.json").read_text())["cases"]
    for case in cases:
        assert tok.render(case["messages"], case["add_generation_prompt"]) == case["text"]
        enc = tok.encode_chat(case["messages"], case["add_generation_prompt"])
        assert enc["input_ids"] == case["input_ids"]
        assert enc["assistant_masks"] == case["assistant_masks"] and sum(enc["assistant_masks"]) > 0
    # The mask covers the assistant's words and its end token, nothing the user said.
    words = tok.tokenizer.decode([i for i, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m],
                                 skip_special_tokens=False)  # fmt: skip
    assert words == cases[-1]["messages"][-1]["content"] + "<|im_end|>"


def test_chat_errors_name_the_file(tmp_path):
    from emojax.hf import chat

    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        chat.load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer.json").write_text((FIXTURES / "chat" / "tokenizer.json").read_text())
    with pytest.raises(ValueError, match="no chat template"):
        chat.load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ raise_exception('no system') }}"}))
    with pytest.raises(Exception, match="no system"):
        chat.load_tokenizer(str(tmp_path)).render([{"role": "user", "content": "hi"}])
