"""Reference checkpoints and logits for emojax.hf from Hugging Face transformers' own models.

Writes ``tests/fixtures/hf/<family>/`` (a tiny random checkpoint, as ``save_pretrained``
writes it) and ``tests/fixtures/hf/<family>/expected.json`` (its logits), which
``tests/test_hf_transformers.py`` compares against without torch.

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 transformers==5.24.0 numpy
    /tmp/ref/bin/python experiments/reference/hf_fixtures.py --out tests/fixtures/hf

Also ``tests/fixtures/hf/chat/``: a small byte-level BPE tokenizer with a ChatML template
that marks the assistant's text with ``{% generation %}``, and what transformers'
``apply_chat_template`` renders and encodes for two multi-turn chats, with
``return_assistant_tokens_mask=True``.

Families: ``qwen2`` (q/k/v biases, grouped-query attention, tied embeddings) and ``llama``
(no biases, untied embeddings, a ``head_dim`` other than ``hidden / heads``, Llama 3 rope
scaling) and ``qwen3`` (per-head q/k RMSNorms, no biases, ``head_dim`` 16, tied),
float32, seeded; every RMSNorm's weight is moved off its initial 1 so that loading it
matters. Inputs: two rows of 7 tokens, the second left-padded by 3.
Expected values, each ``[B, L, V]`` over the real tokens (pads: 0):

* ``logits``: one forward pass with the attention mask and ``position_ids =
  cumsum(mask) - 1`` (pads set to 1), as ``generate`` builds them;
* ``cached_logits``: the first 4 slots as a prefill, then one token a step through
  transformers' KV cache (``past_key_values``), the logits of each step.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import transformers

SEED = 0
IDS = [[5, 17, 3, 42, 8, 23, 11], [0, 0, 0, 9, 30, 2, 61]]
MASK = [[1] * 7, [0, 0, 0, 1, 1, 1, 1]]
PREFILL = 4


def _configs() -> dict[str, transformers.PretrainedConfig]:
    common = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6, initializer_range=0.2)
    qwen = transformers.Qwen2Config(**common, rope_theta=1e6, tie_word_embeddings=True)
    llama = transformers.LlamaConfig(
        **common, head_dim=16, attention_bias=False, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 16}, rope_theta=500_000.0)
    qwen3 = transformers.Qwen3Config(**common, head_dim=16, rope_theta=1e6, tie_word_embeddings=True,
                                     attention_bias=False)
    qwen.architectures, llama.architectures = ["Qwen2ForCausalLM"], ["LlamaForCausalLM"]
    qwen3.architectures = ["Qwen3ForCausalLM"]
    return {"qwen2": qwen, "llama": llama, "qwen3": qwen3}


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)


@torch.no_grad()
def build(family: str, cfg, out: str) -> dict:
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32).eval()
    for name, param in model.named_parameters():  # norms start at 1: move them, so that loading them counts
        if "norm" in name:
            param.add_(0.2 * torch.randn_like(param))
    folder = os.path.join(out, family)
    model.save_pretrained(folder, safe_serialization=True)
    ids, mask = torch.tensor(IDS), torch.tensor(MASK)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask)).logits
    step_logits = []
    cache = transformers.DynamicCache()
    first = model(input_ids=ids[:, :PREFILL], attention_mask=mask[:, :PREFILL],
                  position_ids=_positions(mask[:, :PREFILL]), past_key_values=cache, use_cache=True)
    step_logits.append(first.logits)
    past = first.past_key_values
    for t in range(PREFILL, ids.shape[1]):
        pos = _positions(mask[:, : t + 1])[:, -1:]
        step = model(input_ids=ids[:, t : t + 1], attention_mask=mask[:, : t + 1], position_ids=pos,
                     past_key_values=past, use_cache=True)
        past = step.past_key_values
        step_logits.append(step.logits)
    cached = torch.cat(step_logits, dim=1)
    real = mask.bool()[..., None]
    expected = {"input_ids": IDS, "attention_mask": MASK, "prefill": PREFILL,
                "logits": torch.where(real, logits, 0).tolist(), "cached_logits": torch.where(real, cached, 0).tolist(),
                "transformers": transformers.__version__, "torch": torch.__version__}  # fmt: skip
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f)
    return {"family": family, "max_abs_logit": float(logits.abs().max()),
            "cached_vs_full": float((torch.where(real, cached - logits, 0)).abs().max())}


# A ChatML template with transformers' {% generation %} blocks around what the assistant says.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}{{- message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CHATS = [
    [{"role": "system", "content": "You listen before you answer."},
     {"role": "user", "content": "I failed my exam and I feel awful."},
     {"role": "assistant", "content": "That sounds really hard. What happened?"},
     {"role": "user", "content": "I froze on the first question."},
     {"role": "assistant", "content": "Freezing is common when it matters a lot."}],
    [{"role": "user", "content": "Can you help me plan my week?"},
     {"role": "assistant", "content": "Yes: what must happen first?"}],
]


def build_chat(out: str) -> dict:
    """A byte-level BPE tokenizer trained on the chats' words, with ChatML's special tokens and
    the template above, saved by ``save_pretrained``; what ``apply_chat_template`` renders and
    encodes, with the assistant mask."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    corpus = [m["content"] for chat in CHATS for m in chat] + ["system user assistant"] * 3
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    folder = os.path.join(out, "chat")
    fast.save_pretrained(folder)
    expected = []
    for chat in CHATS:
        for gen in (False, True):
            text = fast.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
            enc = fast.apply_chat_template(chat, tokenize=True, add_generation_prompt=gen, return_dict=True,
                                           return_assistant_tokens_mask=True)
            expected.append({"messages": chat, "add_generation_prompt": gen, "text": text,
                             "input_ids": list(enc["input_ids"]), "assistant_masks": list(enc["assistant_masks"])})
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({"cases": expected, "transformers": transformers.__version__}, f, indent=1)
    return {"chat": len(expected), "assistant_tokens": [sum(c["assistant_masks"]) for c in expected]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="tests/fixtures/hf")
    args = parser.parse_args(argv)
    for family, cfg in _configs().items():
        print(build(family, cfg, args.out))
    print(build_chat(args.out))


if __name__ == "__main__":
    main()
